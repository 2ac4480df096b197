import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { createInProcessLauncher } from '../src/executors/in-process-launcher.js';
import { importOpFunction, verifyOps } from '../src/executors/op-module.js';
import { runOp } from '../src/executors/run-op.js';
import { BASIC, OPS_DIR, cmdOp, fnOp, makeHooks, makeJob, makeRequest } from './fixtures/ops/helpers.js';
import { ceiling } from './helpers/ceilings.js';

const run = (impl: Parameters<typeof runOp>[0], request = makeRequest('op'), hooks = makeHooks(), graceMs = 200) =>
  runOp(impl, OPS_DIR, request, hooks, { graceMs });

describe('runOp: fn ops', () => {
  it('returns the output of the default export', async () => {
    expect(await run(fnOp('default'))).toEqual({ ok: true, output: 42 });
  });

  it('passes inputs, config and context fields', async () => {
    const request = makeRequest('load', { attempt: 2, config: { n: 1 }, tags: { team: 'a' }, inputs: { x: [1, 2] } });
    const outcome = await run(fnOp('echo'), request);
    expect(outcome).toEqual({
      ok: true,
      output: {
        runId: 'run-1',
        op: 'load',
        config: { n: 1 },
        tags: { team: 'a' },
        attempt: 2,
        inputs: { x: [1, 2] },
        hasSignal: true,
        hasLog: true,
      },
    });
  });

  it('delivers context.log records to onLog', async () => {
    const hooks = makeHooks();
    await run(fnOp('logs'), makeRequest('op'), hooks);
    expect(hooks.logs.map(({ level, msg, fields }) => ({ level, msg, fields }))).toEqual([
      { level: 'info', msg: 'loaded', fields: { rows: 3 } },
      { level: 'warn', msg: 'careful', fields: undefined },
      { level: 'debug', msg: 'details', fields: undefined },
    ]);
    expect(hooks.logs[0]?.time).toBeGreaterThan(Date.now() - 60_000);
  });

  it('turns a thrown error into a failure', async () => {
    const outcome = await run(fnOp('fails'));
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toMatchObject({ name: 'Error', message: 'boom', code: 'E_BOOM' });
    expect(outcome.error.stack).toContain('basic.mjs');
    const plain = await run(fnOp('throwsString'));
    expect(plain).toMatchObject({ ok: false, error: { message: 'plain string', code: 'OP_FAILED' } });
  });

  it('maps undefined to null', async () => {
    expect(await run(fnOp('nothing'))).toEqual({ ok: true, output: null });
  });

  it('fails a non-JSON output with OP_OUTPUT_NOT_JSON', async () => {
    const fn = await run(fnOp('returnsFunction'));
    expect(fn).toMatchObject({ ok: false, error: { code: 'OP_OUTPUT_NOT_JSON' } });
    if (!fn.ok) expect(fn.error.message).toContain('$.f');
    expect(await run(fnOp('returnsBigInt'))).toMatchObject({ ok: false, error: { code: 'OP_OUTPUT_NOT_JSON' } });
  });

  it('runs a .ts op module', async () => {
    const outcome = await run(fnOp('default', join(OPS_DIR, 'typed.ts')), makeRequest('t', { inputs: { n: 21 } }));
    expect(outcome).toEqual({ ok: true, output: { op: 't', result: 42 } });
  });

  it('reports a missing module or export', async () => {
    const missing = await run(fnOp('default', join(OPS_DIR, 'nope.mjs')));
    expect(missing).toMatchObject({ ok: false, error: { code: 'OP_MODULE_NOT_FOUND' } });
    await expect(importOpFunction({ module: BASIC, exportName: 'extrct' })).rejects.toMatchObject({
      code: 'OP_EXPORT_NOT_FOUND',
      message: expect.stringContaining('did you mean "extract"?'),
    });
  });

  it('cancels a long op that honours its signal', async () => {
    const hooks = makeHooks();
    const pending = run(fnOp('slow'), makeRequest('op'), hooks, 5000);
    const aborted = abortAfter(hooks, 50);
    expect(await pending).toMatchObject({ ok: false, error: { code: 'STEP_CANCELED' } });
    expect(Date.now() - (await aborted)).toBeLessThan(CANCELED_WELL_BEFORE_MS); // the op would run 30 s
  });

  it('abandons an op that ignores its signal after the grace period', async () => {
    const hooks = makeHooks();
    const pending = run(fnOp('stubborn'), makeRequest('op'), hooks, 200);
    const aborted = abortAfter(hooks, 50);
    expect(await pending).toMatchObject({ ok: false, error: { code: 'STEP_CANCELED' } });
    expect(Date.now() - (await aborted)).toBeLessThan(CANCELED_WELL_BEFORE_MS);
  });
});

describe('runOp: command ops', () => {
  it('passes env vars, runs in baseDir, logs stdout/stderr and reads BATON_OUTPUT', async () => {
    const hooks = makeHooks();
    const outcome = await run(cmdOp('env'), makeRequest('cmd', { attempt: 3, config: { k: 'v' } }), hooks);
    expect(outcome).toEqual({
      ok: true,
      output: { runId: 'run-1', op: 'cmd', attempt: '3', config: { k: 'v' }, cwd: OPS_DIR },
    });
    expect(hooks.logs.map(({ level, msg }) => ({ level, msg }))).toEqual([
      { level: 'info', msg: 'hello from stdout' },
      { level: 'warn', msg: 'a warning' },
    ]);
  });

  it('reads its inputs from BATON_INPUTS', async () => {
    expect(await run(cmdOp('sum'), makeRequest('cmd', { inputs: { a: 2, b: 3 } }))).toEqual({ ok: true, output: { sum: 5 } });
  });

  it('has a null output when it writes nothing, and fails on invalid JSON', async () => {
    expect(await run(cmdOp('silent'))).toEqual({ ok: true, output: null });
    expect(await run(cmdOp('bad-output'))).toMatchObject({ ok: false, error: { code: 'OP_OUTPUT_NOT_JSON' } });
  });

  it('fails a non-zero exit with the stderr tail', async () => {
    const outcome = await run(cmdOp('fail'));
    expect(outcome).toMatchObject({ ok: false, error: { code: 'COMMAND_FAILED', exitCode: 3, signal: null } });
    if (outcome.ok) return;
    expect(outcome.error.message).toMatch(/^command ".*command\.mjs fail" exited with code 3$/);
    const tail = outcome.error.stderrTail?.split('\n') ?? [];
    expect(tail).toHaveLength(20);
    expect(tail[0]).toBe('line 11');
    expect(tail[19]).toBe('line 30');
  });

  it('fails clearly when the executable is missing', async () => {
    const outcome = await run({ kind: 'command', argv: ['baton-no-such-program', '--x'] });
    expect(outcome).toMatchObject({ ok: false, error: { code: 'COMMAND_FAILED' } });
    if (!outcome.ok) expect(outcome.error.message).toContain('not found (ENOENT)');
  });

  it('cancels a long command with SIGTERM', async () => {
    const hooks = makeHooks();
    const pending = run(cmdOp('sleep'), makeRequest('op'), hooks, 5000);
    const aborted = abortAfter(hooks, 200);
    expect(await pending).toMatchObject({ ok: false, error: { code: 'STEP_CANCELED' } });
    expect(Date.now() - (await aborted)).toBeLessThan(CANCELED_WELL_BEFORE_MS); // the command would run 30 s
  });

  it('SIGKILLs a command that ignores SIGTERM after the grace period', async () => {
    const hooks = makeHooks();
    const pending = run(cmdOp('stubborn'), makeRequest('op'), hooks, 300);
    await waitFor(() => hooks.logs.some((l) => l.msg === 'started'));
    const started = Date.now();
    hooks.controller.abort();
    expect(await pending).toMatchObject({ ok: false, error: { code: 'STEP_CANCELED' } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(CANCELED_WELL_BEFORE_MS);
    expect(hooks.logs.some((l) => l.msg === 'ignoring SIGTERM')).toBe(true);
  });
});

describe('verifyOps', () => {
  it('accepts loadable ops', async () => {
    const job = makeJob({ a: fnOp('default'), b: fnOp('echo'), c: cmdOp('env'), d: { kind: 'command', argv: ['node', 'x'] } });
    await expect(verifyOps(job, ['a', 'b', 'c', 'd'])).resolves.toBeUndefined();
  });

  it('lists every bad op with its location and a did-you-mean', async () => {
    const job = makeJob({
      good: fnOp('default'),
      gone: fnOp('default', join(OPS_DIR, 'x.mjs')),
      typo: fnOp('extrct'),
      notfn: fnOp('notAFunction'),
      cmd: { kind: 'command', argv: ['baton-no-such-program'] },
      rel: { kind: 'command', argv: ['./scripts/missing.sh'] },
    });
    const err = await verifyOps(job, ['good', 'gone', 'typo', 'notfn', 'cmd', 'rel']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    const { code, problems } = err as InputError;
    expect(code).toBe('OP_MODULE_NOT_FOUND');
    expect(problems).toHaveLength(5);
    expect(problems[0]).toMatchObject({ file: job.sourcePath, path: 'ops.gone.fn' });
    expect(problems[0]?.message).toMatch(/^cannot load module "\.\/x\.mjs": file not found/);
    expect(problems[1]).toEqual({
      file: job.sourcePath,
      path: 'ops.typo.fn',
      message: 'module "./basic.mjs" has no export "extrct"',
      hint: 'did you mean "extract"?',
    });
    expect(problems[2]?.message).toContain('is not a function');
    expect(problems[3]).toMatchObject({ path: 'ops.cmd.command', message: 'command "baton-no-such-program" not found on PATH' });
    expect(problems[4]?.path).toBe('ops.rel.command');
  });

  it('uses OP_EXPORT_NOT_FOUND when that is the first problem', async () => {
    const job = makeJob({ typo: fnOp('extrct') });
    await expect(verifyOps(job, ['typo'])).rejects.toMatchObject({ code: 'OP_EXPORT_NOT_FOUND' });
  });
});

describe('in-process launcher', () => {
  it('runs the op in this process and reports its pid', async () => {
    const launcher = createInProcessLauncher(makeJob({ p: fnOp('pid') }));
    const hooks = makeHooks();
    expect(await launcher.launch(makeRequest('p'), hooks)).toEqual({ ok: true, output: process.pid });
    expect(hooks.starts).toEqual([{ pid: process.pid }]);
    await launcher.close();
  });
});

/**
 * The ops canceled here would run 30 s; ended well before that, the cancel worked. (A loaded
 * machine stretches a prompt cancel to seconds: the bound is not a speed target.)
 */
const CANCELED_WELL_BEFORE_MS = 15_000;

/** Aborts the step after `ms`; resolves with when it did. */
function abortAfter(hooks: { controller: AbortController }, ms: number): Promise<number> {
  return new Promise<number>((resolve) =>
    setTimeout(() => {
      const at = Date.now();
      hooks.controller.abort();
      resolve(at);
    }, ms),
  );
}

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + ceiling('event', timeoutMs);
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
