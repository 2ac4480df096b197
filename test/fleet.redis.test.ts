/**
 * The fleet as an operator meets it: a run whose steps no live worker can take says so (and keeps
 * saying it until one comes); during a rolling deploy each step runs on a worker whose copy of the
 * job matches the step's hash; a step no worker can take fails only after the placement wait.
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, parseSummary, runCli, type CliResult } from './helpers/cli.js';
import { distributedConfig, uniqueQueue, waitFor } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorker, stopAllWorkers } from './helpers/workers.js';

const V1 = path.join(ROOT, 'test/fixtures/deploy/v1/etl.yaml');
const V2 = path.join(ROOT, 'test/fixtures/deploy/v2/etl.yaml');
const TAGGED = path.join(ROOT, 'test/fixtures/deploy/tagged.yaml');
const STEPS = ['extract_a', 'extract_b', 'extract_c', 'extract_d', 'load'];

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterEach(stopAllWorkers);
afterAll(async () => redis?.close());

interface StatusJson {
  status: string;
  steps: Record<string, string>;
  waiting?: Record<string, string>;
  errors?: Record<string, { message: string }>;
}

async function status(runId: string): Promise<StatusJson | undefined> {
  const r = await runCli(['status', runId, '--redis', redis.url, '--json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as StatusJson) : undefined;
}

/** The worker ids that started each step of a run, from its event log. */
async function startedOn(runId: string): Promise<Record<string, string[]>> {
  const r = await runCli(['logs', runId, '--redis', redis.url, '--json']);
  expect(r.code, r.stderr).toBe(0);
  const on: Record<string, string[]> = {};
  for (const line of r.stdout.trim().split('\n')) {
    const e = JSON.parse(line) as { type: string; stepKey?: string; worker?: string };
    if (e.type === 'STEP_START' && e.stepKey && e.worker) (on[e.stepKey] ??= []).push(e.worker);
  }
  return on;
}

async function hashOf(queue: string, workerId: string): Promise<string> {
  const r = await runCli(['workers', '--redis', redis.url, '--queue', queue, '--json']);
  const w = (JSON.parse(r.stdout) as Array<{ id: string; jobs: Array<{ hash: string }> }>).find((x) => x.id === workerId);
  const hash = w?.jobs[0]?.hash;
  if (!hash) throw new Error(`worker ${workerId} is not listed with a job`);
  return hash;
}

const runId = (name: string): string => `${name}-${process.pid}-${Date.now().toString(36)}`;

describe('a run no live worker can take', () => {
  it('says so within seconds (live view, event log, status), says it again when an old worker comes, and runs once a matching one does', async () => {
    const queue = uniqueQueue();
    const id = runId('silent');
    const running = runCli(['run', V2, '-c', distributedConfig(redis.url, queue), '--json', '--run-id', id]);

    const first = await waitFor('status to show the steps WAITING for a worker', async () => {
      const st = await status(id);
      return st?.steps.extract_a === 'WAITING' ? st : undefined;
    });
    for (const key of ['extract_a', 'extract_b', 'extract_c', 'extract_d']) {
      expect(first.steps[key]).toBe('WAITING');
      expect(first.waiting?.[key]).toMatch(new RegExp(`^waiting: no live worker on queue \`${queue}\` has job \`etl\` at hash [0-9a-f]{8}; no worker is on the queue$`));
    }
    // `load` depends on the others: it is not ready, so not waiting for a worker.
    expect(first.steps.load).toBe('NOT_STARTED');

    // A worker with the old copy comes: the message names the hash it has.
    const old = await startWorker({ redisUrl: redis.url, jobs: [V1], queue, id: `old-${queue}` });
    const oldHash = (await hashOf(queue, old.id)).slice(0, 8);
    await waitFor('the notice to name the old copy', async () => {
      const st = await status(id);
      return st?.waiting?.extract_a?.endsWith(`; 1 worker has it at ${oldHash}`) ? true : undefined;
    });

    // A worker with the run's own copy comes: every step runs there.
    const fresh = await startWorker({ redisUrl: redis.url, jobs: [V2], queue, id: `new-${queue}` });
    const r = await running;
    expect(r.code, r.stderr).toBe(0);
    expect(parseSummary(r).status).toBe('SUCCESS');
    expect(r.stderr).toMatch(/run │ WARN waiting: no live worker on queue .* no worker is on the queue/);
    expect(r.stderr).toContain(`; 1 worker has it at ${oldHash}`);
    expect(r.stderr).toMatch(/a live worker on queue `[^`]+` has job `etl` at hash [0-9a-f]{8} now/);
    const on = await startedOn(id);
    for (const key of STEPS) expect(on[key], key).toEqual([fresh.id]);
    // The old worker saw the steps and left them for another.
    expect(old.logs()).toContain('step left on the queue');
  });

  it('a step canceled while it waits for a worker is canceled, never shown as started', async () => {
    const queue = uniqueQueue();
    const id = runId('cancel');
    const running = runCli(['run', V2, '-c', distributedConfig(redis.url, queue), '--json', '--run-id', id]);
    await waitFor('the steps to be WAITING', async () => ((await status(id))?.steps.extract_a === 'WAITING' ? true : undefined));
    const c = await runCli(['cancel', id, '--redis', redis.url]);
    expect(c.code, c.stderr).toBe(0);
    const r = await running;
    expect(r.code).toBe(1);
    expect(parseSummary(r).status).toBe('CANCELED');
    expect(r.stderr).not.toMatch(/▶ extract_\w+ started/);
    expect(r.stderr).toMatch(/■ extract_a canceled/);
    // Cancelling it again says it had ended.
    const again = await runCli(['cancel', id, '--redis', redis.url]);
    expect(again.stdout.trim()).toBe(`run ${id} had already ended CANCELED: nothing to cancel`);
  });
});

describe('a step held back by a limit', () => {
  it('shows WAITING in status with the limit that holds it', async () => {
    const queue = uniqueQueue();
    const spec = 'database=fleet_test';
    const set = await runCli(['limits', 'set', spec, '0', '--redis', redis.url]);
    expect(set.code, set.stderr).toBe(0);
    try {
      await startWorker({ redisUrl: redis.url, jobs: [TAGGED], queue });
      const id = runId('limited');
      const running = runCli(['run', TAGGED, '-c', distributedConfig(redis.url, queue), '--json', '--run-id', id]);
      const st = await waitFor('the step to be WAITING', async () => {
        const s = await status(id);
        return s?.steps.query === 'WAITING' ? s : undefined;
      });
      expect(st.waiting?.query).toBe(`waiting for a concurrency slot: limit ${spec} (0 slots) (see coordinator limits list)`);
      const text = await runCli(['status', id, '--redis', redis.url]);
      expect(text.stdout).toMatch(/query\s+WAITING\n\s+waiting for a concurrency slot: limit database=/);
      await runCli(['cancel', id, '--redis', redis.url]);
      expect((await running).code).toBe(1);
    } finally {
      await runCli(['limits', 'delete', spec, '--redis', redis.url]);
    }
  });
});

describe('a rolling deploy', () => {
  it('with one old and one new worker on a queue, every step runs on the worker whose copy matches its run', async () => {
    const queue = uniqueQueue();
    const cfg = distributedConfig(redis.url, queue);
    // Only the old worker at first: it takes the new run's steps off the queue and must leave them.
    const old = await startWorker({ redisUrl: redis.url, jobs: [V1], queue, id: `old-${queue}`, concurrency: 2 });
    const newId = runId('v2');
    const newRun = runCli(['run', V2, '-c', cfg, '--json', '--run-id', newId]);
    await waitFor('the old worker to leave a step', () => (old.logs().includes('step left on the queue') ? true : undefined));
    const fresh = await startWorker({ redisUrl: redis.url, jobs: [V2], queue, id: `new-${queue}`, concurrency: 2 });
    // And a run planned from the old copy, at the same time.
    const oldId = runId('v1');
    const oldRun = runCli(['run', V1, '-c', cfg, '--json', '--run-id', oldId]);

    const [a, b]: [CliResult, CliResult] = await Promise.all([newRun, oldRun]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const onNew = await startedOn(newId);
    const onOld = await startedOn(oldId);
    for (const key of STEPS) {
      expect(onNew[key], `v2 ${key}`).toEqual([fresh.id]);
      expect(onOld[key], `v1 ${key}`).toEqual([old.id]);
    }
  });

  it('a step no live worker can take fails with JOB_HASH_MISMATCH after the placement wait, naming who has what', async () => {
    const queue = uniqueQueue();
    const old = await startWorker({ redisUrl: redis.url, jobs: [V1], queue, args: ['--placement-wait', '1500'] });
    const oldHash = (await hashOf(queue, old.id)).slice(0, 8);
    const r = await runCli(['run', V2, '-c', distributedConfig(redis.url, queue), '--json', '-s', 'extract_a']);
    expect(r.code, r.stderr).toBe(1);
    const summary = parseSummary(r) as { status: string; errors?: Record<string, { message: string }> };
    expect(summary.status).toBe('FAILURE');
    expect(summary.errors?.extract_a?.message).toMatch(/has definition hash [0-9a-f]{12}, but the run was planned from [0-9a-f]{12}/);
    expect(summary.errors?.extract_a?.message).toContain(`has job \`etl\` at hash`);
    expect(summary.errors?.extract_a?.message).toContain(`1 worker has it at ${oldHash}, for `);
  });
});
