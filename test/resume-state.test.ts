import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../src/core/types.js';
import { stepsFromEvents } from '../src/run/resume-state.js';

let t = 0;
const ev = (type: RunEvent['type'], stepKey?: string, attempt?: number, extra: Partial<RunEvent> = {}): RunEvent => ({
  type,
  timestamp: new Date(++t).toISOString(),
  runId: 'r',
  ...(stepKey ? { stepKey } : {}),
  ...(attempt ? { attempt } : {}),
  ...extra,
});

describe('stepsFromEvents: resuming from the event stream', () => {
  it('keeps decisions, finds interrupted attempts and results no coordinator handled', () => {
    const steps = stepsFromEvents([
      ev('RUN_START'),
      ev('STEP_START', 'done', 1),
      ev('STEP_ATTEMPT_END', 'done', 1, { ok: true }),
      ev('STEP_SUCCESS', 'done', 1),
      ev('STEP_START', 'running', 1),
      ev('LOG', 'running', 1),
      ev('STEP_START', 'finished_meanwhile', 2),
      ev('STEP_ATTEMPT_END', 'finished_meanwhile', 2, { ok: false, error: { name: 'Error', message: 'boom' } }),
      ev('STEP_UP_FOR_RETRY', 'retrying', 1),
      ev('STEP_FAILURE', 'failed', 3),
      ev('STEP_SKIPPED', 'skipped'),
    ]);
    expect(steps.done).toEqual({ status: 'SUCCESS', attempt: 1 });
    expect(steps.running).toEqual({ status: 'IN_PROGRESS', attempt: 1, startedAt: expect.any(String) });
    expect(steps.finished_meanwhile).toEqual({
      status: 'IN_PROGRESS',
      attempt: 2,
      startedAt: expect.any(String),
      unhandledEnd: { ok: false, error: { name: 'Error', message: 'boom' } },
    });
    expect(steps.retrying).toEqual({ status: 'UP_FOR_RETRY', attempt: 1 });
    expect(steps.failed).toEqual({ status: 'FAILURE', attempt: 3 });
    expect(steps.skipped?.status).toBe('SKIPPED');
  });

  it('a second start of the same attempt (its first worker died) is still that attempt in progress, on the second worker, since the first start', () => {
    const first = ev('STEP_START', 'a', 1, { worker: 'w1' });
    const steps = stepsFromEvents([first, ev('STEP_START', 'a', 1, { worker: 'w2' })]);
    expect(steps.a).toEqual({ status: 'IN_PROGRESS', attempt: 1, startedAt: first.timestamp, worker: 'w2' });
  });

  it('a new attempt starts its own clock', () => {
    const steps = stepsFromEvents([ev('STEP_START', 'a', 1), ev('STEP_UP_FOR_RETRY', 'a', 1), ev('STEP_START', 'a', 2, { worker: 'w3' })]);
    expect(steps.a).toEqual({ status: 'IN_PROGRESS', attempt: 2, startedAt: new Date(t).toISOString(), worker: 'w3' });
  });
});
