/** Operating recorded runs: resume one whose coordinator died, re-execute one as a new run. */
import type { JobDefinition, Json, JsonObject, RunConfig } from '../core/types.js';
import { buildPlan } from '../core/plan.js';
import { selectOps } from '../core/selection.js';
import { BatonError } from '../errors.js';
import { loadJob } from '../job/load-job.js';
import { resolveRunConfig } from '../job/run-config.js';
import { verifyJobOps, type ExecuteOptions } from '../run/execute-job.js';
import type { RunResult } from '../run/execute-run.js';
import { assertRedisReachable, createRedis } from './connection.js';
import { executeDistributed } from './coordinator.js';
import { createOutputStore } from './output-store.js';
import { withDistributed } from './recorded-config.js';
import { createRunStore, requireRun, type StoredRun } from './run-store.js';
import { distributedTuning } from './tuning.js';

export interface OperateOptions extends Pick<ExecuteOptions, 'signal' | 'onEvent'> {
  redisUrl: string;
  /** The job file on this machine; default: the path recorded with the run. */
  jobPath?: string;
}

export interface ResumeOptions extends OperateOptions {
  /** How long to wait for a dead coordinator's lease to expire; default three lease lengths. */
  leaseWaitMs?: number;
}

const FINISHED = new Set(['SUCCESS', 'FAILURE', 'CANCELED']);

/**
 * Adopts a run whose coordinator died and finishes it: steps that succeeded are not run again;
 * a step that was running is re-attached (its result taken if a worker finished it meanwhile,
 * re-queued if its worker died). Waits for the dead coordinator's lease to lapse; a live
 * coordinator's run is refused with RUN_BUSY as soon as its lease is seen renewed.
 */
export async function resumeRun(runId: string, o: ResumeOptions): Promise<RunResult> {
  const { stored } = await readRun(o.redisUrl, runId);
  if (FINISHED.has(stored.record.status)) {
    throw new BatonError('RUN_NOT_RESUMABLE', `run "${runId}" already ended ${stored.record.status}; use reexecute to run it again`);
  }
  const job = await jobOf(stored, o.jobPath, true);
  const runConfig = recordedRunConfig(stored, job, o.redisUrl);
  return executeDistributed(job, stored.plan, runConfig, {
    ...pass(o),
    runId,
    resume: true,
    leaseWaitMs: o.leaseWaitMs ?? 3 * distributedTuning().runLeaseMs,
  });
}

export interface ReexecuteOptions extends OperateOptions {
  /** Run the parent's failed, interrupted and not-run steps and everything downstream of them. */
  fromFailure?: boolean;
  /** Or run exactly these (Dagster op selection). */
  select?: readonly string[];
}

/**
 * A new run linked to its parent. Steps that do not run again hand their outputs, read from the
 * parent run, to the steps that do.
 */
export async function reexecuteRun(parentRunId: string, o: ReexecuteOptions): Promise<RunResult> {
  const { stored } = await readRun(o.redisUrl, parentRunId);
  const parent = stored.record;
  if (o.fromFailure && o.select?.length) throw new BatonError('USAGE', 'give --from-failure or --select, not both');
  if (o.fromFailure && parent.status !== 'FAILURE' && parent.status !== 'CANCELED') {
    throw new BatonError('RUN_NOT_RESUMABLE', `--from-failure needs a FAILURE or CANCELED run; run "${parentRunId}" is ${parent.status}`);
  }
  const job = await jobOf(stored, o.jobPath, false);
  const baseConfig = recordedRunConfig(stored, job, o.redisUrl);
  const planned = new Set(stored.plan.steps.map((s) => s.key));
  let selected: Set<string>;
  if (o.fromFailure) {
    const failed = stored.plan.steps.filter((s) => stored.steps[s.key]?.status !== 'SUCCESS').map((s) => `${s.key}*`);
    selected = new Set([...selectOps(job, failed)].filter((k) => planned.has(k)));
  } else {
    selected = o.select?.length ? selectOps(job, o.select) : new Set(planned);
  }
  if (selected.size === 0) throw new BatonError('RUN_NOT_RESUMABLE', `nothing to re-execute in run "${parentRunId}"`);
  const inputs = await parentInputs(o.redisUrl, stored, job, selected, baseConfig);
  const raw: JsonObject = { ...baseConfig.raw, ops: mergeInputs(baseConfig.raw.ops as JsonObject | undefined, inputs) };
  const runConfig = resolveRunConfig(raw, job);
  const plan = buildPlan(job, selected, runConfig);
  await verifyJobOps(job, plan.steps.map((s) => s.op));
  return executeDistributed(job, plan, runConfig, { ...pass(o), parentRunId, tags: parent.tags });
}

/** Values for the selected steps' inputs whose upstream does not run again: the parent's outputs. */
async function parentInputs(
  redisUrl: string,
  stored: StoredRun,
  job: JobDefinition,
  selected: ReadonlySet<string>,
  config: RunConfig,
): Promise<Record<string, Record<string, Json>>> {
  const wanted = new Map<string, Array<[string, string]>>(); // op -> [input, upstream]
  for (const op of selected) {
    for (const [input, upstream] of Object.entries(job.ops.get(op)?.ins ?? {})) {
      if (selected.has(upstream)) continue;
      if (stored.steps[upstream]?.status !== 'SUCCESS') {
        throw new BatonError(
          'RUN_NOT_RESUMABLE',
          `op "${op}" needs input "${input}" from "${upstream}", which did not succeed in run "${stored.record.runId}"; select "${upstream}" too`,
        );
      }
      wanted.set(op, [...(wanted.get(op) ?? []), [input, upstream]]);
    }
  }
  const upstreams = [...new Set([...wanted.values()].flat().map(([, u]) => u))];
  if (upstreams.length === 0) return {};
  const redis = createRedis(redisUrl);
  try {
    const storage = config.executor.kind === 'distributed' ? config.executor.outputStorage : { kind: 'redis' as const, maxBytes: Infinity };
    const values = await createOutputStore(redis, storage).getMany(stored.record.runId, upstreams);
    const out: Record<string, Record<string, Json>> = {};
    for (const [op, pairs] of wanted) out[op] = Object.fromEntries(pairs.map(([input, u]) => [input, values[u] ?? null]));
    return out;
  } finally {
    await redis.quit().catch(() => {});
  }
}

function mergeInputs(ops: JsonObject | undefined, inputs: Record<string, Record<string, Json>>): JsonObject {
  const merged: JsonObject = { ...(ops ?? {}) };
  for (const [op, values] of Object.entries(inputs)) {
    const current = (merged[op] ?? {}) as JsonObject;
    merged[op] = { ...current, inputs: { ...((current.inputs as JsonObject | undefined) ?? {}), ...values } };
  }
  return merged;
}

async function readRun(redisUrl: string, runId: string): Promise<{ stored: StoredRun }> {
  await assertRedisReachable(redisUrl);
  const redis = createRedis(redisUrl);
  const store = createRunStore(redis);
  try {
    return { stored: await requireRun(store, runId) };
  } finally {
    await store.close();
    await redis.quit().catch(() => {});
  }
}

/** The run's job file; resuming needs exactly the code the run was planned from. */
async function jobOf(stored: StoredRun, jobPath: string | undefined, sameHash: boolean): Promise<JobDefinition> {
  const job = await loadJob(jobPath ?? stored.record.jobPath);
  if (job.name !== stored.record.job) {
    throw new BatonError('RUN_NOT_RESUMABLE', `${job.sourcePath} defines job "${job.name}", but the run is of job "${stored.record.job}"`);
  }
  if (sameHash && job.hash !== stored.record.jobHash) {
    throw new BatonError('RUN_NOT_RESUMABLE', `job "${job.name}" in ${job.sourcePath} changed since run "${stored.record.runId}" started; resume needs the same job file`);
  }
  return job;
}

/** The run config recorded with the run (its Redis URL redacted), pointed at the Redis we reached. */
function recordedRunConfig(stored: StoredRun, job: JobDefinition, redisUrl: string): RunConfig {
  return resolveRunConfig(withDistributed(stored.record.runConfig, (d) => ({ ...d, redis: redisUrl })), job);
}

function pass(o: OperateOptions): Pick<ExecuteOptions, 'signal' | 'onEvent'> {
  return { ...(o.signal ? { signal: o.signal } : {}), ...(o.onEvent ? { onEvent: o.onEvent } : {}) };
}
