import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '../src/core/types.js';
import { reexecuteRun } from '../src/distributed/operate.js';
import { CLI, ROOT, runCli } from './helpers/cli.js';
import { distributedConfig, tempDir, uniqueQueue, waitFor } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorkers, stopAllWorkers } from './helpers/workers.js';

const FIX = path.join(ROOT, 'test/fixtures/distributed');
const SHORT_LEASES = { BATON_RUN_LEASE_MS: '1500', BATON_SLOT_LEASE_MS: '1500', BATON_SLOT_SWEEP_MS: '300' };

let redis: TestRedis;
let probe: Redis;
beforeAll(async () => {
  redis = await startTestRedis();
  probe = new Redis(redis.url);
});
afterEach(stopAllWorkers);
afterAll(async () => {
  probe?.disconnect();
  await redis?.close();
});

const env = (): Record<string, string> => ({ REDIS_URL: redis.url, ...SHORT_LEASES });
const opsConfig = (ops: string[], config: Record<string, unknown>) => Object.fromEntries(ops.map((op) => [op, { config }]));
const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);

async function eventsOf(runId: string): Promise<RunEvent[]> {
  const r = await runCli(['logs', runId, '--json'], { env: env() });
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as RunEvent);
}

async function successes(runId: string): Promise<number> {
  const raw = await probe.hvals(`baton:{run:${runId}}:steps`);
  return raw.filter((v) => v.includes('"SUCCESS"')).length;
}

/** A 200-step run of wide200.yaml from a `coordinator run` child, once `atLeast` steps succeeded. */
async function wide200Run(
  name: string,
  o: { workers: number; ms: number; atLeast: number; stderr?: boolean },
): Promise<{ runId: string; dir: string; first: ChildProcess }> {
  const queue = uniqueQueue();
  const dir = tempDir();
  await startWorkers(o.workers, { redisUrl: redis.url, jobs: [FIX], queue, concurrency: 4, env: SHORT_LEASES });
  const ops = Array.from({ length: 200 }, (_, i) => `c${Math.floor(i / 40)}_${i % 40}`);
  const cfg = distributedConfig(redis.url, queue, { ops: opsConfig(ops, { dir, ms: o.ms }) });
  const runId = `${name}-${queue}`;
  const first = spawn(process.execPath, [CLI, 'run', path.join(FIX, 'wide200.yaml'), '-c', cfg, '--run-id', runId, '--json'], {
    env: { ...process.env, ...env() },
    stdio: ['ignore', o.stderr ? 'pipe' : 'ignore', o.stderr ? 'pipe' : 'ignore'],
  });
  await waitFor(`${o.atLeast} steps to succeed`, async () => ((await successes(runId)) >= o.atLeast ? true : undefined), 60_000);
  return { runId, dir, first };
}

/** The run's events: all 200 steps succeeded, each exactly once, and the run last. */
function expectEachStepSucceededOnce(events: RunEvent[]): void {
  const succeeded = new Map<string, number>();
  for (const e of events) if (e.type === 'STEP_SUCCESS') succeeded.set(e.stepKey ?? '', (succeeded.get(e.stepKey ?? '') ?? 0) + 1);
  expect(succeeded.size).toBe(200);
  expect([...succeeded.values()].every((n) => n === 1)).toBe(true);
  expect(events.at(-1)?.type).toBe('RUN_SUCCESS');
}

describe('operating distributed runs', () => {
  it('resume finishes a 200-step run whose coordinator was SIGKILLed halfway; no step succeeds twice', async () => {
    const { runId, dir, first } = await wide200Run('resume', { workers: 3, ms: 30, atLeast: 100 });
    first.kill('SIGKILL');
    const before = await successes(runId);
    expect(before).toBeLessThan(200);

    const r = await runCli(['resume', runId, '--json'], { env: env(), timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { status: string; steps: Record<string, string> };
    expect(summary.status).toBe('SUCCESS');
    expect(Object.values(summary.steps).every((s) => s === 'SUCCESS')).toBe(true);
    expect(r.stderr).toMatch(/resumed: job "wide200": 200 steps, \d+ already ended/);

    const events = await eventsOf(runId);
    expectEachStepSucceededOnce(events);
    // Ops ran once each, except at most the few in flight at the kill (none should have re-run, but allow it).
    const ran = lines(path.join(dir, 'ran'));
    expect(new Set(ran).size).toBe(200);
    expect(ran.length - 200).toBeLessThanOrEqual(12);
    expect(events.filter((e) => e.type === 'RUN_RESUMED')).toHaveLength(1);
  });

  it('a coordinator stalled past its lease stops without touching the run that resume adopted', async () => {
    const { runId, first } = await wide200Run('stalled', { workers: 2, ms: 20, atLeast: 40, stderr: true });
    let firstStderr = '';
    let firstStdout = '';
    first.stderr?.setEncoding('utf8').on('data', (c: string) => (firstStderr += c));
    first.stdout?.setEncoding('utf8').on('data', (c: string) => (firstStdout += c));
    const firstExit = new Promise<number | null>((resolve) => {
      if (first.exitCode !== null) resolve(first.exitCode);
      else first.once('exit', (code) => resolve(code));
    });
    // Stalled (not dead): its lease lapses and resume adopts the run.
    first.kill('SIGSTOP');
    let resumed;
    try {
      resumed = await runCli(['resume', runId, '--json'], { env: env(), timeoutMs: 60_000 });
    } finally {
      first.kill('SIGCONT');
    }
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((JSON.parse(resumed.stdout) as { status: string }).status).toBe('SUCCESS');
    // Woken up, the first coordinator finds its lease gone and leaves the run alone.
    expect(await firstExit).toBe(1);
    expect(firstStderr).toContain('RUN_LEASE_LOST');
    // Its --json object still comes: what it last knew of the run, and why it stopped.
    const lastKnown = JSON.parse(firstStdout) as { runId: string; status: string; steps: Record<string, string>; error: { code: string } };
    expect(lastKnown).toMatchObject({ runId, job: 'wide200', status: 'STARTED', error: { code: 'RUN_LEASE_LOST' } });
    expect(Object.keys(lastKnown.steps)).toHaveLength(200);
    const events = await eventsOf(runId);
    expect(events.filter((e) => e.type === 'RUN_CANCELING' || e.type === 'RUN_CANCELED' || e.type === 'STEP_CANCELED')).toEqual([]);
    expectEachStepSucceededOnce(events);
    expect(await probe.hget(`baton:{run:${runId}}:record`, 'status')).toBe('SUCCESS');
  });

  it('serve adopts a run whose coordinator died and finishes it; of two serves, one drives it; a third without its job leaves it', async () => {
    const { runId, first } = await wide200Run('serve', { workers: 2, ms: 20, atLeast: 40 });
    first.kill('SIGKILL');

    const serve = (jobs: string): { logs: () => string; stop: () => void } => {
      const child = spawn(process.execPath, [CLI, 'serve', '--jobs', jobs, '--interval', '0.2'], {
        env: { ...process.env, ...env() },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let logs = '';
      child.stderr.setEncoding('utf8').on('data', (c: string) => (logs += c));
      return { logs: () => logs, stop: () => child.kill('SIGTERM') };
    };
    // First a serve without the run's job: it sees the orphan and leaves it.
    const serves = [serve(path.join(FIX, 'diamond.yaml'))];
    try {
      await waitFor('the serve without the job to pass the run over', () =>
        /not adopting orphaned run: its job .*wide200.* is not among this process's --jobs/.test(serves[0]?.logs() ?? '') ? true : undefined,
      30_000);
      expect(await probe.hget(`baton:{run:${runId}}:record`, 'status')).toBe('STARTED');
      serves.push(serve(FIX), serve(FIX));
      const finished = (): number => serves.filter((s) => s.logs().includes('"msg":"adopted run ended SUCCESS"')).length;
      await waitFor('a serve to finish the run', () => (finished() > 0 ? true : undefined), 60_000);
      expect(await probe.hget(`baton:{run:${runId}}:record`, 'status')).toBe('SUCCESS');
      // Both may try; the run lease lets one in.
      expect(serves.filter((s) => s.logs().includes('"msg":"adopting orphaned run"')).length).toBeGreaterThanOrEqual(1);
      await new Promise((r) => setTimeout(r, 500)); // a second adoption would have ended too by now
      expect(finished()).toBe(1);
    } finally {
      for (const s of serves) s.stop();
    }
    const events = await eventsOf(runId);
    expect(events.filter((e) => e.type === 'RUN_RESUMED')).toHaveLength(1);
    expectEachStepSucceededOnce(events);
  });

  it('cancel from another process stops 20 running steps within seconds, frees their slots, and spares other runs', async () => {
    const queue = uniqueQueue();
    const dir = tempDir();
    await startWorkers(2, { redisUrl: redis.url, jobs: [FIX], queue, concurrency: 12, env: SHORT_LEASES });
    expect((await runCli(['limits', 'set', 'pool=p', '100'], { env: env() })).code).toBe(0);
    const twenty = path.join(FIX, 'twenty.yaml');
    const ops = Array.from({ length: 20 }, (_, i) => `t${i}`);
    const cfg = distributedConfig(redis.url, queue, { ops: opsConfig(ops, { dir, ms: 120_000 }) });
    const run = runCli(['run', twenty, '-c', cfg, '--json', '--run-id', `cancel-${queue}`], { env: env(), timeoutMs: 60_000 });
    await waitFor('20 steps running', () => (lines(path.join(dir, 'ran')).length >= 20 ? true : undefined), 30_000);
    // Another run on the same workers.
    const otherDir = tempDir();
    const other = runCli(['run', path.join(FIX, 'recover.yaml'), '-s', 'audit', '-c', distributedConfig(redis.url, queue, { ops: { audit: { config: { dir: otherDir } } } }), '--json'], { env: env() });

    const started = Date.now();
    const c = await runCli(['cancel', `cancel-${queue}`, '--json'], { env: env() });
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)).toMatchObject({ status: 'CANCELED', by: 'coordinator' });
    // Under a second on a quiet machine; the bound is a ceiling for a busy one.
    expect(Date.now() - started).toBeLessThan(60_000);
    const r = await run;
    const summary = JSON.parse(r.stdout) as { status: string; steps: Record<string, string> };
    expect(summary.status).toBe('CANCELED');
    expect(Object.values(summary.steps).every((s) => s === 'CANCELED')).toBe(true);
    expect(lines(path.join(dir, 'aborted'))).toHaveLength(20);
    const limits = JSON.parse((await runCli(['limits', 'list', '--json'], { env: env() })).stdout) as Array<{ inUse: number; waiting: number }>;
    expect(limits).toEqual([expect.objectContaining({ inUse: 0, waiting: 0 })]);
    expect((await other).code).toBe(0);
    await runCli(['limits', 'delete', 'pool=p'], { env: env() });
  });

  it('cancel of a run whose coordinator died cleans up itself once the dead lease lapses', async () => {
    const queue = uniqueQueue();
    const dir = tempDir();
    await startWorkers(1, { redisUrl: redis.url, jobs: [FIX], queue, concurrency: 4, env: SHORT_LEASES });
    const runId = `orphan-${queue}`;
    const cfg = distributedConfig(redis.url, queue, { ops: opsConfig(['t0', 't1'], { dir, ms: 120_000 }) });
    const first = spawn(process.execPath, [CLI, 'run', path.join(FIX, 'twenty.yaml'), '-s', 't0,t1', '-c', cfg, '--run-id', runId], {
      env: { ...process.env, ...env() },
      stdio: 'ignore',
    });
    await waitFor('both steps running', () => (lines(path.join(dir, 'ran')).length >= 2 ? true : undefined), 30_000);
    first.kill('SIGKILL');
    const c = await runCli(['cancel', runId, '--json'], { env: env(), timeoutMs: 30_000 });
    expect(JSON.parse(c.stdout)).toMatchObject({ status: 'CANCELED', by: 'this-call' });
    await waitFor('the worker to abort both steps', () => (lines(path.join(dir, 'aborted')).length >= 2 ? true : undefined));
    const status = JSON.parse((await runCli(['status', runId, '--json'], { env: env() })).stdout) as { status: string; steps: Record<string, string> };
    expect(status).toMatchObject({ status: 'CANCELED', steps: { t0: 'CANCELED', t1: 'CANCELED' } });
    expect(await probe.exists(`baton:{run:${runId}}:driver`)).toBe(0);
  });

  it('reexecute --from-failure runs only the failed step and its descendants, fed by the parent outputs', async () => {
    const queue = uniqueQueue();
    const dir = tempDir();
    await startWorkers(2, { redisUrl: redis.url, jobs: [FIX], queue });
    const job = path.join(FIX, 'recover.yaml');
    const cfg = distributedConfig(redis.url, queue, { ops: opsConfig(['extract', 'transform', 'load', 'report', 'audit'], { dir }) });
    const parent = await runCli(['run', job, '-c', cfg, '--json'], { env: env() });
    expect(parent.code).toBe(1);
    const p = JSON.parse(parent.stdout) as { runId: string; steps: Record<string, string> };
    expect(p.steps).toEqual({ extract: 'SUCCESS', transform: 'FAILURE', load: 'SKIPPED', report: 'SKIPPED', audit: 'SUCCESS' });

    const child = await reexecuteRun(p.runId, { redisUrl: redis.url, fromFailure: true });
    expect(child.status).toBe('SUCCESS');
    expect(child.steps).toEqual({ transform: 'SUCCESS', load: 'SUCCESS', report: 'SUCCESS' });
    // transform's input came from the parent's extract output.
    expect((child.outputs.transform as { inputs: { rows: { op: string } } }).inputs.rows.op).toBe('extract');
    const ran = lines(path.join(dir, 'ran')).filter((l) => l.startsWith(child.runId)).map((l) => l.split(' ')[1]);
    expect(ran).toEqual(['transform', 'load', 'report']);
    const runs = JSON.parse((await runCli(['runs', '--json', '--limit', '1'], { env: env() })).stdout) as Array<{ runId: string; parentRunId?: string }>;
    expect(runs[0]).toMatchObject({ runId: child.runId, parentRunId: p.runId });

    // With a selection: the selected steps run, unselected upstream outputs come from the parent.
    const sel = await runCli(['reexecute', p.runId, '-s', 'audit', '--json'], { env: env() });
    expect(sel.code).toBe(0);
    expect(JSON.parse(sel.stdout).steps).toEqual({ audit: 'SUCCESS' });
    // A successful parent cannot be re-executed from failure.
    const bad = await runCli(['reexecute', child.runId, '--from-failure'], { env: env() });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--from-failure needs a FAILURE or CANCELED run');
  });

  it('resume refuses a finished run and a changed job file', async () => {
    const queue = uniqueQueue();
    await startWorkers(1, { redisUrl: redis.url, jobs: [FIX], queue });
    const r = await runCli(['run', path.join(FIX, 'diamond.yaml'), '-c', distributedConfig(redis.url, queue), '--json'], { env: env() });
    const { runId } = JSON.parse(r.stdout) as { runId: string };
    const again = await runCli(['resume', runId], { env: env() });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already ended SUCCESS');

    // An unfinished run, resumed with a job file that changed since it started.
    const dir = tempDir();
    const orphan = `changed-${queue}`;
    const cfg = distributedConfig(redis.url, queue, { ops: opsConfig(['t0'], { dir, ms: 60_000 }) });
    const first = spawn(process.execPath, [CLI, 'run', path.join(FIX, 'twenty.yaml'), '-s', 't0', '-c', cfg, '--run-id', orphan], {
      env: { ...process.env, ...env() },
      stdio: 'ignore',
    });
    await waitFor('t0 to run', () => (lines(path.join(dir, 'ran')).length >= 1 ? true : undefined), 30_000);
    first.kill('SIGKILL');
    const copy = path.join(tempDir(), 'twenty.yaml');
    // An op's definition changed (the hash covers name and ops; a description would not count).
    writeFileSync(copy, readFileSync(path.join(FIX, 'twenty.yaml'), 'utf8').replace('tags: { pool: p }', 'tags: { pool: p, edited: "yes" }'));
    cpSync(path.join(FIX, 'ops.mjs'), path.join(path.dirname(copy), 'ops.mjs'));
    const changed = await runCli(['resume', orphan, '--job', copy], { env: env() });
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain(`changed since run "${orphan}" started`);
    await runCli(['cancel', orphan], { env: env(), timeoutMs: 30_000 });
  });
});
