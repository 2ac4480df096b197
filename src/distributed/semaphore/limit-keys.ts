/**
 * Redis keys of the global tag-concurrency semaphore.
 *
 * Every key shares the hash tag `{limits}`, so in Redis Cluster they live in one slot and the
 * multi-limit acquire (one Lua call touching every bucket a step matches) is legal.
 *
 *   <prefix>:{limits}:defs              hash    spec -> limit (`database=redshift`, `database`, `team=*`)
 *   <prefix>:{limits}:used              hash    bucket -> slots in use (field removed at 0)
 *   <prefix>:{limits}:leases            zset    lease id -> deadline, Redis server time in ms
 *   <prefix>:{limits}:lease-data        hash    lease id -> JSON {buckets, runId, stepKey, attempt, holder, grantedAt}
 *   <prefix>:{limits}:waiters           zset    waiter id -> (1000 - priority) * 1e12 + seq (lowest first)
 *   <prefix>:{limits}:waiter-data       hash    waiter id -> JSON {tags, runLimits, runId, stepKey, attempt, holder, leaseTtl}
 *   <prefix>:{limits}:waiter-deadlines  zset    waiter id -> deadline, Redis server time in ms
 *   <prefix>:{limits}:seq               string  arrival counter (FIFO among equal priorities)
 *   <prefix>:{limits}:granted           channel `["<waiter id>", bucket...]` per admitted waiter
 *   <prefix>:{limits}:changed           channel the spec, whenever a limit is set or deleted
 *
 * Bucket names follow bucketsFor() in src/core/tag-limits.ts: `database=redshift`, `database`,
 * `team=*:<value>`; a run's own limits are prefixed `run:<runId>:`. A waiter's id becomes its
 * lease's id once admitted.
 */
import { DEFAULT_PREFIX } from '../keys.js';

export interface LimitKeys {
  defs: string;
  used: string;
  leases: string;
  leaseData: string;
  waiters: string;
  waiterData: string;
  waiterDeadlines: string;
  seq: string;
  grantedChannel: string;
  changedChannel: string;
}

/** `<prefix>:{limits}` — the shared part of every semaphore key. */
export function limitsKeyBase(prefix: string = DEFAULT_PREFIX): string {
  return `${prefix}:{limits}`;
}

export function limitKeys(prefix: string = DEFAULT_PREFIX): LimitKeys {
  const base = limitsKeyBase(prefix);
  return {
    defs: `${base}:defs`,
    used: `${base}:used`,
    leases: `${base}:leases`,
    leaseData: `${base}:lease-data`,
    waiters: `${base}:waiters`,
    waiterData: `${base}:waiter-data`,
    waiterDeadlines: `${base}:waiter-deadlines`,
    seq: `${base}:seq`,
    grantedChannel: `${base}:granted`,
    changedChannel: `${base}:changed`,
  };
}

/** KEYS[1..8] of every semaphore script, in the order src/distributed/lua/includes/keys.lua expects. */
export function scriptKeys(k: LimitKeys): string[] {
  return [k.defs, k.used, k.leases, k.leaseData, k.waiters, k.waiterData, k.waiterDeadlines, k.seq];
}

/** The bucket of a run-scoped limit (`tag_concurrency_limits` in the run config). */
export function runBucket(runId: string, bucket: string): string {
  return `run:${runId}:${bucket}`;
}
