/**
 * A job's own run config on the distributed executor: workers that loaded the job without it
 * still run its steps (the definition hash leaves run_config out), and the run records the
 * merged config (the job's, then the -c file's).
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, parseSummary, runCli } from './helpers/cli.js';
import { tempDir, uniqueQueue } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorkers, stopAllWorkers } from './helpers/workers.js';

const DIAMOND = path.join(ROOT, 'test/fixtures/distributed/diamond.yaml');

let redis: TestRedis;
let client: Redis;
beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis(redis.url);
});
afterEach(stopAllWorkers);
afterAll(async () => {
  client?.disconnect();
  await redis?.close();
});

describe('the job\'s own run config, distributed', () => {
  it('workers with the job as it was run it; the run records the merged config', async () => {
    const queue = uniqueQueue();
    // The coordinator's copy of the job gains a run config; the workers' copy has none.
    const dir = tempDir();
    cpSync(path.dirname(DIAMOND), dir, { recursive: true });
    const job = path.join(dir, 'diamond.yaml');
    const own = `run_config:\n  execution:\n    config:\n      distributed: { queue: ${queue}, max_concurrent: 2 }\n  ops:\n    src: { config: { value: 3 } }\n`;
    writeFileSync(job, `${readFileSync(DIAMOND, 'utf8')}${own}`);
    const cfg = path.join(dir, 'more.yaml');
    writeFileSync(cfg, `execution:\n  config:\n    distributed: { redis: "${redis.url}" }\n`);
    await startWorkers(1, { redisUrl: redis.url, jobs: [DIAMOND], queue });

    const r = await runCli(['run', job, '-c', cfg, '--json'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const { runId, steps } = parseSummary(r);
    expect(Object.values(steps)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS']);
    const recorded = JSON.parse((await client.hget(`baton:{run:${runId}}:record`, 'runConfig')) ?? 'null') as unknown;
    expect(recorded).toEqual({
      execution: { config: { distributed: { queue, max_concurrent: 2, redis: redis.url } } },
      ops: { src: { config: { value: 3 } } },
    });
  });
});
