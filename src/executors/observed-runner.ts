/**
 * A step runner that tells observers (the worker's log line per step, its registry entry, its
 * metrics) when a step starts and ends, without the runner or the worker knowing about them.
 */
import type { StepOutcome } from '../core/types.js';
import type { StepRunner } from './step-pool.js';

/** A step as a worker runs it. */
export interface ObservedStep {
  runId: string;
  jobName: string;
  stepKey: string;
  op: string;
  attempt: number;
  /** When the worker received it (epoch ms). */
  since: number;
  /** The process it runs in, once known. */
  pid?: number;
}

export interface StepObserver {
  received?(step: ObservedStep): void;
  /** `seconds` from received to end. */
  ended?(step: ObservedStep, outcome: StepOutcome, seconds: number): void;
}

/** `runner`, reporting to every observer; an observer that throws is ignored. */
export function observedRunner(runner: StepRunner, observers: readonly StepObserver[]): StepRunner {
  const each = (f: (o: StepObserver) => void): void => {
    for (const o of observers) {
      try {
        f(o);
      } catch {
        // an observer must never lose the step
      }
    }
  };
  return async (impl, baseDir, request, hooks) => {
    const step: ObservedStep = {
      runId: request.runId,
      jobName: request.jobName,
      stepKey: request.stepKey,
      op: request.op,
      attempt: request.attempt,
      since: Date.now(),
    };
    each((o) => o.received?.(step));
    const outcome = await runner(impl, baseDir, request, {
      ...hooks,
      onStart: (info) => {
        if (info.pid !== undefined) step.pid = info.pid;
        hooks.onStart?.(info);
      },
    });
    const seconds = (Date.now() - step.since) / 1000;
    each((o) => o.ended?.(step, outcome, seconds));
    return outcome;
  };
}
