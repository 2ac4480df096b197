/**
 * The run queue of an instance with no `serve` (a local instance under `coordinator ui`, like
 * `dagster dev`): each pass starts its QUEUED runs in priority then submission order. One process
 * owns the storage directory here, so no claim is needed; a run queue with limits and several
 * daemons is a Redis instance's (src/distributed/run-queue.ts).
 */
import type { Logger } from 'pino';
import { priorityOf } from '../core/run-queue.js';
import type { Instance, RunSummary } from '../instance/types.js';

/** Starts every QUEUED run of `instance` once; a run that cannot start is recorded FAILURE by startQueuedRun. */
export async function startQueuedRuns(instance: Instance, logger: Logger): Promise<string[]> {
  const queued: RunSummary[] = [];
  let cursor: string | undefined;
  do {
    const page = await instance.getRuns({ statuses: ['QUEUED'], limit: 200, ...(cursor ? { cursor } : {}) });
    queued.push(...page.runs);
    cursor = page.cursor ?? undefined;
  } while (cursor);
  queued.sort((a, b) => priorityOf(b.tags) - priorityOf(a.tags) || a.createdAt.localeCompare(b.createdAt));
  const started: string[] = [];
  for (const run of queued) {
    try {
      await instance.startQueuedRun(run.runId);
      started.push(run.runId);
      logger.info({ runId: run.runId, job: run.job }, 'started a queued run');
    } catch (e) {
      logger.error({ runId: run.runId, err: e instanceof Error ? e.message : String(e) }, 'could not start a queued run');
    }
  }
  return started;
}
