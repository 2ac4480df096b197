/**
 * Cross-run tag concurrency limits (issue 5) with real processes: `coordinator run` children,
 * `worker` children and one private redis-server. Ops (test/fixtures/limits/ops.mjs) append
 * `start|end <ms> <runId> <step> <pid>` lines to $LIMITS_DIR/events.log; the tests compute the
 * concurrency they observed from those intervals.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createRedis } from '../src/distributed/connection.js';
import { limitKeys } from '../src/distributed/semaphore/limit-keys.js';
import { listLimits, type LimitView } from '../src/distributed/semaphore/limits-admin.js';
import { CLI, ROOT, runCli, type CliOptions, type CliResult } from './helpers/cli.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorkers, stopAllWorkers, type TestWorker } from './helpers/workers.js';
import { ceiling } from './helpers/ceilings.js';

const FIX = path.join(ROOT, 'test/fixtures/limits');
const jobFile = (name: string): string => path.join(FIX, `${name}.yaml`);
const KEYS = limitKeys();

/** Short slot leases for the fault tests, given to coordinators and workers alike. */
const LEASE_MS = 1500;
const SWEEP_MS = 300;
const FAST_LEASES = { BATON_SLOT_LEASE_MS: String(LEASE_MS), BATON_SLOT_SWEEP_MS: String(SWEEP_MS) };

let redis: TestRedis;
let admin: Redis;
const spawned = new Set<ChildProcess>();

beforeAll(async () => {
  redis = await startTestRedis();
  admin = createRedis(redis.url);
});
afterEach(async () => {
  for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  spawned.clear();
  await stopAllWorkers();
  // Global limits, leases and waiters live under one fixed prefix: start every test clean.
  await admin.flushall();
});
afterAll(async () => {
  await admin?.quit().catch(() => {});
  await redis?.close();
});

// ---------------------------------------------------------------- helpers

let queues = 0;
interface Ctx {
  dir: string;
  queue: string;
}
function context(): Ctx {
  return { dir: mkdtempSync(path.join(tmpdir(), 'baton-limits-')), queue: `limits_${process.pid}_${++queues}` };
}

function runConfig(ctx: Ctx, limits?: Array<Record<string, unknown>>): string {
  const file = path.join(mkdtempSync(path.join(ctx.dir, 'cfg-')), 'run-config.yaml');
  const distributed = { redis: redis.url, queue: ctx.queue, ...(limits ? { tag_concurrency_limits: limits } : {}) };
  writeFileSync(file, stringify({ execution: { config: { distributed } } }));
  return file;
}

function workers(ctx: Ctx, n: number, extra: { concurrency?: number; env?: Record<string, string>; lockDurationMs?: number; stalledIntervalMs?: number } = {}): Promise<TestWorker[]> {
  return startWorkers(n, {
    redisUrl: redis.url,
    jobs: [FIX],
    queue: ctx.queue,
    concurrency: extra.concurrency ?? 4,
    ...(extra.lockDurationMs ? { lockDurationMs: extra.lockDurationMs } : {}),
    ...(extra.stalledIntervalMs ? { stalledIntervalMs: extra.stalledIntervalMs } : {}),
    env: { LIMITS_DIR: ctx.dir, ...extra.env },
  });
}

interface RunOptions extends CliOptions {
  select?: string;
  tags?: string[];
  limits?: Array<Record<string, unknown>>;
}
function coordinator(ctx: Ctx, job: string, o: RunOptions = {}): Promise<CliResult> {
  const args = ['run', jobFile(job), '-c', runConfig(ctx, o.limits), '--json'];
  if (o.select) args.push('-s', o.select);
  for (const t of o.tags ?? []) args.push('--tag', t);
  return runCli(args, { timeoutMs: 40_000, ...o, env: { REDIS_URL: redis.url, ...o.env } });
}

interface Summary {
  runId: string;
  status: string;
  steps: Record<string, string>;
}
function succeeded(r: CliResult): Summary {
  expect(r.code, `exit ${r.code} (${r.signal ?? ''})\n${r.stderr.slice(-3000)}`).toBe(0);
  const s = JSON.parse(r.stdout) as Summary;
  expect(s.status).toBe('SUCCESS');
  return s;
}

async function limitsCli(...args: string[]): Promise<string> {
  const r = await runCli(['limits', ...args], { env: { REDIS_URL: redis.url } });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}
async function listJson(): Promise<LimitView[]> {
  return JSON.parse(await limitsCli('list', '--json')) as LimitView[];
}
async function view(spec: string): Promise<LimitView> {
  const v = (await listLimits(admin)).find((l) => l.spec === spec);
  if (!v) throw new Error(`limit ${spec} is not defined`);
  return v;
}

async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, ms = 20_000, every = 25): Promise<T> {
  const deadline = Date.now() + ceiling('event', ms);
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

interface Interval {
  runId: string;
  step: string;
  pid: number;
  start: number;
  end?: number;
}
/** The ops' start/end lines, paired per run, step and process. */
function intervals(ctx: Ctx): Interval[] {
  const file = path.join(ctx.dir, 'events.log');
  if (!existsSync(file)) return [];
  const out: Interval[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [what, ms, runId, step, pid] = line.split(' ');
    if (!what || !ms || !runId || !step || !pid) continue;
    if (what === 'start') out.push({ runId, step, pid: Number(pid), start: Number(ms) });
    else {
      const open = out.find((i) => i.end === undefined && i.runId === runId && i.step === step && i.pid === Number(pid));
      if (!open) throw new Error(`"end" without "start": ${line}`);
      open.end = Number(ms);
    }
  }
  return out;
}

/** Most intervals open at once (an end and a start in the same ms: the end counts first). */
function maxConcurrency(list: readonly Interval[]): number {
  const points = list.flatMap((i) => {
    if (i.end === undefined) throw new Error(`step ${i.step} of run ${i.runId} never ended`);
    return [
      { t: i.start, d: 1 },
      { t: i.end, d: -1 },
    ];
  });
  points.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let max = 0;
  for (const p of points) max = Math.max(max, (now += p.d));
  return max;
}

const overlap = (a: Interval, b: Interval): boolean => a.start < (b.end as number) && b.start < (a.end as number);

/** Lease id -> {holder, runId, stepKey}, read without running any script (so nothing is expired by looking). */
async function rawLeases(): Promise<Array<{ id: string; holder: string; runId: string; stepKey: string }>> {
  const all = await admin.hgetall(KEYS.leaseData);
  return Object.entries(all).map(([id, json]) => ({ id, ...(JSON.parse(json) as { holder: string; runId: string; stepKey: string }) }));
}

// ---------------------------------------------------------------- tests

describe('cross-run tag concurrency limits (real coordinator and worker processes)', () => {
  it('4 runs from 4 coordinators on 3 workers never exceed a global limit of 2, and leave it free', async () => {
    const ctx = context();
    expect(await limitsCli('set', 'database=redshift', '2')).toContain('database=redshift set to 2');
    await workers(ctx, 3, { concurrency: 4 });
    const results = await Promise.all([1, 2, 3, 4].map(() => coordinator(ctx, 'many', { timeoutMs: 60_000 })));
    const runIds = results.map((r) => succeeded(r).runId);
    expect(new Set(runIds).size).toBe(4);

    const seen = intervals(ctx);
    expect(seen).toHaveLength(160);
    for (const id of runIds) expect(seen.filter((i) => i.runId === id)).toHaveLength(40);
    expect(maxConcurrency(seen)).toBe(2);

    const [limit] = await listJson();
    expect(limit).toMatchObject({ spec: 'database=redshift', limit: 2, inUse: 0, waiting: 0, holders: [] });
  });

  it('two limits taken in opposite orders by two runs: no deadlock', async () => {
    const ctx = context();
    await limitsCli('set', 'db=x', '1');
    await limitsCli('set', 'api=y', '1');
    await workers(ctx, 2, { concurrency: 4 });
    const xy = [
      { key: 'db', value: 'x', limit: 1 },
      { key: 'api', value: 'y', limit: 1 },
    ];
    // Run A: tags {db, api}, run-scoped limits db then api; run B: tags {api, db}, limits api then db.
    const [a, b] = await Promise.all([
      coordinator(ctx, 'pair_a', { limits: xy, timeoutMs: 30_000 }),
      coordinator(ctx, 'pair_b', { limits: [...xy].reverse(), timeoutMs: 30_000 }),
    ]);
    succeeded(a);
    succeeded(b);
    const seen = intervals(ctx);
    expect(seen).toHaveLength(12);
    expect(maxConcurrency(seen)).toBe(1);
    for (const l of await listJson()) expect(l).toMatchObject({ inUse: 0, waiting: 0 });
  });

  it('a slot held by a SIGKILLed worker comes back within lease + sweep, and both runs finish', async () => {
    const ctx = context();
    await limitsCli('set', 'slot=k', '1');
    const [w1, w2] = await workers(ctx, 2, { concurrency: 2, env: FAST_LEASES, lockDurationMs: 1000, stalledIntervalMs: 1000 });
    const env = FAST_LEASES;
    const holdRun = coordinator(ctx, 'kill', { select: 'hold', env });
    const marker = path.join(ctx.dir, 'hold.pid');
    const pid = await until('the hold step to start', () => (existsSync(marker) ? Number(readFileSync(marker, 'utf8')) : undefined));
    const victim = [w1, w2].find((w) => w?.pid === pid) as TestWorker;
    expect(victim, `hold ran in pid ${pid}, not in a test worker`).toBeDefined();
    // The worker claimed the lease: it is the holder now (the coordinator stops renewing it).
    await until('the worker to hold the slot', async () => (await rawLeases()).some((l) => l.holder === `worker:${victim.id}`));
    const waitRun = coordinator(ctx, 'kill', { select: 'q1,q2', env });
    await until('q1 and q2 to wait for the slot', async () => (await view('slot=k')).waiting === 2);

    victim.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.exited;
    // Read-only polling: the lease must be expired by the processes' own sweeps and renewals.
    await until('the dead worker\'s lease to go', async () => !(await rawLeases()).some((l) => l.holder === `worker:${victim.id}`), 10_000, 10);
    const returnedMs = Date.now() - killedAt;
    // Either the lease expired, or BullMQ re-queued the step first and another worker took it over.
    const how = (await rawLeases()).some((l) => l.stepKey === 'hold') ? 'taken over by the re-run step' : 'expired';
    console.info(`[limits] slot of the SIGKILLed worker returned after ${returnedMs} ms, ${how} (bound ${LEASE_MS} + ${SWEEP_MS} ms)`);
    expect(returnedMs).toBeLessThanOrEqual(LEASE_MS + SWEEP_MS + 1000);

    const [held, waited] = await Promise.all([holdRun, waitRun]);
    expect(succeeded(held).steps).toEqual({ hold: 'SUCCESS' });
    expect(succeeded(waited).steps).toEqual({ q1: 'SUCCESS', q2: 'SUCCESS' });
    const seen = intervals(ctx);
    // hold ran twice: killed on the first worker, then again (to the end) on the other one.
    expect(seen.filter((i) => i.step === 'hold').map((i) => i.pid)).toEqual([victim.pid, w1 === victim ? w2?.pid : w1?.pid]);
    expect(maxConcurrency(seen.filter((i) => i.end !== undefined))).toBe(1);
    const [limit] = await listJson();
    expect(limit).toMatchObject({ spec: 'slot=k', inUse: 0, waiting: 0, holders: [] });
  });

  it('a SIGKILLed coordinator\'s waiting and held slots do not stay taken', async () => {
    const ctx = context();
    await limitsCli('set', 'crash=c', '2');
    // One worker taking one step at a time: of the run's two slots, one is claimed by the
    // worker and the other stays with the coordinator (its step queued), the rest wait.
    await workers(ctx, 1, { concurrency: 1, env: FAST_LEASES });
    const child = spawn(process.execPath, [CLI, 'run', jobFile('crash'), '-c', runConfig(ctx), '--json'], {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: redis.url, ...FAST_LEASES },
      stdio: 'ignore',
    });
    spawned.add(child);
    const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    const crashed = await until('the run to hold both slots and queue 4 waiters', async () => {
      const leases = await rawLeases();
      const v = await view('crash=c');
      const byCoordinator = leases.find((l) => l.holder.startsWith('coordinator:'));
      const byWorker = leases.find((l) => l.holder.startsWith('worker:'));
      return byCoordinator && byWorker && v.waiting === 4 ? byCoordinator.runId : undefined;
    });
    child.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await exited).toBe('SIGKILL');

    const next = await coordinator(ctx, 'crash', { env: FAST_LEASES });
    const summary = succeeded(next);
    expect(summary.runId).not.toBe(crashed);
    expect(Object.values(summary.steps)).toEqual(Array(6).fill('SUCCESS'));
    // Whatever the dead run left (waiters, a lease granted to one of them) is gone within
    // waiter TTL + lease TTL + sweep of the kill.
    const settled = killedAt + 2 * LEASE_MS + SWEEP_MS + 700;
    if (Date.now() < settled) await new Promise((r) => setTimeout(r, settled - Date.now()));
    const [limit] = await listJson();
    expect(limit).toMatchObject({ spec: 'crash=c', inUse: 0, waiting: 0, holders: [] });
    // Never more than 2 at once, counting the dead run's steps that did run.
    expect(maxConcurrency(intervals(ctx))).toBeLessThanOrEqual(2);
  });

  it('a step admitted by a worker\'s release starts without waiting for its coordinator', async () => {
    const ctx = context();
    await limitsCli('set', 'lane=one', '1');
    await workers(ctx, 1, { concurrency: 2 });
    const child = spawn(process.execPath, [CLI, 'run', jobFile('lane'), '-c', runConfig(ctx), '--json'], {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: redis.url },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    spawned.add(child);
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await until('the blocker to run and the other step to wait for the slot', async () =>
      intervals(ctx).some((i) => i.step === 'blocker') && (await view('lane=one')).waiting === 1 ? true : undefined,
    );
    // The coordinator hears nothing from now on: only the worker can enqueue the waiting step.
    child.kill('SIGSTOP');
    try {
      writeFileSync(path.join(ctx.dir, 'blocker-gate'), '');
      await until('the waiting step to run while its coordinator is stopped', () =>
        intervals(ctx).some((i) => i.step === 'step' && i.end !== undefined) ? true : undefined,
      10_000);
    } finally {
      child.kill('SIGCONT');
    }
    expect(await exited).toBe(0);
    expect((JSON.parse(stdout) as Summary).steps).toEqual({ blocker: 'SUCCESS', step: 'SUCCESS' });
    expect(maxConcurrency(intervals(ctx))).toBe(1);
  });

  it('per-value limits (team=* 1): teams a and b side by side, never two of one team', async () => {
    const ctx = context();
    await limitsCli('set', 'team=*', '1');
    await workers(ctx, 2, { concurrency: 4 });
    succeeded(await coordinator(ctx, 'team'));
    const seen = intervals(ctx);
    expect(seen).toHaveLength(6);
    const a = seen.filter((i) => i.step.startsWith('a'));
    const b = seen.filter((i) => i.step.startsWith('b'));
    expect(maxConcurrency(a)).toBe(1);
    expect(maxConcurrency(b)).toBe(1);
    expect(a.some((x) => b.some((y) => overlap(x, y)))).toBe(true);
    const [limit] = await listJson();
    expect(limit).toMatchObject({ spec: 'team=*', inUse: 0, waiting: 0 });
  });

  it('after the holder, the high-priority run goes first, then the others in arrival order', async () => {
    const ctx = context();
    await limitsCli('set', 'lane=one', '1');
    await workers(ctx, 2, { concurrency: 2 });
    const blocker = coordinator(ctx, 'lane', { select: 'blocker' });
    const log = path.join(ctx.dir, 'events.log');
    await until('the blocker to hold the slot', () => existsSync(log) && readFileSync(log, 'utf8').includes(' blocker '));
    const runs: Array<Promise<CliResult>> = [];
    for (const [n, tags] of [[1, []], [2, []], [3, ['priority=10']]] as const) {
      runs.push(coordinator(ctx, 'lane', { select: 'step', tags: [...tags] }));
      await until(`run ${n} to queue its waiter`, async () => (await view('lane=one')).waiting === n);
    }
    writeFileSync(path.join(ctx.dir, 'blocker-gate'), '');
    succeeded(await blocker);
    const results = await Promise.all(runs);
    const [first, second, urgent] = results.map((r) => succeeded(r).runId);
    // The first waited while the others queued: its live view and its event log say why.
    expect(results[0]?.stderr).toContain('step │ waiting for a concurrency slot: limit lane=one (1 slot) (see coordinator limits list)');
    const logged = (await admin.xrange(`baton:{run:${first}}:events`, '-', '+')).map(([, fields]) => JSON.parse(fields[1] as string) as { type: string; stepKey?: string; message?: string });
    expect(logged.filter((e) => e.type === 'LOG' && e.stepKey === 'step' && e.message?.startsWith('waiting for a concurrency slot'))).toHaveLength(1);
    const order = intervals(ctx)
      .sort((x, y) => x.start - y.start)
      .map((i) => (i.step === 'blocker' ? 'blocker' : i.runId === urgent ? 'urgent' : i.runId === first ? 'first' : i.runId === second ? 'second' : i.runId));
    expect(order).toEqual(['blocker', 'urgent', 'first', 'second']);
    expect(maxConcurrency(intervals(ctx))).toBe(1);
  });

  it('run-scoped limits: each run stays at 1, two runs together reach 2', async () => {
    const ctx = context();
    await workers(ctx, 2, { concurrency: 4 });
    const limits = [{ key: 'database', value: 'redshift', limit: 1 }];
    const [r1, r2] = await Promise.all([coordinator(ctx, 'scoped', { limits }), coordinator(ctx, 'scoped', { limits })]);
    const ids = [succeeded(r1).runId, succeeded(r2).runId];
    const seen = intervals(ctx);
    expect(seen).toHaveLength(12);
    for (const id of ids) expect(maxConcurrency(seen.filter((i) => i.runId === id))).toBe(1);
    expect(maxConcurrency(seen)).toBe(2);
    expect(await listJson()).toEqual([]);
    // Nothing of either run is left in the semaphore.
    expect(await admin.hlen(KEYS.used)).toBe(0);
    expect(await admin.zcard(KEYS.waiters)).toBe(0);
  });
});
