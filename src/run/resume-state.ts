import type { RunEvent, StepOutcome, StepStatus } from '../core/types.js';

export interface ResumedStep {
  status: StepStatus;
  attempt: number;
  /** A worker finished `attempt` but the coordinator died before deciding what follows. */
  unhandledEnd?: StepOutcome;
  /** The current attempt's STEP_START: when, and on which worker. */
  startedAt?: string;
  worker?: string;
}

/**
 * Where each step of a run got to, from its event stream: the coordinator's decisions, the
 * attempts workers started, and results no coordinator acted on. Pure; replaying the whole
 * stream is how a run is resumed after its coordinator died.
 */
export function stepsFromEvents(events: readonly RunEvent[]): Record<string, ResumedStep> {
  const steps: Record<string, ResumedStep> = {};
  const at = (key: string): ResumedStep => (steps[key] ??= { status: 'NOT_STARTED', attempt: 0 });
  for (const e of events) {
    if (e.stepKey === undefined) continue;
    const s = at(e.stepKey);
    const attempt = e.attempt ?? s.attempt;
    switch (e.type) {
      case 'STEP_START':
        if (attempt >= s.attempt && s.status !== 'SUCCESS') {
          // A takeover's start keeps the attempt's first start time.
          if (attempt !== s.attempt || s.startedAt === undefined) s.startedAt = e.timestamp;
          Object.assign(s, { status: 'IN_PROGRESS', attempt, ...(e.worker ? { worker: e.worker } : {}) });
        }
        break;
      case 'STEP_ATTEMPT_END':
        // A lost slot is not an end: the attempt is enqueued again under a fresh one.
        if (e.error?.code === 'SLOT_LOST') break;
        if (attempt === s.attempt || s.status === 'NOT_STARTED' || attempt > s.attempt) {
          s.attempt = attempt;
          if (s.status === 'NOT_STARTED') s.status = 'IN_PROGRESS';
          s.unhandledEnd = e.ok ? { ok: true, output: null } : { ok: false, error: e.error ?? { name: 'Error', message: 'failed' } };
        }
        break;
      case 'STEP_SUCCESS':
      case 'STEP_FAILURE':
      case 'STEP_UP_FOR_RETRY':
      case 'STEP_CANCELED':
        Object.assign(s, { status: DECIDED[e.type], attempt });
        delete s.unhandledEnd;
        delete s.startedAt;
        delete s.worker;
        break;
      case 'STEP_SKIPPED':
        s.status = 'SKIPPED';
        break;
      default:
        break;
    }
  }
  return steps;
}

const DECIDED = {
  STEP_SUCCESS: 'SUCCESS',
  STEP_FAILURE: 'FAILURE',
  STEP_UP_FOR_RETRY: 'UP_FOR_RETRY',
  STEP_CANCELED: 'CANCELED',
} as const satisfies Partial<Record<RunEvent['type'], StepStatus>>;
