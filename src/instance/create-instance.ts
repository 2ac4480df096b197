/**
 * The instance, written once over a `RunStorage` and a backend: launching (plan first, then
 * record, then run), the views, cancel and re-execution. What differs between the local and the
 * Redis instance — the default executor, the distributed executor, who else may be driving a
 * run, limits and workers — comes from the backend.
 */
import { randomUUID } from 'node:crypto';
import { isTerminalRunStatus } from '../core/status.js';
import type { JobDefinition, JsonObject, RunStatus } from '../core/types.js';
import { BatonError, toError } from '../errors.js';
import { distributedSection, redactRunConfig } from '../distributed/recorded-config.js';
import type { PreparedRun } from '../run/execute-job.js';
import type { DrivenRun } from './drive-local.js';
import { DEFAULT_PAGE, type RunRow, type RunStorage, type StoredRunView } from './storage.js';
import type { Instance, LaunchRunOptions, RunSummary } from './types.js';
import { toDetail, toSummary } from './views.js';

export interface InstanceBackend {
  readonly kind: Instance['kind'];
  readonly storage: RunStorage;
  /** Where runs are looked up, for messages: `this Redis (check --redis and the run id)`. */
  readonly where: string;
  /** The run config as given, with the instance's defaults filled in (e.g. its executor); bad combinations throw InputError. */
  runConfigFor(raw: JsonObject): JsonObject;
  /** Starts a distributed run; resolves with its id once it is recorded. */
  launchDistributed(job: JobDefinition, prepared: PreparedRun, meta: { runId: string; tags: Record<string, string>; selection: string[] | null }): Promise<DriveHandle>;
  /** Registers this process as the driver of a local-executor run; returns how to let go. */
  driveHere(runId: string, onCancel: () => void): Promise<() => Promise<void>>;
  /** Cancels a run this process does not drive; resolves with its status once it ended (or was asked to end). */
  cancelElsewhere(run: StoredRunView): Promise<CancelOutcome>;
  resume(run: StoredRunView, options: { jobPath?: string }): Promise<DriveHandle>;
  /** Re-executes a distributed parent run; undefined: the parent ran on a local executor, handled here. */
  reexecuteDistributed(run: StoredRunView, options: { fromFailure?: boolean; selection?: string[] }): Promise<DriveHandle> | undefined;
  deleteRunData(run: StoredRunView): Promise<void>;
  /** Enters a run just recorded QUEUED in the run queue (absent: the queue is the QUEUED runs in storage). */
  enqueue?(row: RunRow): Promise<void>;
  /** Why each of these QUEUED runs waits. */
  queueReasons(runIds: readonly string[]): Promise<Map<string, string>>;
  limits: Instance['limits'];
  workers: Instance['workers'];
  daemons: Instance['daemons'];
  close(): Promise<void>;
}

export interface CancelOutcome {
  status: RunStatus;
  /** Who did the cancel: the run's driver, this call (the run had no live driver), or nobody (it had ended). */
  by: 'coordinator' | 'this-call' | 'nobody (already ended)';
}

/** A run started by this process: its id, and a promise that settles when it ends. */
export interface DriveHandle {
  runId: string;
  done: Promise<unknown>;
  controller?: AbortController;
}

const RUN_ID = /^[A-Za-z0-9_-]{1,100}$/;

/**
 * Planning and running, loaded on first use: the views (`runs`, `status`, `logs`) stay quick to
 * start without the job loader, the schemas and the executors.
 */
const launching = async () => {
  const [{ buildPlan }, { loadJob }, { resolveRunConfig }, { prepareRun, verifyJobOps }, { startLocalRun }, reexecution] = await Promise.all([
    import('../core/plan.js'),
    import('../job/load-job.js'),
    import('../job/run-config.js'),
    import('../run/execute-job.js'),
    import('./drive-local.js'),
    import('./reexecution.js'),
  ]);
  return { buildPlan, loadJob, resolveRunConfig, prepareRun, verifyJobOps, startLocalRun, ...reexecution };
};

export function createInstance(backend: InstanceBackend): Instance {
  const { storage } = backend;
  const driven = new Map<string, DriveHandle>();
  let closed = false;

  const track = (handle: DriveHandle | DrivenRun): { runId: string } => {
    driven.set(handle.runId, handle);
    void handle.done.catch(() => {}).finally(() => driven.delete(handle.runId));
    return { runId: handle.runId };
  };
  const requireRun = async (runId: string): Promise<StoredRunView> => {
    const run = await storage.getRun(runId);
    if (!run) throw new BatonError('RUN_NOT_FOUND', `no run "${runId}" in ${backend.where}`);
    return run;
  };
  const assertOpen = (): void => {
    if (closed) throw new BatonError('USAGE', 'this instance is closed');
  };

  /** Adds `queueReason` to the QUEUED runs among these. */
  const withReasons = async <T extends RunSummary>(runs: T[]): Promise<T[]> => {
    const queued = runs.filter((r) => r.status === 'QUEUED').map((r) => r.runId);
    if (queued.length === 0) return runs;
    const reasons = await backend.queueReasons(queued);
    return runs.map((r) => (reasons.has(r.runId) ? { ...r, queueReason: reasons.get(r.runId) as string } : r));
  };

  /** Plans (all bad input fails here), then the run's id, tags and selection. */
  const prepare = async (jobOrPath: JobDefinition | string, options: LaunchRunOptions) => {
    const { loadJob, prepareRun } = await launching();
    const job = typeof jobOrPath === 'string' ? await loadJob(jobOrPath) : jobOrPath;
    const runId = options.runId ?? randomUUID();
    if (!RUN_ID.test(runId)) throw new BatonError('USAGE', `invalid run id "${runId}": expected 1-100 letters, digits, "-" and "_"`);
    const selection = options.selection ?? options.select ?? [];
    const prepared = await prepareRun(job, { select: selection, runConfig: backend.runConfigFor(options.runConfig ?? {}) });
    const tags = { ...job.tags, ...(options.tags ?? {}) };
    return { job, prepared, meta: { runId, tags, selection: selection.length > 0 ? [...selection] : null } };
  };

  /** A queued run that cannot start is recorded FAILURE, with why, so it does not wait forever. */
  const failQueued = async (runId: string, e: unknown): Promise<void> => {
    if ((await storage.getRun(runId))?.row.status !== 'QUEUED') return;
    const at = new Date().toISOString();
    await storage.setRunStatus(runId, 'FAILURE', at);
    await storage.recordEvent({ type: 'RUN_FAILURE', timestamp: at, runId, message: `the queued run could not start: ${toError(e).message}` });
  };

  const launchPrepared = async (
    job: JobDefinition,
    prepared: PreparedRun,
    meta: { runId: string; tags: Record<string, string>; selection: string[] | null; parentRunId?: string },
  ): Promise<{ runId: string }> => {
    if (prepared.runConfig.executor.kind === 'distributed') {
      if (meta.parentRunId) throw new BatonError('USAGE', 'a re-execution of a local run runs on a local executor');
      return track(await backend.launchDistributed(job, prepared, meta));
    }
    const { startLocalRun } = await launching();
    return track(await startLocalRun(storage, job, prepared, meta, backend.driveHere));
  };

  const instance: Instance = {
    kind: backend.kind,

    async launchRun(jobOrPath, options: LaunchRunOptions = {}) {
      assertOpen();
      const { job, prepared, meta } = await prepare(jobOrPath, options);
      return launchPrepared(job, prepared, meta);
    },

    async submitRun(jobOrPath, options: LaunchRunOptions = {}) {
      assertOpen();
      const { job, prepared, meta } = await prepare(jobOrPath, options);
      const row: RunRow = {
        ...meta,
        job: job.name,
        jobHash: job.hash,
        jobPath: job.sourcePath,
        status: 'QUEUED',
        createdAt: new Date().toISOString(),
        runConfig: redactRunConfig(prepared.runConfig.raw),
      };
      await storage.createRun(row, prepared.plan);
      await backend.enqueue?.(row);
      return { runId: meta.runId, status: 'QUEUED' as const };
    },

    async startQueuedRun(runId) {
      assertOpen();
      const run = await requireRun(runId);
      if (run.row.status !== 'QUEUED') throw new BatonError('RUN_NOT_RESUMABLE', `run "${runId}" is ${run.row.status}, not QUEUED`);
      try {
        if (distributedSection(run.row.runConfig)) return track(await backend.resume(run, {}));
        const { loadJob, resolveRunConfig, verifyJobOps, startLocalRun } = await launching();
        const job = await loadJob(run.row.jobPath);
        if (job.hash !== run.row.jobHash) {
          throw new BatonError('JOB_HASH_MISMATCH', `${job.sourcePath} changed since run "${runId}" was submitted (its ops differ); submit it again`);
        }
        const runConfig = resolveRunConfig(run.row.runConfig, job);
        await verifyJobOps(job, run.plan.steps.map((s) => s.op));
        const meta = { runId, tags: run.row.tags, selection: run.row.selection, queued: true };
        return track(await startLocalRun(storage, job, { plan: run.plan, runConfig }, meta, backend.driveHere));
      } catch (e) {
        await failQueued(runId, e).catch(() => {});
        throw e;
      }
    },

    async getRuns(filter = {}) {
      if (filter.limit !== undefined && !(Number.isSafeInteger(filter.limit) && filter.limit > 0)) {
        throw new BatonError('USAGE', `getRuns limit must be a positive integer, got ${String(filter.limit)}`);
      }
      const { rows, cursor } = await storage.getRuns({ ...filter, limit: filter.limit ?? DEFAULT_PAGE });
      const counts = await storage.stepCounts(rows.map((r) => r.runId));
      return { runs: await withReasons(rows.map((r, i) => toSummary(r, counts[i] ?? {}))), cursor };
    },

    async getRun(runId) {
      const run = await storage.getRun(runId);
      return run ? (await withReasons([await toDetail(run, storage)]))[0] ?? null : null;
    },

    async getEvents(runId, options = {}) {
      const events = await storage.getEvents(runId, options.after, options.limit);
      return { events, cursor: events.at(-1)?.cursor ?? options.after ?? null };
    },

    watchEvents(runId, options = {}) {
      return storage.watchEvents(runId, options.after, options.signal);
    },

    watchRuns(options = {}) {
      return storage.watchRuns(options.signal);
    },

    async cancelRun(runId) {
      const here = driven.get(runId);
      if (here?.controller) {
        here.controller.abort();
        await here.done.catch(() => {});
        return { status: (await requireRun(runId)).row.status, by: 'coordinator' as const };
      }
      const run = await requireRun(runId);
      if (isTerminalRunStatus(run.row.status)) return { status: run.row.status, by: 'nobody (already ended)' as const };
      return backend.cancelElsewhere(run);
    },

    async resumeRun(runId, options = {}) {
      assertOpen();
      return track(await backend.resume(await requireRun(runId), options));
    },

    async reexecuteRun(runId, options = {}) {
      assertOpen();
      const parent = await requireRun(runId);
      const distributed = backend.reexecuteDistributed(parent, options);
      if (distributed) return track(await distributed);
      const { loadJob, planReexecution, neededOutputs, resolveRunConfig, withParentInputs, buildPlan, verifyJobOps } = await launching();
      const job = await loadJob(parent.row.jobPath);
      if (job.name !== parent.row.job) {
        throw new BatonError('RUN_NOT_RESUMABLE', `${job.sourcePath} defines job "${job.name}", but run "${runId}" is of job "${parent.row.job}"`);
      }
      const plan = planReexecution(job, { runId, status: parent.row.status, plan: parent.plan, steps: parent.steps }, options);
      const outputs = await storage.getOutputs(runId, neededOutputs(plan));
      const runConfig = resolveRunConfig(withParentInputs(parent.row.runConfig, plan, outputs), job);
      const execution = buildPlan(job, plan.selected, runConfig);
      await verifyJobOps(job, execution.steps.map((s) => s.op));
      const selection = options.selection?.length ? [...options.selection] : execution.steps.map((s) => s.key);
      return launchPrepared(job, { plan: execution, runConfig }, { runId: randomUUID(), tags: parent.row.tags, selection, parentRunId: runId });
    },

    async deleteRun(runId) {
      const run = await storage.getRun(runId);
      if (!run) return;
      if (!isTerminalRunStatus(run.row.status) && driven.has(runId)) {
        throw new BatonError('RUN_BUSY', `run "${runId}" is still running here; cancel it before deleting it`);
      }
      await backend.deleteRunData(run);
      await storage.deleteRun(runId);
    },

    limits: backend.limits,
    workers: backend.workers,
    daemons: backend.daemons,

    async close() {
      if (closed) return;
      closed = true;
      // Runs driven by this process finish first: their records must not be left half-written.
      await Promise.allSettled([...driven.values()].map((d) => d.done));
      await storage.close();
      await backend.close();
    },
  };
  return instance;
}
