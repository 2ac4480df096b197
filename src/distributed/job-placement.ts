/**
 * Where a step may run during a rolling deploy: old and new workers share a queue, and a step runs
 * only on a worker whose copy of the job has the step's definition hash. A worker with another
 * copy (or none) leaves the step on the queue for one that has it; only when no live worker can
 * take it for the placement wait does the step fail with JOB_HASH_MISMATCH or JOB_UNKNOWN.
 *
 * `decidePlacement` is pure; `createPlacement` adds the registry lookup.
 */
import type { Redis } from 'ioredis';
import type { JobDefinition } from '../core/types.js';
import { liveJobHashes, noLiveWorkerReason, type JobHashes } from './worker-registry.js';

/** How long a step no live worker can take waits before it fails (a worker's `--placement-wait`). */
export const DEFAULT_PLACEMENT_WAIT_MS = 60_000;

/** How long a left step stays delayed before a worker takes it again: doubles from the first to the last. */
const FIRST_LEAVE_DELAY_MS = 250;
const MAX_LEAVE_DELAY_MS = 4000;

/** What a worker that cannot run a step has noted on it (carried in the step's queue data). */
export interface PlacementNote {
  /** Epoch ms since which no live worker could take the step (absent: one could, when last looked). */
  unplacedSince?: number;
  /** How often a worker left it so far. */
  leaves: number;
}

export type Placement =
  | { kind: 'run' }
  /** Put the step back on the queue for `delayMs`, with this note. */
  | { kind: 'leave'; delayMs: number; note: PlacementNote; why: string }
  | { kind: 'refuse'; code: 'JOB_UNKNOWN' | 'JOB_HASH_MISMATCH'; message: string };

export interface StepIdentity {
  jobName: string;
  jobHash: string;
  op: string;
  placement?: PlacementNote;
}

/** Whether this worker's own copy of the job can run the step; the reason it cannot, if not. */
export function ownCopyProblem(
  jobs: ReadonlyMap<string, JobDefinition>,
  workerId: string,
  d: StepIdentity,
): { code: 'JOB_UNKNOWN' | 'JOB_HASH_MISMATCH'; message: string } | undefined {
  const job = jobs.get(d.jobName);
  if (!job) {
    const known = [...jobs.keys()].join(', ') || 'none';
    return {
      code: 'JOB_UNKNOWN',
      message: `worker ${workerId} does not know job "${d.jobName}" (it loaded: ${known}); start workers with --jobs pointing at that job file`,
    };
  }
  if (job.hash !== d.jobHash) {
    return {
      code: 'JOB_HASH_MISMATCH',
      message: `job "${d.jobName}" on worker ${workerId} (${job.sourcePath}) has definition hash ${job.hash.slice(0, 12)}, but the run was planned from ${d.jobHash.slice(0, 12)}: deploy the same job file to the coordinator and every worker`,
    };
  }
  if (!job.ops.has(d.op)) return { code: 'JOB_HASH_MISMATCH', message: `job "${d.jobName}" on worker ${workerId} has no op "${d.op}"` };
  return undefined;
}

/**
 * The decision for a step this worker cannot run itself: leave it while a live worker has the job
 * at the step's hash, or while none has for less than `waitMs`; refuse it after that.
 */
export function decidePlacement(
  problem: { code: 'JOB_UNKNOWN' | 'JOB_HASH_MISMATCH'; message: string },
  found: JobHashes,
  d: StepIdentity,
  now: number,
  waitMs: number,
): Placement {
  const leaves = (d.placement?.leaves ?? 0) + 1;
  const delayMs = Math.min(MAX_LEAVE_DELAY_MS, FIRST_LEAVE_DELAY_MS * 2 ** Math.min(leaves - 1, 8));
  const nobody = noLiveWorkerReason(found, d.jobHash);
  if (nobody === undefined) {
    const holders = found.byHash.get(d.jobHash)?.length ?? 0;
    return { kind: 'leave', delayMs, note: { leaves }, why: `left for the ${holders} live worker(s) that have job "${d.jobName}" at hash ${d.jobHash.slice(0, 8)}` };
  }
  const since = d.placement?.unplacedSince ?? now;
  if (now - since < waitMs) {
    const left = Math.ceil((waitMs - (now - since)) / 1000);
    return { kind: 'leave', delayMs, note: { leaves, unplacedSince: since }, why: `${nobody}; it fails in ${left} s unless one comes` };
  }
  return { kind: 'refuse', code: problem.code, message: `${problem.message} (${nobody}, for ${Math.round((now - since) / 1000)} s)` };
}

export interface PlacementOptions {
  redis: Redis;
  queue: string;
  /** The worker registry's key prefix. */
  prefix?: string;
  jobs: ReadonlyMap<string, JobDefinition>;
  workerId: string;
  waitMs?: number;
}

/** A worker's placement check: `run` at once (no Redis call) when its own copy matches. */
export function createPlacement(o: PlacementOptions): (d: StepIdentity) => Promise<Placement> {
  const waitMs = o.waitMs ?? DEFAULT_PLACEMENT_WAIT_MS;
  return async (d) => {
    const problem = ownCopyProblem(o.jobs, o.workerId, d);
    if (!problem) return { kind: 'run' };
    const found = await liveJobHashes(o.redis, o.queue, d.jobName, o.prefix);
    return decidePlacement(problem, found, d, Date.now(), waitMs);
  };
}
