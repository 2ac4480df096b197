/**
 * Drives a run on a local executor (in_process or multiprocess) in this process tree and records
 * it in the instance's storage, whichever storage that is: the run row, each event and step
 * state, the outputs, then the final status — and the run's last event after it, so a watcher
 * that sees the last event finds the run ended.
 */
import { isFinalRunEvent } from '../core/status.js';
import type { JobDefinition, RunEvent, Tags } from '../core/types.js';
import { toError } from '../errors.js';
import { executeJob, type PreparedRun } from '../run/execute-job.js';
import type { RunResult } from '../run/execute-run.js';
import type { RunStorage } from './storage.js';

export interface LocalRunMeta {
  runId: string;
  tags: Tags;
  selection: string[] | null;
  parentRunId?: string;
  /** Each event as it happens (e.g. the CLI's progress), before it is recorded. */
  onEvent?: (event: RunEvent) => void;
  /** Aborting it cancels the run (as the run's own controller does). */
  signal?: AbortSignal;
  /** The run is recorded already, QUEUED (submitted): it is set STARTED instead of created. */
  queued?: boolean;
}

export interface DrivenRun {
  runId: string;
  /** Aborting it cancels the run. */
  controller: AbortController;
  /** The run's result once it is recorded as ended; rejects (after recording a failure) if the executor itself failed. */
  done: Promise<RunResult>;
}

/**
 * Resolves once the run is recorded. `driveHere` registers this process as the run's driver
 * (a lease, a cancel listener) and returns how to let go.
 */
export async function startLocalRun(
  storage: RunStorage,
  job: JobDefinition,
  prepared: PreparedRun,
  meta: LocalRunMeta,
  driveHere: (runId: string, onCancel: () => void) => Promise<() => Promise<void>>,
): Promise<DrivenRun> {
  const now = new Date().toISOString();
  if (!meta.queued) await storage.createRun(
    {
      runId: meta.runId,
      job: job.name,
      jobHash: job.hash,
      jobPath: job.sourcePath,
      status: 'STARTED',
      tags: meta.tags,
      selection: meta.selection,
      ...(meta.parentRunId ? { parentRunId: meta.parentRunId } : {}),
      createdAt: now,
      startedAt: now,
      runConfig: prepared.runConfig.raw,
    },
    prepared.plan,
  );
  const controller = new AbortController();
  if (meta.signal) {
    if (meta.signal.aborted) controller.abort();
    else meta.signal.addEventListener('abort', () => controller.abort(), { once: true });
  }
  const release = await driveHere(meta.runId, () => controller.abort());
  if (meta.queued) await storage.setRunStatus(meta.runId, 'STARTED');
  let writes: Promise<unknown> = Promise.resolve();
  const write = (work: () => Promise<unknown>): void => {
    writes = writes.then(work).catch(() => {}); // storage gone (deleted run, closed instance): the run goes on
  };
  let finalEvent: RunEvent | undefined;
  const finish = async (status: RunResult['status'], outputs: RunResult['outputs'], last: RunEvent): Promise<void> => {
    await writes;
    await storage.saveOutputs(meta.runId, outputs);
    await storage.setRunStatus(meta.runId, status, new Date().toISOString());
    await storage.recordEvent(last);
  };
  const done = executeJob(job, {
    prepared,
    runId: meta.runId,
    tags: meta.tags,
    signal: controller.signal,
    onEvent: (e) => {
      meta.onEvent?.(e);
      if (isFinalRunEvent(e)) {
        finalEvent = e;
        return;
      }
      write(() => storage.recordEvent(e));
      if (e.type === 'RUN_CANCELING') write(() => storage.setRunStatus(meta.runId, 'CANCELING'));
    },
  })
    .then(async (result) => {
      const last = finalEvent ?? { type: 'RUN_FAILURE', timestamp: new Date().toISOString(), runId: meta.runId };
      await finish(result.status, result.outputs, last).catch(() => {});
      return result;
    })
    .catch(async (e: unknown) => {
      const message = `the run's executor failed: ${toError(e).message}`;
      await finish('FAILURE', {}, { type: 'RUN_FAILURE', timestamp: new Date().toISOString(), runId: meta.runId, message }).catch(() => {});
      throw e;
    })
    .finally(() => release().catch(() => {}));
  return { runId: meta.runId, controller, done };
}
