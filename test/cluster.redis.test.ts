/**
 * baton on a 3-master Redis Cluster (issue 16), with real `coordinator` CLI and `worker`
 * processes connected through a `redis+cluster://` URL to the second node (not the first): a
 * cross-run limit over runs whose steps are sharded over three queues on three masters, a
 * cancel from another process, and a resume after the coordinator was SIGKILLed.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { RunEvent } from '../src/core/types.js';
import { createRedis } from '../src/distributed/connection.js';
import { findOrphans } from '../src/distributed/orphans.js';
import { stepQueueName } from '../src/distributed/queues.js';
import { createStreamHub } from '../src/distributed/stream-hub.js';
import { CLI, ROOT, runCli, type CliResult } from './helpers/cli.js';
import { waitFor } from './helpers/distributed.js';
import { hasClusterBinaries, keySlot, masterOfSlot, startTestRedisCluster, type TestRedisCluster } from './helpers/redis-cluster.js';
import { startWorkers, stopAllWorkers } from './helpers/workers.js';

const LIMITS = path.join(ROOT, 'test/fixtures/limits');
const DIST = path.join(ROOT, 'test/fixtures/distributed');
const SHORT_LEASES = { BATON_RUN_LEASE_MS: '1500', BATON_SLOT_LEASE_MS: '1500', BATON_SLOT_SWEEP_MS: '300' };
const available = await hasClusterBinaries();

let cluster: TestRedisCluster;
let url: string;
let probe: Redis;
/** Three queue names whose hash tags fall on three different masters (picked in beforeAll). */
let shards: string[] = [];

/** The BullMQ key of `queue`'s completed set on a cluster (prefix `bull:{<queue>}`, queues.ts). */
const completedKey = (queue: string): string => `bull:{${queue}}:${queue}:completed`;

beforeAll(async () => {
  if (!available) return;
  cluster = await startTestRedisCluster(3);
  url = cluster.clusterUrl(1);
  probe = createRedis(url);
  // Candidate names until each master has one.
  const byMaster = new Map<number, string>();
  for (let i = 0; byMaster.size < 3 && i < 200; i++) {
    const name = `shard${process.pid}_${i}`;
    const master = await masterOfSlot(cluster, await keySlot(cluster, completedKey(name)));
    if (!byMaster.has(master)) byMaster.set(master, name);
  }
  shards = [...byMaster.values()];
});
afterEach(stopAllWorkers);
afterAll(async () => {
  await probe?.quit().catch(() => {});
  await cluster?.close();
});

const env = (): Record<string, string> => ({ REDIS_URL: url, ...SHORT_LEASES });
const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);

function config(queue: string | string[], ops?: Record<string, unknown>): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'baton-cluster-cfg-')), 'run-config.yaml');
  writeFileSync(file, stringify({ execution: { config: { distributed: { redis: url, queue } } }, ...(ops ? { ops } : {}) }));
  return file;
}

function succeeded(r: CliResult): { runId: string; status: string; steps: Record<string, string> } {
  expect(r.code, `exit ${r.code}\n${r.stderr.slice(-3000)}`).toBe(0);
  const s = JSON.parse(r.stdout) as { runId: string; status: string; steps: Record<string, string> };
  expect(s.status).toBe('SUCCESS');
  return s;
}

/** Most of the ops' start/end intervals (test/fixtures/limits/ops.mjs) open at once. */
function maxConcurrency(file: string): { max: number; count: number } {
  const points: Array<{ t: number; d: number }> = [];
  let count = 0;
  for (const line of lines(file)) {
    const [what, ms] = line.split(' ');
    if (what === 'start') count++;
    points.push({ t: Number(ms), d: what === 'start' ? 1 : -1 });
  }
  points.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let max = 0;
  for (const p of points) max = Math.max(max, (now += p.d));
  return { max, count };
}

async function eventsOf(runId: string): Promise<RunEvent[]> {
  const r = await runCli(['logs', runId, '--json'], { env: env() });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as RunEvent);
}

describe.skipIf(!available)('Redis Cluster (3 masters, redis-server binaries)', () => {
  it('the three queues hash to three different masters', async () => {
    expect(shards).toHaveLength(3);
    const masters = await Promise.all(shards.map(async (q) => masterOfSlot(cluster, await keySlot(cluster, completedKey(q)))));
    expect(new Set(masters).size).toBe(3);
    expect(new Set(masters)).toEqual(new Set(cluster.ports));
    // Every key of one queue shares its slot: BullMQ's scripts may touch them together.
    for (const q of shards) expect(await keySlot(cluster, `bull:{${q}}:${q}:wait`)).toBe(await keySlot(cluster, completedKey(q)));
  });

  it('watchers follow the event streams of runs in different slots at once (one hub per stream on a cluster)', async () => {
    const keys = ['a', 'b', 'c'].map((r) => `baton:{run:hub-${process.pid}-${r}}:events`);
    expect(new Set(await Promise.all(keys.map((k) => keySlot(cluster, k)))).size).toBe(3);
    const hub = createStreamHub(probe);
    const abort = new AbortController();
    try {
      const got = keys.map(async (key) => {
        for await (const [, fields] of hub.follow(key, '0-0', abort.signal)) return fields[1];
        return undefined;
      });
      await waitFor('three readers', () => (hub.readers === 3 ? true : undefined));
      for (const key of keys) await probe.xadd(key, '*', 'e', key);
      expect(await Promise.all(got)).toEqual(keys);
      await waitFor('readers gone', () => (hub.readers === 0 ? true : undefined));
    } finally {
      abort.abort();
      await hub.close();
    }
  });

  it('two runs sharded over three queues on three masters never exceed a cross-run limit of 2', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'baton-cluster-limits-'));
    const set = await runCli(['limits', 'set', 'database=redshift', '2'], { env: env() });
    expect(set.code, set.stderr).toBe(0);
    // Each worker serves all three queues (comma-separated), one serves them given repeatedly.
    await startWorkers(2, { redisUrl: url, jobs: [LIMITS], queue: shards.join(','), concurrency: 4, env: { LIMITS_DIR: dir } });
    await startWorkers(1, { redisUrl: url, jobs: [LIMITS], args: shards.flatMap((q) => ['--queue', q]), concurrency: 4, env: { LIMITS_DIR: dir } });
    const cfg = config(shards);
    const runs = await Promise.all([1, 2].map(() => runCli(['run', path.join(LIMITS, 'many.yaml'), '-c', cfg, '--json'], { env: env(), timeoutMs: 120_000 })));
    const runIds = runs.map((r) => succeeded(r).runId);
    for (const r of runs) expect(Object.values(succeeded(r).steps).filter((s) => s === 'SUCCESS')).toHaveLength(40);

    const seen = maxConcurrency(path.join(dir, 'events.log'));
    expect(seen.count).toBe(80);
    expect(seen.max).toBe(2);
    const limits = JSON.parse((await runCli(['limits', 'list', '--json'], { env: env() })).stdout) as Array<{ spec: string; inUse: number; waiting: number }>;
    expect(limits).toEqual([expect.objectContaining({ spec: 'database=redshift', inUse: 0, waiting: 0 })]);

    // The steps of each run went to all three queues, as routed by their step keys.
    const steps = Array.from({ length: 40 }, (_, i) => `s${String(i + 1).padStart(2, '0')}`);
    for (const runId of runIds) {
      for (const q of shards) {
        const done = (await probe.zrange(completedKey(q), 0, -1)).filter((id) => id.startsWith(`${runId}.`));
        const routed = steps.filter((s) => stepQueueName(shards, s) === q);
        expect(routed.length).toBeGreaterThan(0);
        expect(done.map((id) => id.split('.')[1]).sort()).toEqual(routed.sort());
      }
    }
    await runCli(['limits', 'delete', 'database=redshift'], { env: env() });
  });

  it('cancel from another process stops a sharded run\'s running steps and frees their slots', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'baton-cluster-cancel-'));
    expect((await runCli(['limits', 'set', 'pool=p', '100'], { env: env() })).code).toBe(0);
    // Steps run inside the workers: 20 step processes starting one by one on a loaded machine is not what this tests.
    await startWorkers(2, { redisUrl: url, jobs: [DIST], queue: shards.join(','), concurrency: 12, env: SHORT_LEASES, isolation: 'none' });
    const ops = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`t${i}`, { config: { dir, ms: 120_000 } }]));
    const runId = `cancel-${process.pid}`;
    const run = runCli(['run', path.join(DIST, 'twenty.yaml'), '-c', config(shards, ops), '--json', '--run-id', runId], { env: env(), timeoutMs: 120_000 });
    await waitFor('20 steps running', () => (lines(path.join(dir, 'ran')).length >= 20 ? true : undefined));

    const c = await runCli(['cancel', runId, '--json'], { env: env() });
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)).toMatchObject({ status: 'CANCELED', by: 'coordinator' });
    const r = await run;
    const summary = JSON.parse(r.stdout) as { status: string; steps: Record<string, string> };
    expect(summary.status).toBe('CANCELED');
    expect(Object.values(summary.steps).every((s) => s === 'CANCELED')).toBe(true);
    await waitFor('20 steps aborted', () => (lines(path.join(dir, 'aborted')).length >= 20 ? true : undefined));
    const limits = JSON.parse((await runCli(['limits', 'list', '--json'], { env: env() })).stdout) as Array<{ inUse: number; waiting: number }>;
    expect(limits).toEqual([expect.objectContaining({ inUse: 0, waiting: 0 })]);
    await runCli(['limits', 'delete', 'pool=p'], { env: env() });
  });

  it('resume finishes a 200-step run on one queue whose coordinator was SIGKILLed; no step succeeds twice', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'baton-cluster-resume-'));
    const queue = shards[0] as string;
    await startWorkers(3, { redisUrl: url, jobs: [DIST], queue, concurrency: 4, env: SHORT_LEASES });
    const ops = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`c${Math.floor(i / 40)}_${i % 40}`, { config: { dir, ms: 20 } }]));
    const runId = `resume-${process.pid}`;
    const first = spawn(process.execPath, [CLI, 'run', path.join(DIST, 'wide200.yaml'), '-c', config(queue, ops), '--run-id', runId, '--json'], {
      env: { ...process.env, ...env() },
      stdio: 'ignore',
    });
    const successes = async (): Promise<number> => (await probe.hvals(`baton:{run:${runId}}:steps`)).filter((v) => v.includes('"SUCCESS"')).length;
    await waitFor('40 steps to succeed', async () => ((await successes()) >= 40 ? true : undefined));
    first.kill('SIGKILL');
    expect(await successes()).toBeLessThan(200);
    // What `serve` would adopt once the dead coordinator's lease lapsed (reads runs in many slots).
    await waitFor('the run to be an orphan', async () => ((await findOrphans(probe, 50)).some((o) => o.runId === runId) ? true : undefined));

    const r = await runCli(['resume', runId, '--json'], { env: env(), timeoutMs: 120_000 });
    const summary = succeeded(r);
    expect(Object.values(summary.steps).every((s) => s === 'SUCCESS')).toBe(true);
    const events = await eventsOf(runId);
    const once = new Map<string, number>();
    for (const e of events) if (e.type === 'STEP_SUCCESS') once.set(e.stepKey ?? '', (once.get(e.stepKey ?? '') ?? 0) + 1);
    expect(once.size).toBe(200);
    expect([...once.values()].every((n) => n === 1)).toBe(true);
    expect(events.filter((e) => e.type === 'RUN_RESUMED')).toHaveLength(1);
    expect(events.at(-1)?.type).toBe('RUN_SUCCESS');
    // Listed like any run (the run index lives under its own hash tag).
    const list = await runCli(['runs', '--json'], { env: env() });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain(runId);
  });
});
