/** Unfinished runs whose driver is gone (its run lease lapsed): what `serve` adopts. */
import type { Redis } from 'ioredis';
import type { RunStatus } from '../core/types.js';
import { DEFAULT_PREFIX, runKeys } from './keys.js';
import { queryRuns, repairRunIndex } from './run-index.js';

export interface OrphanRun {
  runId: string;
  status: RunStatus;
  job: string;
}

/** The newest `limit` runs STARTED or CANCELING with no driver, newest first (from the status indexes). */
export async function findOrphans(redis: Redis, limit: number, prefix: string = DEFAULT_PREFIX): Promise<OrphanRun[]> {
  await repairRunIndex(redis, prefix);
  const { runs } = await queryRuns(redis, { statuses: ['STARTED', 'CANCELING'], limit }, prefix);
  if (runs.length === 0) return [];
  // A pipeline per run (its keys share one hash tag, so one slot on a cluster); sent together.
  const perRun = await Promise.all(
    runs.map(async ({ runId }) => {
      const keys = runKeys(runId, prefix);
      return (await redis.pipeline().hmget(keys.record, 'status', 'job').exists(keys.driver).exec().catch(() => null)) ?? [];
    }),
  );
  const found: OrphanRun[] = [];
  runs.forEach(({ runId }, i) => {
    const [fieldsErr, fields] = perRun[i]?.[0] ?? [];
    const [driverErr, driver] = perRun[i]?.[1] ?? [];
    if (fieldsErr || driverErr || driver !== 0) return;
    const [status, job] = (fields as Array<string | null>) ?? [];
    if ((status === 'STARTED' || status === 'CANCELING') && job) found.push({ runId, status, job });
  });
  return found;
}
