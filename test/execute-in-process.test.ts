/**
 * The library API end to end: `loadJob` then `executeInProcess(job, { select, runConfig })` on
 * the jobs of test/fixtures/e2e — status, steps, outputs and the event stream (RUN_START,
 * STEP_START, STEP_SUCCESS, STEP_FAILURE, STEP_UP_FOR_RETRY, STEP_SKIPPED, RUN_SUCCESS/RUN_FAILURE,
 * each with a timestamp, and a step key and attempt where they apply).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  executeInProcess,
  InputError,
  loadJob,
  type JobDefinition,
  type RunEvent,
  type RunEventType,
  type RunResult,
} from '../src/index.js';
import { E2E, removeTempDirs, tempDir } from './helpers/cli.js';

afterAll(removeTempDirs);

const load = (name: string): Promise<JobDefinition> => loadJob(path.join(E2E, name));

// The fixture ops leave markers in $E2E_DIR: a fresh one per test.
let dir: string;
beforeEach(() => {
  dir = tempDir('baton-in-process-');
  process.env.E2E_DIR = dir;
});
afterEach(() => {
  delete process.env.E2E_DIR;
});
const ranLog = (): string[] => {
  const file = path.join(dir, 'ran.log');
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : [];
};

/** The events of one step (or of the run, for `undefined`) as `TYPE@attempt`. */
const trail = (r: RunResult, stepKey: string): string[] =>
  r.events.filter((e) => e.stepKey === stepKey && e.type !== 'LOG').map((e) => `${e.type}${e.attempt ? `@${e.attempt}` : ''}`);

/** Invariants of every event stream: timestamps, run id, one RUN_START first and one end event last. */
function expectWellFormed(r: RunResult, end: RunEventType): void {
  expect(r.events.length).toBeGreaterThanOrEqual(2);
  expect(r.events[0]?.type).toBe('RUN_START');
  expect(r.events.at(-1)?.type).toBe(end);
  expect(r.events.filter((e) => e.type === 'RUN_START')).toHaveLength(1);
  let previous = 0;
  for (const e of r.events) {
    expect(e.runId).toBe(r.runId);
    expect(e.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const t = Date.parse(e.timestamp);
    expect(t).toBeGreaterThanOrEqual(previous);
    previous = t;
    if (e.type.startsWith('STEP_')) expect(e.stepKey, `${e.type} has a step key`).toEqual(expect.any(String));
    if (['STEP_START', 'STEP_SUCCESS', 'STEP_FAILURE', 'STEP_UP_FOR_RETRY'].includes(e.type)) {
      expect(e.attempt, `${e.type} ${e.stepKey} has an attempt`).toEqual(expect.any(Number));
    }
  }
}

describe('executeInProcess: results', () => {
  it('runs the whole job: status, steps, outputs and the event stream', async () => {
    const job = await load('seed.yaml');
    const seen: RunEvent[] = [];
    const r = await executeInProcess(job, { onEvent: (e) => seen.push(e) });
    expect(r.status).toBe('SUCCESS');
    expect(r.job).toBe('seed');
    expect(r.steps).toEqual({ return_one: 'SUCCESS', return_two: 'SUCCESS', add_nums: 'SUCCESS', multiply_two: 'SUCCESS', add_one: 'SUCCESS' });
    expect(r.outputs).toEqual({ return_one: 1, return_two: 2, add_nums: 3, multiply_two: 6, add_one: 7 });
    expectWellFormed(r, 'RUN_SUCCESS');
    expect(seen).toEqual(r.events); // onEvent saw the same stream, live
    // One step at a time, in plan order.
    expect(r.events.filter((e) => e.type === 'STEP_START' || e.type === 'STEP_SUCCESS').map((e) => `${e.type} ${e.stepKey}@${e.attempt}`)).toEqual([
      'STEP_START return_one@1',
      'STEP_SUCCESS return_one@1',
      'STEP_START return_two@1',
      'STEP_SUCCESS return_two@1',
      'STEP_START add_nums@1',
      'STEP_SUCCESS add_nums@1',
      'STEP_START multiply_two@1',
      'STEP_SUCCESS multiply_two@1',
      'STEP_START add_one@1',
      'STEP_SUCCESS add_one@1',
    ]);
    // context.log lines are LOG events of their step, with their fields.
    expect(r.events.find((e) => e.type === 'LOG')).toMatchObject({ stepKey: 'add_one', attempt: 1, level: 'info', message: 'adding one', fields: { value: 6 } });
  });

  it('runs a selection, with inputs of unselected ops from run config', async () => {
    const job = await load('seed.yaml');
    const r = await executeInProcess(job, {
      select: ['add_nums+'],
      runConfig: { ops: { add_nums: { inputs: { return_one: 10, return_two: 20 } } } },
    });
    expect(r.status).toBe('SUCCESS');
    expect(r.steps).toEqual({ add_nums: 'SUCCESS', multiply_two: 'SUCCESS' });
    expect(r.outputs).toEqual({ add_nums: 30, multiply_two: 60 });
    expect(ranLog()).toEqual(['ran add_nums 1', 'ran multiply_two 1']);
  });

  it('unions several selection queries', async () => {
    const job = await load('seed.yaml');
    const r = await executeInProcess(job, {
      select: ['return_one', 'add_one', '+add_nums'],
      runConfig: { ops: { add_one: { inputs: { multiply_two: 41 } } } },
    });
    expect(r.steps).toEqual({ return_one: 'SUCCESS', return_two: 'SUCCESS', add_nums: 'SUCCESS', add_one: 'SUCCESS' });
    expect(r.outputs.add_one).toBe(42);
  });

  it('merges run config ops.<op>.config over the op default config into context.config', async () => {
    const job = await load('configured.yaml');
    const r = await executeInProcess(job, { runConfig: { ops: { show: { config: { nested: { b: 9 }, extra: [1, 2] } } } } });
    expect(r.outputs.show).toEqual({ greeting: 'hello', keep: true, nested: { a: 1, b: 9 }, extra: [1, 2] });
  });

  it('runs every step in this process whatever executor the run config names', async () => {
    const job = await load('where.yaml');
    const r = await executeInProcess(job, {
      runConfig: { execution: { config: { multiprocess: { max_concurrent: 2, start_method: { spawn: {} } } } } },
    });
    expect(r.outputs.here).toBe(process.pid);
  });

  it('passes a command op BATON_OUTPUT to a fn op, and logs its stdout', async () => {
    const job = await load('command.yaml');
    const r = await executeInProcess(job, { select: ['produce', 'consume'] });
    expect(r.status).toBe('SUCCESS');
    expect(r.outputs).toEqual({ produce: { rows: 21, source: 'cmd' }, consume: { rows: 21, doubled: 42, source: 'cmd' } });
    expect(r.events).toContainEqual(expect.objectContaining({ type: 'LOG', stepKey: 'produce', message: 'producing 21 rows' }));
  });

  it('loads a .ts op module', async () => {
    const job = await load('typed.yaml');
    const r = await executeInProcess(job);
    expect(r.outputs.triple).toEqual({ op: 'triple', result: 3 });
  });
});

describe('executeInProcess: failures, retries, skips', () => {
  it('a failed step: STEP_FAILURE with its error, downstream STEP_SKIPPED, an independent branch succeeds', async () => {
    const job = await load('branches.yaml');
    const r = await executeInProcess(job);
    expect(r.status).toBe('FAILURE');
    expect(r.steps).toEqual({
      first: 'SUCCESS',
      boom: 'FAILURE',
      after_boom: 'SKIPPED',
      after_after: 'SKIPPED',
      independent: 'SUCCESS',
      independent_next: 'SUCCESS',
    });
    expectWellFormed(r, 'RUN_FAILURE');
    expect(trail(r, 'boom')).toEqual(['STEP_START@1', 'STEP_FAILURE@1']);
    expect(r.events.find((e) => e.type === 'STEP_FAILURE')).toMatchObject({
      stepKey: 'boom',
      attempt: 1,
      error: { name: 'Error', message: 'boom: the warehouse is on fire' },
    });
    expect(trail(r, 'after_boom')).toEqual(['STEP_SKIPPED']);
    expect(trail(r, 'after_after')).toEqual(['STEP_SKIPPED']);
    expect(r.events.find((e) => e.type === 'STEP_SKIPPED')?.message).toContain('"boom"');
    expect(Object.keys(r.outputs).sort()).toEqual(['first', 'independent', 'independent_next']);
  });

  it('a retried step: STEP_UP_FOR_RETRY, then STEP_START attempt 2, then STEP_SUCCESS', async () => {
    const job = await load('retry.yaml');
    const r = await executeInProcess(job, { select: ['flaky+'] });
    expect(r.status).toBe('SUCCESS');
    expectWellFormed(r, 'RUN_SUCCESS');
    expect(trail(r, 'flaky')).toEqual(['STEP_START@1', 'STEP_UP_FOR_RETRY@1', 'STEP_START@2', 'STEP_SUCCESS@2']);
    expect(r.events.find((e) => e.type === 'STEP_UP_FOR_RETRY')).toMatchObject({
      stepKey: 'flaky',
      attempt: 1,
      error: { message: 'flaky failed on attempt 1' },
      retryDelaySeconds: 0,
    });
    expect(r.outputs).toEqual({ flaky: { attempt: 2 }, after_flaky: { flaky: { attempt: 2 } } });
  });

  it('exhausted retries: STEP_FAILURE on the last attempt with its error message', async () => {
    const job = await load('retry.yaml');
    const r = await executeInProcess(job, { select: ['hopeless'] });
    expect(r.status).toBe('FAILURE');
    expectWellFormed(r, 'RUN_FAILURE');
    expect(trail(r, 'hopeless')).toEqual([
      'STEP_START@1',
      'STEP_UP_FOR_RETRY@1',
      'STEP_START@2',
      'STEP_UP_FOR_RETRY@2',
      'STEP_START@3',
      'STEP_FAILURE@3',
    ]);
    expect(r.events.find((e) => e.type === 'STEP_FAILURE')?.error?.message).toBe('hopeless failed on attempt 3');
    // linear backoff from 0.01 s: the delays grow
    const delays = r.events.filter((e) => e.type === 'STEP_UP_FOR_RETRY').map((e) => e.retryDelaySeconds);
    expect(delays).toEqual([0.01, 0.02]);
  });

  it('retries: {disabled: {}} in run config turns the retry policy off', async () => {
    const job = await load('retry.yaml');
    const r = await executeInProcess(job, {
      select: ['flaky'],
      runConfig: { execution: { config: { in_process: { retries: { disabled: {} } } } } },
    });
    expect(r.status).toBe('FAILURE');
    expect(trail(r, 'flaky')).toEqual(['STEP_START@1', 'STEP_FAILURE@1']);
    expect(ranLog()).toEqual(['ran flaky 1']);
  });

  it('an AbortSignal cancels the run: STEP_CANCELED, RUN_CANCELED, status CANCELED', async () => {
    const job = await load('interrupt.yaml');
    const controller = new AbortController();
    const r = await executeInProcess(job, {
      select: ['long_fn', 'after'],
      runConfig: { ops: {} },
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'LOG' && e.stepKey === 'long_fn') controller.abort();
      },
    });
    expect(r.status).toBe('CANCELED');
    expect(r.steps.long_fn).toBe('CANCELED');
    expect(r.steps.after).not.toBe('SUCCESS');
    expectWellFormed(r, 'RUN_CANCELED');
    expect(r.events.map((e) => e.type)).toContain('RUN_CANCELING');
    expect(ranLog()).toEqual(['ran long_fn 1']);
  });
});

describe('executeInProcess: invalid input', () => {
  const refusal = async (run: Promise<unknown>): Promise<InputError> => {
    const err = await run.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  };

  it('rejects a missing input before anything runs, naming op and input', async () => {
    const job = await load('seed.yaml');
    const err = await refusal(executeInProcess(job, { select: ['multiply_two'] }));
    expect(err.code).toBe('PLAN_INVALID');
    expect(err.problems).toEqual([expect.objectContaining({ path: 'ops.multiply_two.inputs.add_nums' })]);
    expect(err.message).toContain('op "multiply_two" needs input "add_nums"');
    expect(ranLog()).toEqual([]);
  });

  it('rejects bad op code, listing every bad op, before anything runs', async () => {
    const job = await load('bad-code.yaml');
    const err = await refusal(executeInProcess(job));
    expect(err.problems.map((p) => p.path).sort()).toEqual(['ops.gone.fn', 'ops.not_fn.fn', 'ops.typo.fn']);
    expect(err.message).toContain('did you mean "returnOne"?');
    expect(ranLog()).toEqual([]);
  });

  it('rejects an invalid run config object', async () => {
    const job = await load('seed.yaml');
    const err = await refusal(executeInProcess(job, { runConfig: { ops: { add_num: { config: {} } } } }));
    expect(err.code).toBe('RUN_CONFIG_INVALID');
    expect(err.message).toContain('unknown op "add_num" (did you mean "add_nums"?)');
    expect(ranLog()).toEqual([]);
  });
});
