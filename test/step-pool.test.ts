import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StepRequest } from '../src/core/types.js';
import { createStepPool, type PoolEvent, type StepPool } from '../src/executors/step-pool.js';
import { ROOT } from './helpers/cli.js';

const OPS = path.join(ROOT, 'test/fixtures/isolation/ops.mjs');
const impl = (exportName: string) => ({ kind: 'fn' as const, module: OPS, exportName });
const request = (op: string, config = {}): StepRequest => ({
  runId: 'r1', jobName: 'isolation', jobHash: 'h', jobPath: '/x', stepKey: op, op, attempt: 1, config, tags: {}, inputs: {},
});
const hooks = () => ({ signal: new AbortController().signal, onLog: () => {} });

let pool: StepPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('the step pool', () => {
  it('grows with demand: at max 100, one step starts one process and a spare, not 100', async () => {
    pool = createStepPool({ max: 100 });
    const outcome = await pool.run(impl('ok'), ROOT, request('ok'), hooks());
    expect(outcome).toMatchObject({ ok: true, output: { worker: process.pid } });
    expect(pool.size()).toBeLessThanOrEqual(2);
    // Four at once: the pool starts processes for them (a step may still take whichever process
    // frees up first), and no more than the four and a spare.
    const four = await Promise.all([1, 2, 3, 4].map(() => pool?.run(impl('ok'), ROOT, request('ok', { ms: 300 }), hooks())));
    expect(four.every((o) => o?.ok)).toBe(true);
    expect(pool.size()).toBeGreaterThanOrEqual(4);
    expect(pool.size()).toBeLessThanOrEqual(5);
  });

  it('a process that exits ends only its own step, named, and is replaced', async () => {
    const events: PoolEvent[] = [];
    pool = createStepPool({ max: 2, onEvent: (e) => events.push(e) });
    const [dead, fine] = await Promise.all([
      pool.run(impl('exiter'), ROOT, request('exiter'), hooks()),
      pool.run(impl('ok'), ROOT, request('ok', { ms: 500 }), hooks()),
    ]);
    expect(dead).toMatchObject({ ok: false, error: { code: 'STEP_PROCESS_DIED', exitCode: 3, stderrTail: 'exiter: giving up\n' } });
    expect(dead.ok ? '' : dead.error.message).toMatch(/^step process \d+ running "exiter" exited with code 3; stderr: exiter: giving up$/);
    expect(fine).toMatchObject({ ok: true });
    expect(events).toContainEqual(expect.objectContaining({ type: 'died', how: 'exited with code 3', stepKey: 'exiter' }));
    expect(await pool.run(impl('ok'), ROOT, request('ok'), hooks())).toMatchObject({ ok: true });
  });

  it('recycles a process after --max-steps-per-process steps', async () => {
    pool = createStepPool({ max: 1, maxStepsPerProcess: 2 });
    const pids: number[] = [];
    for (let i = 0; i < 4; i++) {
      const o = await pool.run(impl('ok'), ROOT, request('ok'), hooks());
      pids.push(o.ok ? (o.output as { pid: number }).pid : 0);
    }
    expect(pids[0]).toBe(pids[1]);
    expect(pids[2]).toBe(pids[3]);
    expect(pids[2]).not.toBe(pids[0]);
  });

  it('a canceled step ends canceled, and its process is not reused', async () => {
    pool = createStepPool({ max: 1, graceMs: 500 });
    const controller = new AbortController();
    let canceledPid = 0;
    const onStart = ({ pid }: { pid?: number }): void => {
      canceledPid = pid ?? 0;
      setTimeout(() => controller.abort(), 200);
    };
    const pending = pool.run(impl('sleepy'), ROOT, request('sleepy'), { signal: controller.signal, onLog: () => {}, onStart });
    expect(await pending).toMatchObject({ ok: false, error: { code: 'STEP_CANCELED' } });
    const next = await pool.run(impl('ok'), ROOT, request('ok'), hooks());
    expect(next.ok && (next.output as { pid: number }).pid).not.toBe(canceledPid);
    expect(canceledPid).toBeGreaterThan(0);
  });
});
