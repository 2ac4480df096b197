import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StartMethod, StepLauncher } from '../src/core/types.js';
import { createMultiprocessLauncher } from '../src/executors/multiprocess-launcher.js';
import { WarmPool } from '../src/executors/process-pool.js';
import { OPS_DIR, cmdOp, fnOp, makeHooks, makeJob, makeRequest } from './fixtures/ops/helpers.js';
import { ceiling } from './helpers/ceilings.js';

const job = makeJob({
  answer: fnOp('default'),
  echo: fnOp('echo'),
  logs: fnOp('logs'),
  fails: fnOp('fails'),
  pid: fnOp('pid'),
  crash: fnOp('crash'),
  slow: fnOp('slow'),
  busy: fnOp('busy'),
  preloaded: fnOp('preloaded'),
  typed: fnOp('default', join(OPS_DIR, 'typed.ts')),
  sum: cmdOp('sum'),
  sleep: cmdOp('sleep'),
});

const methods: Record<string, StartMethod> = {
  spawn: { kind: 'spawn' },
  forkserver: { kind: 'forkserver', preloadModules: [join(OPS_DIR, 'preload.mjs')] },
};

let launcher: StepLauncher | undefined;
afterEach(async () => {
  await launcher?.close();
  launcher = undefined;
});

const open = (startMethod: StartMethod, graceMs = 300) =>
  (launcher = createMultiprocessLauncher(job, { startMethod, maxConcurrent: 2, graceMs }));

describe.each(Object.entries(methods))('%s launcher', (name, startMethod) => {
  it('runs each step in its own process and reports the pid', async () => {
    const l = open(startMethod);
    const pids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const hooks = makeHooks();
      const outcome = await l.launch(makeRequest('pid'), hooks);
      expect(outcome.ok).toBe(true);
      const pid = outcome.ok ? (outcome.output as number) : 0;
      expect(pid).not.toBe(process.pid);
      expect(hooks.starts).toEqual([{ pid }]);
      pids.push(pid);
    }
    expect(new Set(pids).size).toBe(3);
  });

  it('passes inputs and config, forwards logs and failures', async () => {
    const l = open(startMethod);
    const request = makeRequest('echo', { config: { a: 1 }, inputs: { x: 'y' }, attempt: 2 });
    expect(await l.launch(request, makeHooks())).toMatchObject({
      ok: true,
      output: { op: 'echo', config: { a: 1 }, inputs: { x: 'y' }, attempt: 2 },
    });
    const hooks = makeHooks();
    expect(await l.launch(makeRequest('logs'), hooks)).toEqual({ ok: true, output: 'ok' });
    expect(hooks.logs.map((r) => r.msg)).toEqual(['loaded', 'careful', 'details']);
    expect(hooks.logs[0]?.fields).toEqual({ rows: 3 });
    expect(await l.launch(makeRequest('fails'), makeHooks())).toMatchObject({
      ok: false,
      error: { message: 'boom', code: 'E_BOOM' },
    });
  });

  it('runs .ts op modules and command ops', async () => {
    const l = open(startMethod);
    expect(await l.launch(makeRequest('typed', { inputs: { n: 4 } }), makeHooks())).toEqual({
      ok: true,
      output: { op: 'typed', result: 8 },
    });
    expect(await l.launch(makeRequest('sum', { inputs: { a: 1, b: 2 } }), makeHooks())).toEqual({
      ok: true,
      output: { sum: 3 },
    });
  });

  it('reports STEP_LOST when the process dies without a result', async () => {
    const outcome = await open(startMethod).launch(makeRequest('crash'), makeHooks());
    expect(outcome).toMatchObject({ ok: false, error: { code: 'STEP_LOST', signal: 'SIGKILL', exitCode: null } });
  });

  it.each(['slow', 'busy', 'sleep'])('cancels a long %s step', async (op) => {
    const l = open(startMethod, 300);
    const hooks = makeHooks();
    const pending = l.launch(makeRequest(op), hooks);
    await waitFor(() => hooks.starts.length > 0);
    await new Promise((r) => setTimeout(r, op === 'busy' ? 300 : 100));
    const aborted = Date.now();
    hooks.controller.abort();
    expect(await pending).toMatchObject({ ok: false, error: { code: 'STEP_CANCELED' } });
    // The op would run 30 s (busy: forever); ended well before, the cancel worked. Not a speed target.
    expect(Date.now() - aborted).toBeLessThan(15_000);
  });

  it(`${name === 'forkserver' ? 'does' : 'does not'} run the step in a preloaded process`, async () => {
    const outcome = await open(startMethod).launch(makeRequest('preloaded'), makeHooks());
    if (name === 'spawn') expect(outcome).toEqual({ ok: true, output: null });
    else expect(outcome).toMatchObject({ ok: true, output: { pid: expect.any(Number) } });
  });
});

describe('forkserver', () => {
  it('keeps warm processes and refills after use', async () => {
    const l = open(methods.forkserver!);
    const first = await l.launch(makeRequest('preloaded'), makeHooks());
    // The module was imported before the step arrived, by the same process.
    const loadedAt = first.ok ? (first.output as { loadedAt: number }).loadedAt : 0;
    await new Promise((r) => setTimeout(r, 1500));
    const started = Date.now();
    const second = await l.launch(makeRequest('preloaded'), makeHooks());
    // A warm process: its module was loaded before the step arrived (how fast is the bench's to say).
    expect(second.ok && (second.output as { loadedAt: number }).loadedAt).toBeLessThan(started);
    expect(loadedAt).toBeGreaterThan(0);
  });

  // A start is CPU-bound: with 8 warm processes starting at once on 2 cores, the first step waited for all.
  it('starts warm processes a few at a time, and still fills the pool', async () => {
    const pool = new WarmPool(3, [join(OPS_DIR, 'preload.mjs')], 1);
    try {
      let most = 0;
      await waitFor(() => {
        most = Math.max(most, stepChildren().length);
        return most === 3;
      });
      // Taking one starts a replacement (in its turn).
      const child = await pool.acquire();
      expect(child.pid).toEqual(expect.any(Number));
      child.kill('SIGKILL');
      await waitFor(() => stepChildren().length === 3); // refilled
    } finally {
      await pool.close();
    }
    await waitFor(() => stepChildren().length === 0);
  });

  it('close() kills the idle warm processes', async () => {
    const l = open(methods.forkserver!);
    await waitFor(() => stepChildren().length === 2);
    await l.close();
    launcher = undefined;
    expect(stepChildren()).toEqual([]);
  });
});

/** This process's step-process children (Linux `ps`). */
function stepChildren(): string[] {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes('step-process'));
}

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + ceiling('event', timeoutMs);
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
