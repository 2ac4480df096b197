/**
 * Poison steps: a step that kills whatever runs it. With process isolation most such deaths end
 * in the step process; this bounds the rest (the worker process itself dies): BullMQ hands a
 * stalled step out again until its stalled count passes `maxStalledCount`, then fails it.
 */

/** Deliveries of one attempt before it fails, when every worker that took it died. */
export const DEFAULT_MAX_DELIVERIES = 3;

/** BullMQ's `maxStalledCount` for at most `deliveries` deliveries (it fails on stall number count + 1). */
export function maxStalledCountFor(deliveries: number): number {
  return Math.max(0, deliveries - 1);
}

/** BullMQ's failedReason for a job that stalled more than maxStalledCount times. */
const STALLED_TOO_OFTEN = /stalled more than allowable limit/i;

/**
 * What to say about a step's queue entry that BullMQ failed: for a step that stalled too often,
 * "the worker running it died 3 times: …"; otherwise BullMQ's own reason.
 */
export function failedQueueJobReason(job: { failedReason?: string; stalledCounter?: number }): string {
  const reason = job.failedReason || 'BullMQ marked it failed';
  if (!STALLED_TOO_OFTEN.test(reason)) return reason;
  const times = job.stalledCounter ?? 0;
  return `the worker running it died ${times} time${times === 1 ? '' : 's'}: each worker stopped (killed, out of memory, or crashed) before the step reported, so it is not handed out again`;
}
