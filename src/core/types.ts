/**
 * Glossary — these words mean the same thing everywhere in baton.
 *
 * job          A named DAG of ops, declared in a job.yaml file (`JobDefinition`).
 * op           A node of a job: a JS/TS function (`fn: module#export`) or an argv `command`.
 * input (ins)  A data edge: the op receives an upstream op's output under an input name.
 * dep (deps)   An ordering-only edge: the op runs after the upstream succeeds and receives nothing.
 * selection    A Dagster op-selection query (`*a`, `a+`, `a,b`, ...) choosing a subset of ops.
 * plan         The `ExecutionPlan`: the selected ops as steps in topological order.
 * step         One op's execution within a run. Its key is the op name.
 * attempt      One try of a step, 1-based; a retry policy may make further attempts.
 * run          One execution of a plan with a run config; identified by `runId`.
 * executor     What moves steps: in_process, multiprocess or distributed.
 * launcher     The executor's adapter that runs one attempt of a step somewhere (`StepLauncher`).
 * limit        A tag concurrency limit: steps whose tags match may hold at most `limit` slots.
 * slot         One unit of a limit, held by a running step.
 * lease        A claim that lapses unless its holder renews it: a slot lease (held by the step's
 *              coordinator, then its worker) or a run lease (held by the run's coordinator).
 * coordinator  The process that drives a run: plans, launches ready steps, records events.
 * orphan       A run that is not finished and whose coordinator's run lease lapsed; `resume` or
 *              `serve` adopts it.
 * worker       A process that takes steps from the Redis queue and runs them.
 * instance     Where runs are recorded, read and launched from (`openInstance`): a storage
 *              directory (local) or the shared Redis. Every consumer of runs goes through it.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
export type Tags = Record<string, string>;

/** Dagster's RetryPolicy: delay in seconds; backoff and jitter optional. */
export interface RetryPolicy {
  maxRetries: number;
  delaySeconds: number;
  backoff: 'linear' | 'exponential' | null;
  jitter: 'full' | 'plus_minus' | null;
}

export type OpImpl =
  /** `module` is an absolute path; `exportName` is 'default' when the `#name` part is omitted. */
  | { kind: 'fn'; module: string; exportName: string }
  | { kind: 'command'; argv: string[] };

export interface OpDefinition {
  name: string;
  description?: string;
  impl: OpImpl;
  tags: Tags;
  /** Default op config; run config `ops.<op>.config` is deep-merged over it. */
  config: JsonObject;
  retry: RetryPolicy | null;
  /** A step of this op that runs longer fails with STEP_TIMEOUT (retry policy applies). */
  timeoutSeconds?: number;
  /** input name -> upstream op name */
  ins: Record<string, string>;
  /** ordering-only upstream op names */
  deps: string[];
}

export interface JobDefinition {
  name: string;
  description?: string;
  tags: Tags;
  /** In declaration order. */
  ops: ReadonlyMap<string, OpDefinition>;
  /** Absolute path of the job file. */
  sourcePath: string;
  /** Directory that relative module paths are resolved against. */
  baseDir: string;
  /** sha256 (hex) of the canonical name and ops: lets a worker refuse a step planned from other code. */
  hash: string;
  /** The job's own run config (`run_config:` or `run_config_file:`), merged under every run's. */
  runConfig?: JobRunConfig;
  /** Its `schedules:`, in declaration order (not covered by `hash`). */
  schedules?: ReadonlyMap<string, ScheduleDefinition>;
}

/** After downtime: run the latest missed tick, every missed tick (up to max_catchup), or none. */
export type CatchupPolicy = 'latest' | 'all' | 'none';

/** A schedule declared in a job file: a cron line that launches runs of the job. */
export interface ScheduleDefinition {
  name: string;
  /** 5 fields, or 6 with seconds first. */
  cron: string;
  /** IANA time zone the cron line is read in. Default UTC. */
  timezone: string;
  /** Run config of its runs (merged over the job's); strings may hold {{ scheduled_time }} / {{ scheduled_date }}. */
  runConfig?: JobRunConfig;
  tags: Tags;
  /** Op selection; absent: every op. */
  selection?: string[];
  /** Its status until an operator starts or stops it in the instance. */
  defaultStatus: 'running' | 'stopped';
  catchup: CatchupPolicy;
  /** For `catchup: all`: at most this many missed ticks. */
  maxCatchup: number;
}

/** Run config set on the job itself: the lowest layer, under `-c` files and `launchRun`'s. */
export interface JobRunConfig {
  /** Dagster's run-config shape as written; checked when the job was loaded. */
  value: JsonObject;
  /** The file it is written in, as the user named it: the job file, or its `run_config_file`. */
  file: string;
  /** Absolute path of that file. */
  sourcePath: string;
  /** Where it sits in that file: `['run_config']`, or `[]` for a file of its own. */
  path: string[];
}

/** Dagster's `tag_concurrency_limits` entry, normalised. */
export interface TagConcurrencyLimit {
  key: string;
  /** Absent: every step that has the key. */
  value?: string;
  /** `value: { applyLimitPerUniqueValue: true }`: the limit applies to each distinct value. */
  perUniqueValue?: boolean;
  limit: number;
}

export type StartMethod = { kind: 'spawn' } | { kind: 'forkserver'; preloadModules: string[] };

export type ExecutorConfig =
  | { kind: 'in_process'; retries: boolean }
  | {
      kind: 'multiprocess';
      /** Already resolved: 0 in the file means the number of CPUs. */
      maxConcurrent: number;
      startMethod: StartMethod;
      tagConcurrencyLimits: TagConcurrencyLimit[];
      retries: boolean;
    }
  | {
      kind: 'distributed';
      redisUrl: string;
      queue: string;
      /** 0 = no cap. */
      maxConcurrent: number;
      tagConcurrencyLimits: TagConcurrencyLimit[];
      retries: boolean;
      outputStorage: OutputStorage;
      /** A finished run's records, events and Redis outputs expire this long after it ends. */
      retentionSeconds: number;
    };

/** Where the distributed executor keeps step outputs so a step on another worker can read them. */
export type OutputStorage =
  /** JSON in Redis; an output larger than maxBytes fails its step with OP_OUTPUT_TOO_LARGE. */
  | { kind: 'redis'; maxBytes: number }
  /** JSON files under baseDir, a directory every worker and the coordinator share. */
  | { kind: 'filesystem'; baseDir: string };

export interface OpRunConfig {
  config?: JsonObject;
  /** Values for inputs whose upstream op is not selected. */
  inputs?: JsonObject;
}

export interface RunConfig {
  executor: ExecutorConfig;
  ops: Record<string, OpRunConfig>;
  /** The run is canceled once it has run this long (`max_runtime_seconds`). */
  maxRuntimeSeconds?: number;
  /** The merged run config as the user wrote it, for recording with the run. */
  raw: JsonObject;
  /**
   * Which file gave each executor setting: a dotted path (`execution.config.multiprocess`,
   * `execution.config.multiprocess.max_concurrent`) -> the file, as the user named it. Only for
   * settings that came from a file.
   */
  origins?: Record<string, string>;
}

export type StepInputSource = { fromStep: string } | { value: Json };

export interface PlanStep {
  /** Equal to the op name. */
  key: string;
  op: string;
  /** Keys of steps in this plan that must succeed before this one starts (inputs and deps). */
  upstream: string[];
  /** input name -> where its value comes from */
  inputs: Record<string, StepInputSource>;
  /** Op config with run config merged over the op's default. */
  config: JsonObject;
  tags: Tags;
  retry: RetryPolicy | null;
}

export interface ExecutionPlan {
  job: string;
  /** Topological order; ties keep declaration order. */
  steps: PlanStep[];
}

export type StepStatus =
  | 'NOT_STARTED'
  /** Ready, but held back by a concurrency limit, a run's max_concurrent, or no live worker that can take it. */
  | 'WAITING'
  | 'IN_PROGRESS'
  | 'UP_FOR_RETRY'
  | 'SUCCESS'
  | 'FAILURE'
  | 'SKIPPED'
  | 'CANCELED';

/** QUEUED: submitted, not yet started (the run queue). */
export type RunStatus = 'QUEUED' | 'STARTED' | 'CANCELING' | 'SUCCESS' | 'FAILURE' | 'CANCELED';

/** An error as it crosses process and network boundaries. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
  /** Command ops: the exit code, or the signal that ended the process. */
  exitCode?: number | null;
  signal?: string | null;
  stderrTail?: string;
  /** false: do not retry even when a retry policy allows it (e.g. a hash mismatch). */
  retryable?: boolean;
}

/** What a launcher needs to run one attempt of one step anywhere. */
export interface StepRequest {
  runId: string;
  jobName: string;
  jobHash: string;
  /** Absolute path of the job file, for launchers that load it themselves (child processes). */
  jobPath: string;
  stepKey: string;
  op: string;
  attempt: number;
  config: JsonObject;
  tags: Tags;
  inputs: Record<string, Json>;
}

export type StepOutcome = { ok: true; output: Json } | { ok: false; error: SerializedError };

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** One line an op logged through `context.log` (or a command op wrote to stdout/stderr). */
export interface OpLogRecord {
  level: LogLevel;
  msg: string;
  /** epoch milliseconds */
  time: number;
  fields?: JsonObject;
}

export interface LaunchHooks {
  /** Fired to cancel the attempt: the launcher aborts the op (AbortSignal, SIGTERM then SIGKILL). */
  signal: AbortSignal;
  onLog(record: OpLogRecord): void;
  /** The attempt actually began executing (e.g. a worker picked it up), or another worker took it over. */
  onStart?(info: StartInfo): void;
}

/** An executor backend: Dagster's StepHandler. The run loop decides what to launch and when. */
export interface StepLauncher {
  /** Runs one attempt. Never rejects: every failure is a `{ ok: false }` outcome. */
  launch(request: StepRequest, hooks: LaunchHooks): Promise<StepOutcome>;
  /** Releases processes, connections and timers. */
  close(): Promise<void>;
}

export type RunEventType =
  | 'RUN_START'
  /** A coordinator adopted a run whose coordinator died, and drives it on. */
  | 'RUN_RESUMED'
  | 'STEP_START'
  | 'STEP_SUCCESS'
  | 'STEP_FAILURE'
  | 'STEP_UP_FOR_RETRY'
  | 'STEP_SKIPPED'
  | 'STEP_CANCELED'
  /** Distributed: a worker finished an attempt (`ok`, `error`); the coordinator then decides success, retry or failure. */
  | 'STEP_ATTEMPT_END'
  | 'LOG'
  | 'RUN_CANCELING'
  | 'RUN_SUCCESS'
  | 'RUN_FAILURE'
  | 'RUN_CANCELED';

/** Where and when an attempt began. */
export interface StartInfo {
  worker?: string;
  pid?: number;
  /** ISO-8601: it began before this coordinator drove the run (a resumed run re-attached to it). */
  startedAt?: string;
}

export interface RunEvent {
  type: RunEventType;
  /** ISO-8601 */
  timestamp: string;
  runId: string;
  stepKey?: string;
  attempt?: number;
  message?: string;
  error?: SerializedError;
  /** LOG events */
  level?: LogLevel;
  fields?: JsonObject;
  /** STEP_UP_FOR_RETRY: seconds until the next attempt. */
  retryDelaySeconds?: number;
  /** RUN_START / RUN_RESUMED: steps in the plan, and (resumed) how many had already ended. */
  stepCount?: number;
  doneCount?: number;
  /** STEP_ATTEMPT_END: whether the attempt succeeded. */
  ok?: boolean;
  /** STEP_START: where the attempt runs. */
  worker?: string;
  pid?: number;
  /**
   * STEP_START seen again in the live view, not in the event log: `resumed` — a resumed coordinator
   * re-attached to an attempt that began before it (the timestamp is the attempt's own start);
   * `takeover` — another worker took the running attempt over (its first worker died).
   */
  startKind?: 'resumed' | 'takeover';
}
