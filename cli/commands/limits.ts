import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import {
  assertLimit,
  deleteLimit,
  formatLimitSpec,
  listLimits,
  type LimitView,
  parseLimitSpec,
  setLimit,
} from '../../src/distributed/semaphore/limits-admin.js';
import { BatonError } from '../../src/errors.js';
import { REDIS_OPTION, redisUrlOf } from '../redis-option.js';

type RedisFlags = { redis?: string };

/** Connects after a reachability check, runs `fn`, and always closes the connection. */
async function withRedis<T>(flag: string | undefined, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const { assertRedisReachable, createRedis } = await import('../../src/distributed/connection.js');
  const url = redisUrlOf(flag);
  await assertRedisReachable(url);
  const redis = createRedis(url, { onError: () => {} });
  try {
    return await fn(redis);
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

function parseLimitArg(text: string): number {
  if (!/^\d+$/.test(text)) {
    throw new BatonError('LIMIT_INVALID', `invalid limit "${text}": expected an integer >= 0 (0 pauses matching steps)`);
  }
  const limit = Number(text);
  assertLimit(limit);
  return limit;
}

function describe(v: LimitView): string {
  const scope = v.perUniqueValue ? ' per value' : '';
  const perValue = v.byValue && Object.keys(v.byValue).length > 0
    ? ` (${Object.entries(v.byValue).map(([value, n]) => `${value}: ${n}`).join(', ')})`
    : '';
  const lines = [`${v.spec}  limit ${v.limit}${scope}  in use ${v.inUse}${perValue}  waiting ${v.waiting}`];
  for (const h of v.holders) {
    const bucket = v.perUniqueValue ? `  [${h.bucket.slice(v.key.length + 3)}]` : '';
    lines.push(`  run ${h.runId}  step ${h.stepKey}${h.attempt > 1 ? ` (attempt ${h.attempt})` : ''}${bucket}`);
  }
  return lines.join('\n');
}

export function registerLimits(program: Command): void {
  const limits = program
    .command('limits')
    .description('global tag concurrency limits, shared by every run and worker on this Redis');

  limits
    .command('set')
    .description('define or change a limit; takes effect at once (running steps are never interrupted)')
    .argument('<spec>', 'KEY=VALUE, KEY (any value) or KEY=* (each value separately)')
    .argument('<limit>', 'slots, an integer >= 0; 0 pauses every matching step')
    .option(...REDIS_OPTION)
    .action(async (spec: string, limitText: string, flags: RedisFlags) => {
      const canonical = formatLimitSpec(parseLimitSpec(spec));
      const limit = parseLimitArg(limitText);
      await withRedis(flags.redis, (redis) => setLimit(redis, canonical, limit));
      process.stdout.write(`limit ${canonical} set to ${limit}${limit === 0 ? ' (matching steps paused)' : ''}\n`);
    });

  limits
    .command('list')
    .description('each limit with its slots in use, the steps holding them and how many steps wait')
    .option(...REDIS_OPTION)
    .option('--json', 'print an array of LimitView objects')
    .action(async (flags: RedisFlags & { json?: boolean }) => {
      const views = await withRedis(flags.redis, (redis) => listLimits(redis));
      if (flags.json) process.stdout.write(`${JSON.stringify(views)}\n`);
      else if (views.length === 0) process.stdout.write('no limits defined\n');
      else process.stdout.write(`${views.map(describe).join('\n')}\n`);
    });

  limits
    .command('delete')
    .description('remove a limit; steps waiting only on it start at once')
    .argument('<spec>', 'KEY=VALUE, KEY or KEY=*')
    .option(...REDIS_OPTION)
    .action(async (spec: string, flags: RedisFlags) => {
      const canonical = formatLimitSpec(parseLimitSpec(spec));
      const existed = await withRedis(flags.redis, (redis) => deleteLimit(redis, canonical));
      process.stdout.write(existed ? `limit ${canonical} deleted\n` : `no limit ${canonical} was set; nothing deleted\n`);
    });
}
