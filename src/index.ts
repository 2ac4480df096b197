/** baton's library API: load a job, then run it like Dagster's `execute_in_process`, or with its configured executor. */
export type * from './core/types.js';
export { BatonError, InputError, formatProblem, type ErrorCode, type Problem } from './errors.js';
export { loadJob, parseJob } from './job/load-job.js';
export { loadRunConfig, resolveJobRunConfig, resolveRunConfig } from './job/run-config.js';
export { selectOps, parseSelectionQuery } from './core/selection.js';
export { buildPlan } from './core/plan.js';
export { executeInProcess, executeJob, prepareRun, type ExecuteOptions } from './run/execute-job.js';
export { executeRun, type RunResult } from './run/execute-run.js';
export { openInstance } from './instance/open-instance.js';
export type * from './instance/types.js';
export { RUN_STATUSES, TERMINAL_RUN_STATUSES, TERMINAL_STEP_STATUSES, isFinalRunEvent } from './core/status.js';
