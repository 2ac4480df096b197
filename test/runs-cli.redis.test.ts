/**
 * Operating distributed runs from the CLI: `run --detach` returns at once and the run goes on in
 * the background; `runs` lists runs newest first and filters them; finished runs expire after
 * `retention_days`; `runs --prune` removes finished runs now and spares running ones; a run id
 * already used is refused.
 */
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { allRunKeys, runKeys } from '../src/distributed/keys.js';
import { isAlive, ROOT, runCli, type CliResult } from './helpers/cli.js';
import { distributedConfig, uniqueQueue, waitFor } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorkers, stopAllWorkers } from './helpers/workers.js';

const FIX = path.join(ROOT, 'test/fixtures/distributed');
const DIAMOND = path.join(FIX, 'diamond.yaml');
const FAULTS = path.join(FIX, 'faults.yaml');
const DAY_MS = 86_400_000;

let redis: TestRedis;
let probe: Redis;
/** Background coordinators started by --detach: killed (by pid) if a test leaves one running. */
const detachedPids: number[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  probe = new Redis(redis.url);
});
afterEach(stopAllWorkers);
afterAll(async () => {
  for (const pid of detachedPids) {
    try {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  probe?.disconnect();
  await redis?.close();
});

const env = (): Record<string, string> => ({ REDIS_URL: redis.url });
const why = (r: CliResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

interface RunRow {
  runId: string;
  job: string;
  status: string;
  startedAt: string;
  endedAt?: string;
  durationSeconds: number;
  steps: Record<string, number>;
}

async function runs(...args: string[]): Promise<RunRow[]> {
  const r = await runCli(['runs', '--json', ...args], { env: env() });
  expect(r.code, why(r)).toBe(0);
  return JSON.parse(r.stdout) as RunRow[];
}

async function status(runId: string): Promise<{ runId: string; job: string; status: string; steps: Record<string, string> }> {
  const r = await runCli(['status', runId, '--json'], { env: env() });
  expect(r.code, why(r)).toBe(0);
  return JSON.parse(r.stdout) as { runId: string; job: string; status: string; steps: Record<string, string> };
}

/** `run --detach --json`; returns the parsed `{runId, pid}` and remembers the pid. */
async function detach(args: string[]): Promise<{ runId: string; pid: number }> {
  const r = await runCli(['run', ...args, '--detach', '--json'], { env: env() });
  expect(r.code, why(r)).toBe(0);
  const out = JSON.parse(r.stdout) as { runId: string; pid: number };
  if (typeof out.pid === 'number') detachedPids.push(out.pid);
  return out;
}

async function waitForStatus(runId: string, wanted: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(`run ${runId} to be ${wanted}`, async () => ((await probe.hget(runKeys(runId).record, 'status')) === wanted ? true : undefined), timeoutMs);
}

async function existingKeys(runId: string): Promise<string[]> {
  const keys = allRunKeys(runId);
  const flags = await Promise.all(keys.map((k) => probe.exists(k)));
  return keys.filter((_k, i) => flags[i] === 1);
}

describe('run --detach', () => {
  it('prints {"runId"} at once, before the run ends; the run finishes in the background and status shows SUCCESS', async () => {
    const queue = uniqueQueue();
    await startWorkers(1, { redisUrl: redis.url, jobs: [FIX], queue });
    const cfg = distributedConfig(redis.url, queue, { ops: { slow_a: { config: { ms: 2000 } } } });
    const { runId, pid } = await detach([FAULTS, '-s', 'slow_a', '-c', cfg]);
    expect(runId).toMatch(/^[A-Za-z0-9_-]+$/);
    // The only step sleeps 2 s: the run cannot have ended when detach returned.
    const record = await probe.hgetall(runKeys(runId).record);
    expect(record.status).toBe('STARTED');
    expect(record.endedAt).toBeUndefined();
    expect(await probe.pttl(runKeys(runId).record)).toBe(-1); // no retention clock while running
    expect(isAlive(pid)).toBe(true);

    await waitForStatus(runId, 'SUCCESS');
    expect(await status(runId)).toEqual({ runId, job: 'faults', status: 'SUCCESS', steps: { slow_a: 'SUCCESS' } });
    // The background coordinator exits once its run has ended.
    await waitFor('the background coordinator to exit', () => (isAlive(pid) ? undefined : true), 10_000);
  });

  it('with invalid input exits 2 and starts nothing', async () => {
    // Not dbsize: the worker of the test before keeps setting and expiring its BullMQ keys.
    const batonKeys = async (): Promise<string[]> => (await probe.keys('baton:*')).sort();
    const before = await batonKeys();
    const queue = uniqueQueue();
    const r = await runCli(['run', DIAMOND, '-s', 'nope', '-c', distributedConfig(redis.url, queue), '--detach', '--json'], { env: env() });
    expect(r.code, why(r)).toBe(2);
    // The one --json object of a refused input: the error, nothing started.
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'SELECTION_INVALID' } });
    expect(await batonKeys()).toEqual(before);
    expect(await probe.keys(`*${queue}*`)).toEqual([]);
  });
});

describe('runs, retention, prune and run ids', () => {
  const ids = { first: 'rc-diamond-1', failed: 'rc-faults-broken', second: 'rc-diamond-2', shortRetention: 'rc-diamond-half-day' };

  it('runs lists runs newest first with id, job, status and start; --status, --job and --limit filter', async () => {
    const queue = uniqueQueue();
    await startWorkers(2, { redisUrl: redis.url, jobs: [FIX], queue, concurrency: 4 });
    const cfg = distributedConfig(redis.url, queue);
    const run = async (runId: string, args: string[], code: number): Promise<void> => {
      const r = await runCli(['run', ...args, '-c', cfg, '--json', '--run-id', runId], { env: env() });
      expect(r.code, why(r)).toBe(code);
    };
    await run(ids.first, [DIAMOND], 0);
    await run(ids.failed, [FAULTS, '-s', 'broken'], 1);
    await run(ids.second, [DIAMOND], 0);
    const halfDay = distributedConfig(redis.url, queue, { distributed: { retention_days: 0.5 } });
    const r = await runCli(['run', DIAMOND, '-c', halfDay, '--json', '--run-id', ids.shortRetention], { env: env() });
    expect(r.code, why(r)).toBe(0);

    const all = await runs();
    const mine = [ids.shortRetention, ids.second, ids.failed, ids.first];
    expect(all.map((x) => x.runId).filter((id) => mine.includes(id))).toEqual(mine);
    const starts = all.map((x) => Date.parse(x.startedAt));
    expect(starts).toEqual([...starts].sort((a, b) => b - a));
    expect(all.find((x) => x.runId === ids.failed)).toMatchObject({
      job: 'faults',
      status: 'FAILURE',
      startedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      endedAt: expect.any(String),
      steps: { FAILURE: 1 },
    });
    expect(all.find((x) => x.runId === ids.first)).toMatchObject({ job: 'diamond', status: 'SUCCESS', steps: { SUCCESS: 4 } });

    const failures = await runs('--status', 'FAILURE');
    expect(failures.map((x) => x.runId)).toEqual([ids.failed]);
    const diamonds = await runs('--job', 'diamond');
    expect(diamonds.map((x) => x.runId)).toEqual([ids.shortRetention, ids.second, ids.first]);
    expect((await runs('--limit', '2')).map((x) => x.runId)).toEqual(all.slice(0, 2).map((x) => x.runId));
    expect((await runs('--job', 'diamond', '--status', 'SUCCESS', '--limit', '1')).map((x) => x.runId)).toEqual([ids.shortRetention]);
    expect(await runs('--job', 'no_such_job')).toEqual([]);

    const human = await runCli(['runs', '--limit', '3'], { env: env() });
    expect(human.code, why(human)).toBe(0);
    expect(human.stdout.trim().split('\n')).toHaveLength(3);
    expect(human.stdout).toContain(ids.shortRetention);

    for (const bad of [['--status', 'DONE'], ['--limit', '0'], ['--limit', 'x']]) {
      const b = await runCli(['runs', ...bad], { env: env() });
      expect(b.code, `${bad.join(' ')}: ${why(b)}`).toBe(2);
    }
  });

  it('a finished run expires after retention_days: 7 days by default, as configured otherwise', async () => {
    for (const id of [ids.first, ids.failed, ids.second]) {
      const keys = await existingKeys(id);
      expect(keys).toContain(runKeys(id).record);
      expect(keys).not.toContain(runKeys(id).driver);
      const ttls = await Promise.all(keys.map((k) => probe.pttl(k)));
      for (const [i, ttl] of ttls.entries()) {
        // Within a few minutes of 7 days (the runs ended moments ago).
        expect(ttl, `${keys[i]}`).toBeGreaterThan(7 * DAY_MS - 5 * 60_000);
        expect(ttl, `${keys[i]}`).toBeLessThanOrEqual(7 * DAY_MS);
      }
    }
    const half = await probe.pttl(runKeys(ids.shortRetention).record);
    expect(half).toBeGreaterThan(DAY_MS / 2 - 5 * 60_000);
    expect(half).toBeLessThanOrEqual(DAY_MS / 2);
  });

  it('--run-id with an id already used is refused (exit 2) and leaves that run alone', async () => {
    const queue = uniqueQueue();
    await startWorkers(1, { redisUrl: redis.url, jobs: [FIX], queue, concurrency: 4 });
    const cfg = distributedConfig(redis.url, queue);
    const eventsBefore = await probe.xlen(runKeys(ids.first).events);
    const r = await runCli(['run', DIAMOND, '-c', cfg, '--json', '--run-id', ids.first], { env: env() });
    expect(r.code, why(r)).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'RUN_BUSY' } });
    expect(r.stderr).toContain('RUN_BUSY');
    expect(await probe.hget(runKeys(ids.first).record, 'status')).toBe('SUCCESS');
    expect(await probe.xlen(runKeys(ids.first).events)).toBe(eventsBefore);

    // The same id given to several coordinators at once: exactly one runs it.
    const racers = await Promise.all(
      [1, 2, 3].map(() => runCli(['run', DIAMOND, '-c', cfg, '--json', '--run-id', 'rc-raced'], { env: env() })),
    );
    expect(racers.map((x) => x.code).sort()).toEqual([0, 2, 2]);
    expect((await status('rc-raced')).status).toBe('SUCCESS');

    const bad = await runCli(['run', DIAMOND, '-c', cfg, '--run-id', 'has space'], { env: env() });
    expect(bad.code, why(bad)).toBe(2);
  });

  it('--detach with an id already used is refused too (exit 2), not reported as started', async () => {
    const queue = uniqueQueue();
    const cfg = distributedConfig(redis.url, queue);
    const r = await runCli(['run', DIAMOND, '-c', cfg, '--detach', '--json', '--run-id', ids.second], { env: env() });
    const out = r.stdout ? (JSON.parse(r.stdout) as { pid?: number; error?: { code: string } }) : {};
    if (typeof out.pid === 'number') detachedPids.push(out.pid);
    expect(r.code, why(r)).toBe(2);
    expect(out).toEqual({ error: expect.objectContaining({ code: 'RUN_BUSY' }) });
    expect(await probe.hget(runKeys(ids.second).record, 'status')).toBe('SUCCESS');
  });

  it('runs --prune removes finished runs (every key, gone from runs) and spares a running one', async () => {
    const queue = uniqueQueue();
    await startWorkers(1, { redisUrl: redis.url, jobs: [FIX], queue });
    const cfg = distributedConfig(redis.url, queue, { ops: { slow_a: { config: { ms: 60_000 } } } });
    const running = await detach([FAULTS, '-s', 'slow_a', '-c', cfg, '--run-id', 'rc-running']);
    expect(running.runId).toBe('rc-running');
    await waitFor('slow_a to run', async () => ((await probe.hget(runKeys('rc-running').steps, 'slow_a'))?.includes('IN_PROGRESS') ? true : undefined));

    // Filters first: only the FAILURE run.
    const p1 = await runCli(['runs', '--prune', '--status', 'FAILURE', '--json'], { env: env() });
    expect(p1.code, why(p1)).toBe(0);
    expect(JSON.parse(p1.stdout)).toEqual({ pruned: [ids.failed] });
    expect(await existingKeys(ids.failed)).toEqual([]);
    expect(await existingKeys(ids.first)).not.toEqual([]);
    // A running run is never pruned, even when asked for by status.
    const p2 = await runCli(['runs', '--prune', '--status', 'STARTED', '--json'], { env: env() });
    expect(JSON.parse(p2.stdout)).toEqual({ pruned: [] });

    const finished = (await runs('--limit', '1000')).filter((x) => x.status !== 'STARTED').map((x) => x.runId);
    expect(finished.length).toBeGreaterThanOrEqual(4);
    const p3 = await runCli(['runs', '--prune'], { env: env() });
    expect(p3.code, why(p3)).toBe(0);
    expect(p3.stdout).toContain(`pruned ${finished.length} finished run(s)`);
    for (const id of finished) expect(await existingKeys(id), id).toEqual([]);
    expect(await probe.zrange('baton:runs', 0, -1)).toEqual(['rc-running']);
    expect((await runs()).map((x) => x.runId)).toEqual(['rc-running']);
    expect((await status('rc-running')).status).toBe('STARTED');
    const gone = await runCli(['status', ids.first], { env: env() });
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('RUN_NOT_FOUND');

    // The spared run carries on: cancel it, and it expires like any finished run.
    const c = await runCli(['cancel', 'rc-running', '--json'], { env: env() });
    expect(c.code, why(c)).toBe(0);
    expect(JSON.parse(c.stdout)).toMatchObject({ status: 'CANCELED' });
    const ttl = await probe.pttl(runKeys('rc-running').record);
    expect(ttl).toBeGreaterThan(7 * DAY_MS - 5 * 60_000);
    await waitFor('the background coordinator to exit', () => (isAlive(running.pid) ? undefined : true), 10_000);
  });
});
