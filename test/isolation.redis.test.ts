import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseSummary, ROOT, runCli } from './helpers/cli.js';
import { distributedConfig, uniqueQueue } from './helpers/distributed.js';
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
});
