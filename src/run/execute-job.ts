import { buildPlan } from '../core/plan.js';
import { selectOps } from '../core/selection.js';
import type { ExecutionPlan, JobDefinition, JsonObject, RunConfig, RunEvent, Tags } from '../core/types.js';
import { createInProcessLauncher } from '../executors/in-process-launcher.js';
import { createMultiprocessLauncher } from '../executors/multiprocess-launcher.js';
import { verifyOps } from '../executors/op-module.js';
import { InputError } from '../errors.js';
import { locateJobProblems } from '../job/locate-job-problems.js';
import { resolveJobRunConfig } from '../job/run-config.js';
import { executeRun, type RunResult } from './execute-run.js';

export interface ExecuteOptions {
  /** Dagster op-selection queries, unioned; empty or absent: every op. */
  select?: readonly string[];
  /**
   * A resolved RunConfig (used as it is), or a plain run-config object (Dagster's shape), merged
   * over the job's own run config.
   */
  runConfig?: RunConfig | JsonObject;
  runId?: string;
  /** Run tags (job tags plus the caller's); recorded with the run. */
  tags?: Tags;
  /** Skip planning: the result of `prepareRun` for this job. */
  prepared?: PreparedRun;
  signal?: AbortSignal;
  onEvent?: (event: RunEvent) => void;
}

export interface PreparedRun {
  plan: ExecutionPlan;
  runConfig: RunConfig;
}

/** Selection, run config and plan, with every op's code checked: all bad input fails here, before anything runs. */
export async function prepareRun(job: JobDefinition, options: Pick<ExecuteOptions, 'select' | 'runConfig'>): Promise<PreparedRun> {
  const runConfig = isResolved(options.runConfig) ? options.runConfig : resolveJobRunConfig(options.runConfig ?? {}, job);
  const selected = options.select && options.select.length > 0 ? selectOps(job, options.select) : undefined;
  const plan = buildPlan(job, selected, runConfig);
  await verifyJobOps(job, plan.steps.map((s) => s.op));
  return { plan, runConfig };
}

/** The ops' code is loadable (modules, exports, executables); problems located in the job file. */
export async function verifyJobOps(job: JobDefinition, ops: Iterable<string>): Promise<void> {
  try {
    await verifyOps(job, ops);
  } catch (e) {
    if (e instanceof InputError) throw new InputError(e.code, locateJobProblems(job, e.problems));
    throw e;
  }
}

/** Runs the job with the executor its run config names (in_process or multiprocess; the default is multiprocess). */
export async function executeJob(job: JobDefinition, options: ExecuteOptions = {}): Promise<RunResult> {
  const { plan, runConfig } = options.prepared ?? (await prepareRun(job, options));
  const executor = runConfig.executor;
  if (executor.kind === 'distributed') {
    const { executeDistributed } = await import('../distributed/coordinator.js');
    return executeDistributed(job, plan, runConfig, options);
  }
  if (executor.kind === 'in_process') return runInProcess(job, plan, runConfig, options);
  const launcher = createMultiprocessLauncher(job, {
    startMethod: executor.startMethod,
    maxConcurrent: executor.maxConcurrent,
  });
  try {
    return await executeRun({
      job,
      plan,
      launcher,
      maxConcurrent: executor.maxConcurrent,
      tagConcurrencyLimits: executor.tagConcurrencyLimits,
      retriesEnabled: executor.retries,
      ...runOptions(options),
    });
  } finally {
    await launcher.close();
  }
}

/** Dagster's `execute_in_process`: every step in this process, one at a time, whatever the run config's executor. */
export async function executeInProcess(job: JobDefinition, options: ExecuteOptions = {}): Promise<RunResult> {
  const { plan, runConfig } = options.prepared ?? (await prepareRun(job, options));
  return runInProcess(job, plan, runConfig, options);
}

async function runInProcess(job: JobDefinition, plan: ExecutionPlan, runConfig: RunConfig, options: ExecuteOptions): Promise<RunResult> {
  const launcher = createInProcessLauncher(job);
  try {
    return await executeRun({
      job,
      plan,
      launcher,
      maxConcurrent: 1,
      tagConcurrencyLimits: [],
      retriesEnabled: runConfig.executor.retries,
      ...runOptions(options),
    });
  } finally {
    await launcher.close();
  }
}

function runOptions(o: ExecuteOptions): Pick<ExecuteOptions, 'runId' | 'signal' | 'onEvent'> {
  return {
    ...(o.runId !== undefined ? { runId: o.runId } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.onEvent ? { onEvent: o.onEvent } : {}),
  };
}

function isResolved(c: RunConfig | JsonObject | undefined): c is RunConfig {
  return c !== undefined && typeof (c as RunConfig).executor === 'object' && 'kind' in ((c as RunConfig).executor ?? {});
}
