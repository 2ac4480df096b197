/**
 * A CLI run of a local executor, recorded under a storage directory (`--storage`, `$BATON_HOME`)
 * so `runs`, `status`, `logs` and `cancel` work on it from another terminal.
 */
import type { JobDefinition, RunEvent, Tags } from '../../core/types.js';
import type { PreparedRun } from '../../run/execute-job.js';
import type { RunResult } from '../../run/execute-run.js';
import { startLocalRun } from '../drive-local.js';
import { localDriver } from './local-instance.js';
import { openLocalStorage } from './local-storage.js';

export async function runRecordedLocally(
  storageDir: string,
  job: JobDefinition,
  prepared: PreparedRun,
  meta: { runId: string; tags: Tags; selection: string[] | null; signal: AbortSignal; onEvent: (e: RunEvent) => void },
): Promise<RunResult> {
  const storage = await openLocalStorage(storageDir);
  try {
    const run = await startLocalRun(storage, job, prepared, meta, localDriver(storage));
    return await run.done;
  } finally {
    await storage.close();
  }
}
