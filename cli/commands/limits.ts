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

type RedisFlags = { redis?: string; runs?: boolean };

const RUNS_OPTION = ['--runs', 'a run-level limit of the run queue: max_concurrent_runs, or a run tag limit KEY=VALUE, KEY or KEY=*'] as const;

async function runQueue() {
  return import('../../src/distributed/run-queue.js');
}

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
    .argument('<spec>', 'KEY=VALUE, KEY (any value) or KEY=* (each value separately); with --runs also max_concurrent_runs')
    .argument('<limit>', 'slots, an integer >= 0; 0 pauses every matching step (with --runs: run)')
    .option(...REDIS_OPTION)
    .option(...RUNS_OPTION)
    .action(async (spec: string, limitText: string, flags: RedisFlags) => {
      if (flags.runs) {
        const limit = parseLimitArg(limitText);
        const { setRunQueueLimit } = await runQueue();
        const name = await withRedis(flags.redis, (redis) => setRunQueueLimit(redis, spec, limit));
        process.stdout.write(`run limit ${name} set to ${limit}${limit === 0 ? ' (matching queued runs wait)' : ''}\n`);
        return;
      }
      const canonical = formatLimitSpec(parseLimitSpec(spec));
      const limit = parseLimitArg(limitText);
      await withRedis(flags.redis, (redis) => setLimit(redis, canonical, limit));
      process.stdout.write(`limit ${canonical} set to ${limit}${limit === 0 ? ' (matching steps paused)' : ''}\n`);
    });

  limits
    .command('list')
    .description('each limit with its slots in use, the steps holding them and how many steps wait')
    .option(...REDIS_OPTION)
    .option('--json', 'print an array of LimitView objects (with --runs: the run queue object)')
    .option('--runs', 'the run queue: its limits, runs in progress and runs queued')
    .action(async (flags: RedisFlags & { json?: boolean }) => {
      if (flags.runs) return listRunLimits(flags);
      const views = await withRedis(flags.redis, (redis) => listLimits(redis));
      if (flags.json) process.stdout.write(`${JSON.stringify(views)}\n`);
      else if (views.length === 0) process.stdout.write('no limits defined\n');
      else process.stdout.write(`${views.map(describe).join('\n')}\n`);
    });

  limits
    .command('delete')
    .description('remove a limit; steps waiting only on it start at once')
    .argument('<spec>', 'KEY=VALUE, KEY or KEY=*; with --runs also max_concurrent_runs')
    .option(...REDIS_OPTION)
    .option(...RUNS_OPTION)
    .action(async (spec: string, flags: RedisFlags) => {
      if (flags.runs) {
        const { deleteRunQueueLimit } = await runQueue();
        const existed = await withRedis(flags.redis, (redis) => deleteRunQueueLimit(redis, spec));
        process.stdout.write(existed ? `run limit ${spec} deleted\n` : `no run limit ${spec} was set; nothing deleted\n`);
        return;
      }
      const canonical = formatLimitSpec(parseLimitSpec(spec));
      const existed = await withRedis(flags.redis, (redis) => deleteLimit(redis, canonical));
      process.stdout.write(existed ? `limit ${canonical} deleted\n` : `no limit ${canonical} was set; nothing deleted\n`);
    });
}

/** `limits list --runs`: the run queue's limits, and how many runs are in progress and queued. */
async function listRunLimits(flags: RedisFlags & { json?: boolean }): Promise<void> {
  const { readQueue } = await runQueue();
  const { config, active, queued } = await withRedis(flags.redis, (redis) => readQueue(redis));
  const tagLimits = config.tagConcurrencyLimits.map((l) => ({ spec: formatLimitSpec(l), limit: l.limit }));
  if (flags.json) {
    const view = { maxConcurrentRuns: config.maxConcurrentRuns, tagConcurrencyLimits: tagLimits, inProgress: active.map((a) => a.runId), queued: queued.map((q) => q.runId) };
    process.stdout.write(`${JSON.stringify(view)}\n`);
    return;
  }
  const lines = [`max_concurrent_runs ${config.maxConcurrentRuns ?? 'none (no cap)'}  in progress ${active.length}  queued ${queued.length}`];
  for (const l of tagLimits) lines.push(`run tag limit ${l.spec}  limit ${l.limit}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
