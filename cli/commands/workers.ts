import type { Command } from 'commander';
import type { WorkerRegistration } from '../../src/distributed/worker-registry.js';
import { REDIS_OPTION, redisUrlOf } from '../redis-option.js';

interface WorkersFlags {
  redis?: string;
  queue?: string;
  json?: boolean;
}

function describe(w: WorkerRegistration, now: number): string {
  const ago = Math.max(0, (now - Date.parse(w.lastSeen)) / 1000).toFixed(1);
  const jobs = w.jobs.map((j) => `${j.name}@${j.hash.slice(0, 8)}`).join(', ') || 'no jobs';
  const lines = [
    `${w.id}  ${w.host} pid ${w.pid}  queue ${w.queue}  ${w.isolation ?? '?'} isolation  running ${w.running}/${w.concurrency ?? '?'}  seen ${ago}s ago  v${w.version ?? '?'}`,
    `  jobs: ${jobs}`,
  ];
  for (const e of w.loadErrors ?? []) lines.push(`  load error: ${e.file}: ${e.message.split('\n')[0]}`);
  for (const s of w.runningSteps ?? []) lines.push(`  running ${s.stepKey} of run ${s.runId} since ${s.since}`);
  return lines.join('\n');
}

export function registerWorkers(program: Command): void {
  program
    .command('workers')
    .description('the live workers on this Redis: their queue, jobs (with definition hashes), load errors and running steps')
    .option(...REDIS_OPTION)
    .option('--queue <name>', 'only the workers on this queue')
    .option('--json', 'print a JSON array of workers')
    .action(async (flags: WorkersFlags) => {
      const { assertRedisReachable, createRedis } = await import('../../src/distributed/connection.js');
      const { listWorkers } = await import('../../src/distributed/worker-registry.js');
      const url = redisUrlOf(flags.redis);
      await assertRedisReachable(url);
      const redis = createRedis(url, { onError: () => {} });
      try {
        const workers = await listWorkers(redis, flags.queue ? { queue: flags.queue } : {});
        if (flags.json) process.stdout.write(`${JSON.stringify(workers)}\n`);
        else if (workers.length === 0) process.stdout.write('no live workers\n');
        else process.stdout.write(`${workers.map((w) => describe(w, Date.now())).join('\n')}\n`);
      } finally {
        await redis.quit().catch(() => redis.disconnect());
      }
    });
}
