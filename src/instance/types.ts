/**
 * The public runs API: one seam every consumer of runs goes through — the CLI, the web UI, the
 * schedules daemon and metrics. Modelled on Dagster's `DagsterInstance` over run storage and
 * event-log storage. Two implementations pass one shared test suite:
 *
 *   - a Redis instance (`openInstance({ redis })`): the shared store every coordinator and
 *     worker uses; runs launched through it run on the distributed executor unless their run
 *     config names a local one (then they run here and are still recorded in Redis);
 *   - a local instance (`openInstance({ storageDir })`, or neither: a fresh temp directory):
 *     runs, events and outputs kept as files, run by the local executors, no Redis at all.
 *
 * The method and field names here are a public contract.
 */
import type { JobDefinition, JsonObject, RunEvent, RunStatus, StepStatus, Tags } from '../core/types.js';

export interface InstanceOptions {
  /** A Redis URL: the shared instance. Absent: a local instance. */
  redis?: string;
  /** A local instance's directory (created if missing). Default: `$BATON_HOME`, else a fresh temp directory. */
  storageDir?: string;
}

/** Statuses a run can have in storage (QUEUED: submitted, not yet started). */
export type StoredRunStatus = RunStatus;

/** Statuses a step can show (WAITING: ready, but held back; see `waiting`). */
export type ShownStepStatus = StepStatus;

export interface RunSummary {
  runId: string;
  job: string;
  status: StoredRunStatus;
  tags: Tags;
  /** The op selection the run was launched with; null: every op. */
  selection: string[] | null;
  parentRunId?: string;
  /** ISO-8601: when the run was recorded. */
  createdAt: string;
  /** ISO-8601: when it began executing (absent while QUEUED). */
  startedAt?: string;
  endedAt?: string;
  /** How many of its steps are in each status. */
  stepCounts: Partial<Record<ShownStepStatus, number>>;
  /** QUEUED: why it has not started (the run-queue limit that holds it, or that no serve runs the queue). */
  queueReason?: string;
}

export interface StepView {
  status: ShownStepStatus;
  attempt: number;
  /** Where the current attempt runs (distributed: the worker id). */
  worker?: string;
  /** ISO-8601 of the last change. */
  updatedAt: string;
  /** WAITING: what holds the step back (a limit, a run's max_concurrent, no live worker). */
  waiting?: string;
  /** FAILURE: the last attempt's error. */
  error?: { message: string; stack?: string; code?: string };
}

export interface RunDetail extends RunSummary {
  jobHash: string;
  /** The merged run config as recorded (Redis passwords redacted). */
  runConfig: JsonObject;
  /** In plan order. */
  steps: Record<string, StepView>;
}

export interface RunsFilter {
  statuses?: StoredRunStatus[];
  job?: string;
  /** Every one of these tags must match. */
  tags?: Tags;
  /** ISO-8601 or epoch ms bounds on `createdAt`. */
  createdAfter?: string | number;
  createdBefore?: string | number;
  /** From a previous page's `cursor`. */
  cursor?: string;
  /** Default 50. */
  limit?: number;
}

/** A run event as stored, with the cursor to resume right after it. */
export type InstanceEvent = RunEvent & { cursor: string };

export interface LaunchRunOptions {
  /** Dagster op-selection queries; absent or empty: every op. */
  selection?: string[];
  /** Alias of `selection`. */
  select?: string[];
  /** A run config object, as parsed from YAML; the executor comes from it (default: the instance's). */
  runConfig?: JsonObject;
  tags?: Tags;
  runId?: string;
}

/** `submitRun`: the run is recorded QUEUED; a daemon (`coordinator serve`) starts it under the run queue's limits. */
export interface SubmittedRun {
  runId: string;
  status: 'QUEUED';
}

/** A live daemon (`coordinator serve`), from its heartbeat. */
export interface DaemonInfo {
  id: string;
  host: string;
  pid: number;
  /** What it runs: `orphans` (adoption), `schedules`, `sensors`, `queue`. */
  runs: string[];
  /** The jobs of its code location. */
  jobs: string[];
  /** ISO-8601 */
  startedAt: string;
  /** ISO-8601 of its last heartbeat. */
  lastSeen: string;
}

export interface RunChange {
  runId: string;
  job: string;
  status: StoredRunStatus;
  /** ISO-8601 */
  at: string;
}

export interface LimitHolderView {
  runId: string;
  stepKey: string;
  attempt: number;
  /** ISO-8601, when known. */
  since?: string;
}

export interface LimitWaiterView {
  runId: string;
  stepKey: string;
  attempt: number;
  /** The limits (specs) that hold it back. */
  blockedBy: string[];
}

export interface LimitInfo {
  /** `key`, `key=value` or `key=*`. */
  spec: string;
  limit: number;
  inUse: number;
  holders: LimitHolderView[];
  /** In admission order. */
  waiters: LimitWaiterView[];
}

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  queue: string;
  isolation?: string;
  concurrency?: number;
  jobs: Array<{ name: string; hash: string }>;
  loadErrors?: Array<{ file: string; message: string }>;
  running: number;
  runningSteps?: Array<{ runId: string; stepKey: string; since: string }>;
  startedAt?: string;
  /** ISO-8601 of its last heartbeat. */
  lastSeen: string;
  version?: string;
}

export interface Instance {
  readonly kind: 'redis' | 'local';
  /** Plans (every validation error before anything is written), records and starts the run; resolves once it is recorded. */
  launchRun(jobOrPath: JobDefinition | string, options?: LaunchRunOptions): Promise<{ runId: string }>;
  /**
   * Plans like launchRun (every validation error first), then records the run QUEUED and enters
   * it in the run queue; a daemon starts it under the run-level limits. A given `runId` already
   * taken fails with RUN_BUSY.
   */
  submitRun(jobOrPath: JobDefinition | string, options?: LaunchRunOptions): Promise<SubmittedRun>;
  /**
   * For daemons: starts a QUEUED run (taken from the queue) on the executor its run config names,
   * and resolves once it started. A run that can no longer start (its job file changed or is gone)
   * is recorded FAILURE with the reason, and the error is thrown.
   */
  startQueuedRun(runId: string): Promise<{ runId: string }>;
  /** Newest first, filtered in storage, paginated. */
  getRuns(filter?: RunsFilter): Promise<{ runs: RunSummary[]; cursor: string | null }>;
  getRun(runId: string): Promise<RunDetail | null>;
  getEvents(runId: string, options?: { after?: string; limit?: number }): Promise<{ events: InstanceEvent[]; cursor: string | null }>;
  /** The run's events from a cursor, live, ending after the run's last event (or when `signal` aborts). */
  watchEvents(runId: string, options?: { after?: string; signal?: AbortSignal }): AsyncIterable<InstanceEvent>;
  /** Run status changes across all runs, live, until `signal` aborts. */
  watchRuns(options?: { signal?: AbortSignal }): AsyncIterable<RunChange>;
  /** Resolves once the run ended (or was found ended); `by`: who did the work. */
  cancelRun(runId: string): Promise<{ status: StoredRunStatus; by?: 'coordinator' | 'this-call' | 'nobody (already ended)' }>;
  resumeRun(runId: string, options?: { jobPath?: string }): Promise<{ runId: string }>;
  reexecuteRun(runId: string, options?: { fromFailure?: boolean; selection?: string[] }): Promise<{ runId: string }>;
  deleteRun(runId: string): Promise<void>;
  limits: {
    list(): Promise<LimitInfo[]>;
    set(spec: string, limit: number): Promise<void>;
    delete(spec: string): Promise<boolean>;
  };
  workers: {
    list(): Promise<WorkerInfo[]>;
  };
  /** The live daemons (`coordinator serve`); always empty on a local instance. */
  daemons: {
    list(): Promise<DaemonInfo[]>;
  };
  close(): Promise<void>;
}
