import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from './helpers/cli.js';
import { distributedConfig, tempDir, uniqueQueue, waitFor, waitForStepStatus } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorkers, stopAllWorkers } from './helpers/workers.js';

const FAULTS = path.join(ROOT, 'test/fixtures/distributed/faults.yaml');
// Short BullMQ locks: a dead worker's step is re-queued in about two seconds.
const FAST_RECOVERY = { lockDurationMs: 1000, stalledIntervalMs: 1000 };

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis({ appendOnly: true });
});
afterEach(stopAllWorkers);
afterAll(async () => redis?.close());

const summaryOf = (stdout: string) => JSON.parse(stdout) as { runId: string; status: string; steps: Record<string, string> };

describe('distributed executor under faults', () => {
  it('a worker killed with SIGKILL mid-step loses nothing: the step runs again on another worker', async () => {
    const queue = uniqueQueue();
    const dir = tempDir();
    const workers = await startWorkers(2, { redisUrl: redis.url, jobs: [FAULTS], queue, concurrency: 1, ...FAST_RECOVERY });
    const cfg = distributedConfig(redis.url, queue, { ops: { killable: { config: { dir, ms: 60_000 } } } });
    const run = runCli(['run', FAULTS, '-s', 'killable', '-c', cfg, '--json'], { env: { REDIS_URL: redis.url }, timeoutMs: 45_000 });
    const marker = path.join(dir, 'first-run-pid');
    const victimPid = await waitFor('the step to start', () => (existsSync(marker) ? Number(readFileSync(marker, 'utf8')) : undefined));
    const victim = workers.find((w) => w.pid === victimPid);
    expect(victim).toBeDefined();
    victim?.kill('SIGKILL');
    const r = await run;
    expect(r.code).toBe(0);
    expect(summaryOf(r.stdout).steps).toEqual({ killable: 'SUCCESS' });
    const survivor = workers.find((w) => w.pid !== victimPid);
    expect(readFileSync(path.join(dir, 'runs'), 'utf8').trim()).toBe(String(survivor?.pid));
  });

  it('a Redis restart (AOF on) while a run is in flight: coordinator and workers reconnect and the run finishes', async () => {
    const queue = uniqueQueue();
    const workers = await startWorkers(2, { redisUrl: redis.url, jobs: [FAULTS], queue });
    const cfg = distributedConfig(redis.url, queue, { ops: { slow_a: { config: { ms: 800 } }, slow_b: { config: { ms: 800 } } } });
    const run = runCli(['run', FAULTS, '-s', 'slow_a*', '-c', cfg, '--json'], { env: { REDIS_URL: redis.url }, timeoutMs: 45_000 });
    // Restart once the first step is running on a worker.
    await waitForStepStatus(redis.url, 'slow_a', 'IN_PROGRESS');
    await redis.restart();
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(summaryOf(r.stdout).steps).toEqual({ slow_a: 'SUCCESS', slow_b: 'SUCCESS', slow_c: 'SUCCESS' });
    // The outage really reached the workers.
    expect(workers.some((w) => w.logs().includes('redis connection back'))).toBe(true);
  });

  it('SIGTERM lets a running step finish; past the grace period a step is re-queued to another worker', async () => {
    const queue = uniqueQueue();
    const dir = tempDir();
    const [first] = await startWorkers(1, { redisUrl: redis.url, jobs: [FAULTS], queue, concurrency: 1, graceMs: 300, ...FAST_RECOVERY });
    const cfg = distributedConfig(redis.url, queue, { ops: { killable: { config: { dir, ms: 60_000 } } } });
    const run = runCli(['run', FAULTS, '-s', 'killable', '-c', cfg, '--json'], { env: { REDIS_URL: redis.url }, timeoutMs: 45_000 });
    await waitFor('the step to start', () => (existsSync(path.join(dir, 'first-run-pid')) ? true : undefined));
    first?.kill('SIGTERM');
    expect(await first?.exited).toBe(0);
    expect(first?.logs()).toContain('step re-queued: worker shutting down');
    const [second] = await startWorkers(1, { redisUrl: redis.url, jobs: [FAULTS], queue, ...FAST_RECOVERY });
    const r = await run;
    expect(r.code).toBe(0);
    expect(readFileSync(path.join(dir, 'runs'), 'utf8').trim()).toBe(String(second?.pid));
  });

  it('SIGTERM lets a running step finish within the grace period', async () => {
    const queue = uniqueQueue();
    const [worker] = await startWorkers(1, { redisUrl: redis.url, jobs: [FAULTS], queue, graceMs: 20_000 });
    const cfg = distributedConfig(redis.url, queue, { ops: { slow_a: { config: { ms: 1500 } } } });
    const run = runCli(['run', FAULTS, '-s', 'slow_a', '-c', cfg, '--json'], { env: { REDIS_URL: redis.url } });
    await waitForStepStatus(redis.url, 'slow_a', 'IN_PROGRESS');
    worker?.kill('SIGTERM');
    const r = await run;
    expect(r.code).toBe(0);
    expect(summaryOf(r.stdout).steps).toEqual({ slow_a: 'SUCCESS' });
    expect(await worker?.exited).toBe(0);
  });

  it('Ctrl-C on a distributed run cancels the steps running on workers; the workers go on serving', async () => {
    const queue = uniqueQueue();
    const [worker] = await startWorkers(1, { redisUrl: redis.url, jobs: [FAULTS], queue, concurrency: 2 });
    const cfg = distributedConfig(redis.url, queue, { ops: { slow_a: { config: { ms: 60_000 } } } });
    const r = await runCli(['run', FAULTS, '-s', 'slow_a*', '-c', cfg, '--json'], {
      env: { REDIS_URL: redis.url },
      interruptWhen: /slow_a started/,
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(130);
    const summary = summaryOf(r.stdout);
    expect(summary.status).toBe('CANCELED');
    expect(summary.steps).toEqual({ slow_a: 'CANCELED', slow_b: 'NOT_STARTED', slow_c: 'NOT_STARTED' });
    expect(worker?.logs()).toContain("canceling step at the coordinator's request");
    const status = await runCli(['status', summary.runId, '--json'], { env: { REDIS_URL: redis.url } });
    expect(JSON.parse(status.stdout).status).toBe('CANCELED');
    // The same worker still takes new steps.
    const again = await runCli(['run', FAULTS, '-s', 'start', '-c', distributedConfig(redis.url, queue), '--json'], { env: { REDIS_URL: redis.url } });
    expect(again.code).toBe(0);
  });
});
