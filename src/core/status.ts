/**
 * The status vocabulary, defined once: which run and step statuses are terminal, and which
 * status an event puts its step or run in. Pure; mirrored by the Lua scripts that test statuses.
 */
import type { RunEvent, RunStatus, StepStatus } from './types.js';

/** Every run status, in lifecycle order. */
export const RUN_STATUSES: readonly RunStatus[] = ['QUEUED', 'STARTED', 'CANCELING', 'SUCCESS', 'FAILURE', 'CANCELED'];

/** A run in one of these has ended and changes no more. */
export const TERMINAL_RUN_STATUSES: ReadonlySet<RunStatus> = new Set<RunStatus>(['SUCCESS', 'FAILURE', 'CANCELED']);

/** A step in one of these has ended in its run. */
export const TERMINAL_STEP_STATUSES: ReadonlySet<StepStatus> = new Set<StepStatus>(['SUCCESS', 'FAILURE', 'SKIPPED', 'CANCELED']);

/** The events that end a run, with the status each leaves it in. */
export const RUN_STATUS_OF_EVENT: Readonly<Partial<Record<RunEvent['type'], RunStatus>>> = {
  RUN_SUCCESS: 'SUCCESS',
  RUN_FAILURE: 'FAILURE',
  RUN_CANCELED: 'CANCELED',
  RUN_CANCELING: 'CANCELING',
};

/** The status a step event puts its step in (STEP_ATTEMPT_END and LOG change none). */
export const STEP_STATUS_OF_EVENT: Readonly<Partial<Record<RunEvent['type'], StepStatus>>> = {
  STEP_START: 'IN_PROGRESS',
  STEP_SUCCESS: 'SUCCESS',
  STEP_FAILURE: 'FAILURE',
  STEP_UP_FOR_RETRY: 'UP_FOR_RETRY',
  STEP_SKIPPED: 'SKIPPED',
  STEP_CANCELED: 'CANCELED',
};

export function isTerminalRunStatus(status: RunStatus): boolean {
  return TERMINAL_RUN_STATUSES.has(status);
}

/** The run's last event: RUN_SUCCESS, RUN_FAILURE or RUN_CANCELED. */
export function isFinalRunEvent(event: Pick<RunEvent, 'type'>): boolean {
  const status = RUN_STATUS_OF_EVENT[event.type];
  return status !== undefined && TERMINAL_RUN_STATUSES.has(status);
}

/**
 * `fields.waiting` of the coordinator's run-level LOG notice that queued steps (named in
 * `fields.steps`) have no live worker to take them; its all-clear carries `fields.waiting: null`.
 * Such steps show WAITING in `status` (src/distributed/worker-watch.ts writes it).
 */
export const WAITING_FOR_WORKER = 'no_live_worker';
