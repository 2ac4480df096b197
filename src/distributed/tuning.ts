/**
 * Timing knobs of the distributed executor, shared by coordinators and workers. The defaults
 * bound recovery: a killed worker's step is re-queued within about lock + stalled interval
 * (≈10 s), and a slot held by a dead process returns within slot lease + sweep (≈12 s).
 * Environment variables override them (tests use short values instead of long sleeps).
 */
export interface DistributedTuning {
  /** Semaphore lease TTL; renewed every third of it by its holder. */
  slotLeaseMs: number;
  /** How often each process expires dead leases and re-runs admission, as a safety net. */
  slotSweepMs: number;
  /** A coordinator's lease on the run it drives; `resume` can adopt a run this long after its coordinator died. */
  runLeaseMs: number;
}

export function distributedTuning(env: NodeJS.ProcessEnv = process.env): DistributedTuning {
  return {
    slotLeaseMs: positive(env.BATON_SLOT_LEASE_MS, 10_000),
    slotSweepMs: positive(env.BATON_SLOT_SWEEP_MS, 2_000),
    runLeaseMs: positive(env.BATON_RUN_LEASE_MS, 10_000),
  };
}

function positive(raw: string | undefined, fallback: number): number {
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/**
 * `coordinator serve`: how often it looks for orphaned runs, how many of the newest runs, how many
 * it drives at once (adopted and started from the run queue, each), how often it evaluates
 * schedules and looks at the run queue; a run taken from the queue by a serve that died before
 * starting it returns to the queue after `queueStaleMs`, and a QUEUED run missing from the queue
 * (its submitter died) is entered after `queueLostMs`.
 */
export const SERVE_DEFAULTS = {
  intervalMs: 5000,
  scanLimit: 1000,
  maxRuns: 16,
  scheduleIntervalMs: 1000,
  queueIntervalMs: 1000,
  queueStaleMs: 30_000,
  queueLostMs: 10_000,
};
