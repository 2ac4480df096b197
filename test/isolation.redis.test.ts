import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseSummary, ROOT, runCli } from './helpers/cli.js';
import { failedQueueJobReason } from '../src/distributed/poison.js';
import { distributedConfig, tempDir, uniqueQueue } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorkers, stopAllWorkers, type TestWorker } from './helpers/workers.js';

const JOB = path.join(ROOT, 'test/fixtures/isolation/isolation.yaml');

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterEach(stopAllWorkers);
afterAll(async () => redis?.close());

const alive = (w: TestWorker): boolean => w.child.exitCode === null && w.child.signalCode === null;

async function runOn(queue: string, selection: string[], timeoutMs = 60_000) {
  const cfg = distributedConfig(redis.url, queue);
  const args = ['run', JOB, ...selection.flatMap((s) => ['-s', s]), '-c', cfg, '--json'];
  return runCli(args, { env: { REDIS_URL: redis.url }, timeoutMs });
}

describe('a worker survives its ops (process isolation)', () => {
  for (const [op, what] of [
    ['exiter', /exited with code 3; stderr: exiter: giving up/],
    ['forgot_await', /unhandled rejection in the step process: nobody awaited me/],
  ] as const) {
    it(`${op}: fails only its own step; every worker lives and the next run succeeds on them`, async () => {
      const queue = uniqueQueue();
      const workers = await startWorkers(3, { redisUrl: redis.url, jobs: [JOB], queue, concurrency: 2 });
      // The neighbour runs beside the breaking op on the same workers and must not die with it.
      const r = await runOn(queue, [op, 'neighbour']);
      expect(r.code, r.stderr).toBe(1);
      const summary = parseSummary(r);
      expect(summary.status).toBe('FAILURE');
      expect(summary.steps).toEqual({ [op]: 'FAILURE', neighbour: 'SUCCESS' });
      expect(r.stderr).toMatch(what);
      const logs = await runCli(['logs', summary.runId], { env: { REDIS_URL: redis.url } });
      expect(logs.stdout + logs.stderr).toMatch(what);
      expect(workers.every(alive)).toBe(true);

      const next = await runOn(queue, ['ok*']);
      expect(next.code, next.stderr).toBe(0);
      expect(parseSummary(next).steps).toEqual({ ok: 'SUCCESS', ok2: 'SUCCESS' });
      expect(workers.every(alive)).toBe(true);
      expect(workers.map((w) => w.logs()).join('')).toContain('replacing it');
    });
  }

  it('runs each step in a long-lived step process, not in the worker; --max-steps-per-process recycles it', async () => {
    const queue = uniqueQueue();
    const [worker] = await startWorkers(1, { redisUrl: redis.url, jobs: [JOB], queue, concurrency: 1, maxStepsPerProcess: 2 });
    for (let i = 0; i < 2; i++) {
      const r = await runOn(queue, ['ok*']);
      expect(r.code, r.stderr).toBe(0);
    }
    const logs = worker?.logs() ?? '';
    // One line per step: which process ran it.
    const pids = [...logs.matchAll(/step ok2? succeeded in [\d.]+ s on process (\d+)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(4);
    expect(pids).not.toContain(worker?.pid);
    // Two steps per process: the first two share one, the last two another.
    expect(pids[0]).toBe(pids[1]);
    expect(pids[2]).toBe(pids[3]);
    expect(pids[2]).not.toBe(pids[0]);
    expect(logs).toContain('recycled after 2 steps');
  });

  it('--isolation none runs steps inside the worker', async () => {
    const queue = uniqueQueue();
    const [worker] = await startWorkers(1, { redisUrl: redis.url, jobs: [JOB], queue, isolation: 'none' });
    const r = await runOn(queue, ['ok']);
    expect(r.code, r.stderr).toBe(0);
    expect(worker?.logs()).toMatch(new RegExp(`step ok succeeded in [\\d.]+ s on process ${worker?.pid}`));
  });

  it('a poison step that kills every worker running it fails after 3 deliveries; nothing hangs', async () => {
    const queue = uniqueQueue();
    const dir = tempDir();
    // Four workers: three die, and the survivor's stalled-step check fails the step (a dead
    // worker checks nothing; in production a supervisor restarts workers).
    const workers = await startWorkers(4, { redisUrl: redis.url, jobs: [JOB], queue, concurrency: 1, lockDurationMs: 1000, stalledIntervalMs: 1000 });
    const cfg = distributedConfig(redis.url, queue, { ops: { poison: { config: { dir } } } });
    const r = await runCli(['run', JOB, '-s', 'poison', '-c', cfg, '--json'], { env: { REDIS_URL: redis.url }, timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(1);
    const summary = parseSummary(r);
    expect(summary).toMatchObject({ status: 'FAILURE', steps: { poison: 'FAILURE' } });
    const deliveries = readFileSync(path.join(dir, 'deliveries'), 'utf8').trim().split('\n').map(Number);
    expect(deliveries).toHaveLength(3);
    expect(new Set(deliveries).size).toBe(3);
    const dead = workers.filter((w) => deliveries.includes(w.pid));
    expect(await Promise.all(dead.map((w) => w.exited))).toEqual(['SIGKILL', 'SIGKILL', 'SIGKILL']);
    expect(workers.filter(alive)).toHaveLength(1);
    // What the coordinator is to say about it (see failedQueueJobReason).
    const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
    const q = new Queue(queue, { connection: conn });
    try {
      const [failed] = await q.getJobs(['failed']);
      expect(failed && failedQueueJobReason(failed)).toMatch(/^the worker running it died 3 times: /);
    } finally {
      await q.close();
      conn.disconnect();
    }
  }, 150_000);

  it('a step longer than its op\'s timeout_seconds fails "timed out after 1 s" on a worker too, after its retry; the worker goes on', async () => {
    const queue = uniqueQueue();
    const [worker] = await startWorkers(1, { redisUrl: redis.url, jobs: [JOB], queue });
    const r = await runOn(queue, ['sleepy']);
    expect(r.code, r.stderr).toBe(1);
    expect(parseSummary(r).steps).toEqual({ sleepy: 'FAILURE' });
    expect(r.stderr).toMatch(/attempt 1 failed: step "sleepy" timed out after 1 s .*; retrying/);
    expect(r.stderr).toContain('✖ sleepy failed');
    const next = await runOn(queue, ['ok']);
    expect(next.code, next.stderr).toBe(0);
    expect(worker && alive(worker)).toBe(true);
  });

  it('a distributed run longer than its max_runtime_seconds is canceled with that reason; its step stops on the worker', async () => {
    const queue = uniqueQueue();
    await startWorkers(1, { redisUrl: redis.url, jobs: [JOB], queue });
    const cfg = distributedConfig(redis.url, queue);
    writeFileSync(cfg, `max_runtime_seconds: 2\n${readFileSync(cfg, 'utf8')}`);
    const r = await runCli(['run', JOB, '-s', 'long', '-c', cfg, '--json'], { env: { REDIS_URL: redis.url } });
    expect(parseSummary(r)).toMatchObject({ status: 'CANCELED', steps: { long: 'CANCELED' } });
    expect(r.stderr).toContain('the run exceeded its max_runtime_seconds (2 s)');
  });
});
