import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadJob } from '../src/job/load-job.js';
import { executeJob } from '../src/run/execute-job.js';
import { ROOT, parseErrorSummary, runCli } from './helpers/cli.js';
import { distributedConfig, tempDir, uniqueQueue, waitFor } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorker, startWorkers, stopAllWorkers } from './helpers/workers.js';

const FIX = path.join(ROOT, 'test/fixtures/distributed');
const DIAMOND = path.join(FIX, 'diamond.yaml');
const FAULTS = path.join(FIX, 'faults.yaml');

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterEach(stopAllWorkers);
afterAll(async () => redis?.close());

const env = (): Record<string, string> => ({ REDIS_URL: redis.url });
const json = (stdout: string) => JSON.parse(stdout) as { runId: string; job: string; status: string; steps: Record<string, string> };

describe('distributed executor', () => {
  it('runs a diamond over 3 worker processes; the join step receives both inputs', async () => {
    const queue = uniqueQueue();
    const workers = await startWorkers(3, { redisUrl: redis.url, jobs: [FIX], queue, concurrency: 1 });
    const job = await loadJob(DIAMOND);
    const result = await executeJob(job, {
      runConfig: { execution: { config: { distributed: { redis: redis.url, queue } } }, ops: { src: { config: { value: 2 } } } },
    });
    expect(result.status).toBe('SUCCESS');
    const out = result.outputs as Record<string, { pid: number; sum?: number; left?: { value: number }; right?: { value: number } }>;
    const workerPids = new Set(workers.map((w) => w.pid));
    // The branches overlap in time and each worker takes one step at a time: two different processes.
    expect(out.left?.pid).not.toBe(out.right?.pid);
    for (const s of ['src', 'left', 'right', 'join']) expect(workerPids.has(out[s]?.pid as number)).toBe(true);
    expect(out.join?.left?.value).toBe(20);
    expect(out.join?.right?.value).toBe(20);
    expect(out.join?.sum).toBe(40);
    const startedOn = new Set(result.events.filter((e) => e.type === 'STEP_START').map((e) => e.worker));
    expect(startedOn.size).toBeGreaterThanOrEqual(2);
  });

  it('runs a selection, taking the unselected upstream output from run config', async () => {
    const queue = uniqueQueue();
    await startWorkers(2, { redisUrl: redis.url, jobs: [DIAMOND], queue });
    const cfg = distributedConfig(redis.url, queue, {
      ops: { left: { inputs: { src: { value: 5 } }, config: { ms: 10 } }, join: { inputs: { right: { value: 7 } } } },
    });
    const r = await runCli(['run', DIAMOND, '-s', 'left*', '-c', cfg, '--json'], { env: env() });
    expect(r.code).toBe(0);
    expect(json(r.stdout).steps).toEqual({ left: 'SUCCESS', join: 'SUCCESS' });
    const job = await loadJob(DIAMOND);
    const lib = await executeJob(job, {
      select: ['left*'],
      runConfig: {
        execution: { config: { distributed: { redis: redis.url, queue } } },
        ops: { left: { inputs: { src: { value: 5 } }, config: { ms: 10 } }, join: { inputs: { right: { value: 7 } } } },
      },
    });
    expect((lib.outputs.join as { sum: number }).sum).toBe(57);
  });

  it('retries a flaky step, fails a broken one and skips its downstream, like the local executors', async () => {
    const queue = uniqueQueue();
    await startWorkers(2, { redisUrl: redis.url, jobs: [FAULTS], queue });
    const cfg = distributedConfig(redis.url, queue);
    const r = await runCli(['run', FAULTS, '-s', '*after_broken,*after_flaky', '-c', cfg, '--json'], { env: env() });
    expect(r.code).toBe(1);
    const summary = json(r.stdout);
    expect(summary.status).toBe('FAILURE');
    expect(summary.steps).toEqual({
      start: 'SUCCESS',
      flaky: 'SUCCESS',
      broken: 'FAILURE',
      after_broken: 'SKIPPED',
      after_flaky: 'SUCCESS',
    });
    expect(r.stderr).toContain('broken op always fails');

    // The run's event stream, read back from another process.
    const logs = await runCli(['logs', summary.runId, '--json'], { env: env() });
    expect(logs.code).toBe(0);
    const events = logs.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; stepKey?: string; attempt?: number });
    const flaky = events.filter((e) => e.stepKey === 'flaky').map((e) => `${e.type}:${e.attempt ?? ''}`);
    expect(flaky).toEqual(['STEP_START:1', 'STEP_UP_FOR_RETRY:1', 'STEP_START:2', 'STEP_SUCCESS:2']);
    expect(events.at(-1)?.type).toBe('RUN_FAILURE');
    const status = await runCli(['status', summary.runId, '--json'], { env: env() });
    // status --json is run --json's object, each failed step's error (message and stack) included.
    const { errors } = summary as typeof summary & { errors?: Record<string, { message: string }> };
    expect(errors?.broken?.message).toBe('broken op always fails');
    expect(JSON.parse(status.stdout)).toEqual(summary);
  });

  it('a worker that does not know the job fails the step with a message saying so, and runs nothing', async () => {
    const queue = uniqueQueue();
    const marker = path.join(tempDir(), 'ran');
    // No live worker has the job: after the placement wait (short here), the step fails.
    await startWorker({ redisUrl: redis.url, jobs: [DIAMOND], queue, env: { MARK: marker }, args: ['--placement-wait', '1000'] });
    const cfg = distributedConfig(redis.url, queue);
    const r = await runCli(['run', FAULTS, '-s', 'start', '-c', cfg, '--json'], { env: env() });
    expect(r.code).toBe(1);
    expect(json(r.stdout).steps).toEqual({ start: 'FAILURE' });
    expect(r.stderr).toMatch(/does not know job "faults" \(it loaded: diamond\)/);
    expect(existsSync(marker)).toBe(false);
  });

  it('a worker whose copy of the job differs refuses the step (definition hash mismatch)', async () => {
    const queue = uniqueQueue();
    const dir = tempDir();
    cpSync(FIX, dir, { recursive: true });
    const changed = path.join(dir, 'diamond.yaml');
    writeFileSync(changed, readFileSync(changed, 'utf8').replace('ins: { src: src }', 'ins: { src: src }\n    config: { ms: 1 }'));
    const marker = path.join(dir, 'ran');
    await startWorker({ redisUrl: redis.url, jobs: [changed], queue, env: { MARK: marker }, args: ['--placement-wait', '1000'] });
    const cfg = distributedConfig(redis.url, queue);
    const r = await runCli(['run', DIAMOND, '-c', cfg, '--json'], { env: env() });
    expect(r.code).toBe(1);
    expect(json(r.stdout).steps).toEqual({ src: 'FAILURE', left: 'SKIPPED', right: 'SKIPPED', join: 'SKIPPED' });
    expect(r.stderr).toMatch(/has definition hash [0-9a-f]{12}, but the run was planned from [0-9a-f]{12}/);
    expect(existsSync(marker)).toBe(false);
  });

  it('malformed queue messages fail with a logged reason; a step with a wrong hash gets the hash-differs failure; the worker goes on', async () => {
    const queue = uniqueQueue();
    const worker = await startWorker({ redisUrl: redis.url, jobs: [FIX], queue });
    // A real run, so a message naming it has a run to report to.
    const done = await runCli(['run', DIAMOND, '-c', distributedConfig(redis.url, queue), '--json'], { env: env() });
    const runId = json(done.stdout).runId;
    const q = new Queue(queue, { connection: { url: redis.url } });
    const probe = new Redis(redis.url);
    try {
      const step = { runId: 'no-such-run', jobName: 'diamond', jobHash: 'f'.repeat(64), stepKey: 'src', op: 'src', attempt: 1 };
      const sent = await Promise.all([
        q.add('garbage', { garbage: true }),
        q.add('string', 'a string'),
        q.add('null', null),
        q.add('wrong-hash', step),
        q.add('names-a-run', { ...step, runId, attempt: 'one' }),
      ]);
      const failed = await waitFor('every message to fail', async () => {
        const reasons = await Promise.all(sent.map(async (j) => (await q.getJob(j.id as string))?.failedReason));
        return reasons.every(Boolean) ? reasons : undefined;
      }, 60_000);
      expect(failed.slice(0, 3).every((r) => /not a valid step/.test(r ?? ''))).toBe(true);
      expect(failed.join('\n')).not.toMatch(/TypeError|Cannot read properties/);
      expect(failed[3]).toMatch(/has definition hash [0-9a-f]{12}, but the run was planned from ffffffffffff/);
      expect(failed[4]).toMatch(/"attempt" must be an integer/);
      expect(worker.logs()).toContain('refused queue message');
      // The message that names a run says so in that run's event log.
      const stream = await probe.xrange(`baton:{run:${runId}}:events`, '-', '+');
      expect(stream.map(([, f]) => f[1]).join('\n')).toMatch(/refused queue message .*attempt.* must be an integer/);
    } finally {
      await q.close();
      probe.disconnect();
    }
    // The worker still takes steps.
    const again = await runCli(['run', DIAMOND, '-c', distributedConfig(redis.url, queue), '--json'], { env: env() });
    expect(again.code, again.stderr).toBe(0);
  });

  it('status and logs of an unknown run exit 2', async () => {
    const r = await runCli(['status', 'no-such-run'], { env: env() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no run "no-such-run"');
  });

  it('an unreachable Redis is an input error (exit 2) and nothing runs', async () => {
    const cfg = distributedConfig('redis://127.0.0.1:1', uniqueQueue());
    const r = await runCli(['run', DIAMOND, '-c', cfg, '--json'], { env: env() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cannot reach Redis at redis://127.0.0.1:1');
    expect(parseErrorSummary(r).error.code).toBe('REDIS_UNAVAILABLE'); // --json: one error object, no run
  });
});
