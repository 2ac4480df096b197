/** Typed errors with stable codes. Library code throws these; the CLI maps them to exit codes. */

export type ErrorCode =
  | 'FILE_UNREADABLE'
  | 'FILE_NOT_UTF8'
  | 'FILE_TOO_LARGE'
  | 'YAML_SYNTAX'
  | 'JOB_INVALID'
  | 'RUN_CONFIG_INVALID'
  | 'DEPENDENCY_CYCLE'
  | 'SELECTION_INVALID'
  | 'PLAN_INVALID'
  | 'OP_MODULE_NOT_FOUND'
  /** The op's module exists but does not compile (TypeScript or JavaScript syntax). */
  | 'OP_MODULE_COMPILE_FAILED'
  | 'OP_EXPORT_NOT_FOUND'
  | 'OP_OUTPUT_NOT_JSON'
  | 'OP_OUTPUT_TOO_LARGE'
  | 'OP_FAILED'
  | 'COMMAND_FAILED'
  | 'STEP_CANCELED'
  | 'STEP_LOST'
  /** The step process running the step exited, was killed, or broke (unhandled rejection). */
  | 'STEP_PROCESS_DIED'
  /** The step ran longer than its op's timeout_seconds. */
  | 'STEP_TIMEOUT'
  | 'SLOT_LOST'
  | 'JOB_UNKNOWN'
  | 'JOB_HASH_MISMATCH'
  | 'REDIS_UNAVAILABLE'
  | 'RUN_NOT_FOUND'
  | 'RUN_BUSY'
  | 'RUN_NOT_RESUMABLE'
  | 'RUN_LEASE_LOST'
  | 'LIMIT_INVALID'
  | 'SCHEDULE_NOT_FOUND'
  | 'SENSOR_NOT_FOUND'
  /** A sensor's evaluation threw, returned something that is not a sensor result, or took too long. */
  | 'SENSOR_FAILED'
  /** The operation needs a Redis instance (limits, resume, a distributed run); this one is local. */
  | 'NEEDS_REDIS'
  | 'USAGE';

/** One thing wrong with the user's input, located as precisely as we can. */
export interface Problem {
  /** File the problem is in, as the user named it. */
  file?: string;
  /** 1-based YAML position. */
  line?: number;
  column?: number;
  /** Dotted path inside the document, e.g. `execution.config.multiprocess.max_concurent`. */
  path?: string;
  message: string;
  /** e.g. `did you mean "max_concurrent"?` */
  hint?: string;
}

export class BatonError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BatonError';
    this.code = code;
  }
}

/**
 * A coordinator stopped driving a run because it lost its lease on it: another may drive it now.
 * `run` is what this coordinator last knew of it (status and step statuses).
 */
export class RunLeaseLostError extends BatonError {
  readonly run: { runId: string; job: string; status: string; steps: Record<string, string> };
  constructor(message: string, run: RunLeaseLostError['run']) {
    super('RUN_LEASE_LOST', message);
    this.name = 'RunLeaseLostError';
    this.run = run;
  }
}

/** Bad input from the user: nothing was executed; the CLI exits 2 and lists every problem. */
export class InputError extends BatonError {
  readonly problems: Problem[];
  constructor(code: ErrorCode, problems: Problem[]) {
    super(code, problems.map(formatProblem).join('\n'));
    this.name = 'InputError';
    this.problems = problems;
  }
}

export function formatProblem(p: Problem): string {
  let where = p.file ?? '';
  if (p.line !== undefined) where += `:${p.line}${p.column !== undefined ? `:${p.column}` : ''}`;
  const at = p.path ? `${where ? ' ' : ''}at ${p.path}` : '';
  const prefix = where || at ? `${where}${at}: ` : '';
  return `${prefix}${p.message}${p.hint ? ` (${p.hint})` : ''}`;
}

/** Any thrown value as an Error. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : JSON.stringify(value));
}
