/**
 * Submitting a run under a fixed run id, once: what the schedules daemon (and the sensors daemon)
 * do for each tick or run request. A second call with the same id, from any serve, after a crash
 * or a retry, finds the run recorded and makes nothing; the run queue starts it.
 */
import type { JobDefinition } from '../core/types.js';
import { BatonError } from '../errors.js';
import type { Instance, LaunchRunOptions } from '../instance/types.js';

/** `created`: false when a run with this id was recorded already (by this tick's earlier attempt). */
export async function submitOnce(
  instance: Instance,
  job: JobDefinition,
  options: LaunchRunOptions & { runId: string },
): Promise<{ runId: string; created: boolean }> {
  if (await instance.getRun(options.runId)) return { runId: options.runId, created: false };
  try {
    await instance.submitRun(job, options);
    return { runId: options.runId, created: true };
  } catch (e) {
    // Another serve recorded it between the look and the submit: the same run.
    if (e instanceof BatonError && e.code === 'RUN_BUSY' && (await instance.getRun(options.runId))) return { runId: options.runId, created: false };
    throw e;
  }
}
