/** Typed wrappers over the slot scripts: one EVALSHA each. The Semaphore builds on these. */
import type { Redis } from 'ioredis';
import type { LimitKeys } from './limit-keys.js';
import { runScript } from './scripts.js';

export type RenewResult = 'renewed' | 'missing' | 'held-by-other';

/** A waiter as seen by its owner: still queued, admitted (with its buckets), or gone. */
export type WaiterStatus = { state: 'waiting' } | { state: 'granted'; buckets: string[] } | { state: 'missing' };

/**
 * Serialised in this field order: the grant pass reads tags, runLimits and runId as one prefix of
 * the JSON, before `"stepKey"` (match_signature in lua/includes/match.lua).
 */
export interface WaiterPayload {
  tags: Record<string, string>;
  runLimits: unknown[];
  runId: string;
  stepKey: string;
  attempt: number;
  holder: string;
  leaseTtl: number;
  /** How a worker freeing a slot may enqueue this step itself once admitted (see release-take). */
  handoff?: Handoff;
}

/** A step's BullMQ job, ready to add: `job` is a StepQueueJob (step-message.ts) as JSON. */
export interface Handoff {
  queue: string;
  job: string;
}

/** The waiter JSON, fields in the order the grant pass relies on whatever order `p` has. */
export function waiterJson(p: WaiterPayload): string {
  const { tags, runLimits, runId, stepKey, attempt, holder, leaseTtl, handoff } = p;
  return JSON.stringify({ tags, runLimits, runId, stepKey, attempt, holder, leaseTtl, handoff });
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : [];
}

function parseStatus(raw: unknown): WaiterStatus {
  if (raw === 'waiting') return { state: 'waiting' };
  if (typeof raw === 'string' && raw.startsWith('{')) {
    const data = JSON.parse(raw) as { buckets?: unknown };
    return { state: 'granted', buckets: strings(data.buckets) };
  }
  return { state: 'missing' };
}

/** Adds the waiter and runs the grant pass: buckets when admitted at once, null when queued. */
export async function acquireCall(
  redis: Redis,
  k: LimitKeys,
  id: string,
  priority: number,
  waiterTtlMs: number,
  payload: WaiterPayload,
): Promise<string[] | null> {
  const reply = (await runScript(redis, k, 'acquire', [k.grantedChannel, id, priority, waiterTtlMs, waiterJson(payload)])) as unknown[];
  return reply[0] === 1 ? strings(reply.slice(1)) : null;
}

export async function releaseCall(redis: Redis, k: LimitKeys, ids: readonly string[]): Promise<number> {
  return (await runScript(redis, k, 'release', [k.grantedChannel, ...ids])) as number;
}

/**
 * A worker's release at the end of a step: also makes out to `holder` the leases of steps it
 * admits whose handoff names `queue`, and returns those steps' jobs for the caller to enqueue.
 */
export async function releaseTakeCall(
  redis: Redis,
  k: LimitKeys,
  ids: readonly string[],
  taker: { holder: string; queue: string; leaseTtlMs: number },
): Promise<Array<{ leaseId: string; job: string }>> {
  const reply = (await runScript(redis, k, 'releaseTake', [k.grantedChannel, taker.holder, taker.queue, taker.leaseTtlMs, ...ids])) as unknown[];
  const taken: Array<{ leaseId: string; job: string }> = [];
  for (let i = 1; i + 1 < reply.length; i += 2) taken.push({ leaseId: String(reply[i]), job: String(reply[i + 1]) });
  return taken;
}

/** Every slot and queued waiter of one run. */
export async function releaseRunCall(redis: Redis, k: LimitKeys, runId: string): Promise<number> {
  return (await runScript(redis, k, 'releaseRun', [k.grantedChannel, runId])) as number;
}

export async function claimCall(redis: Redis, k: LimitKeys, leaseId: string, holder: string, leaseTtlMs: number): Promise<boolean> {
  return (await runScript(redis, k, 'claim', [k.grantedChannel, leaseId, holder, leaseTtlMs])) === 1;
}

export interface RenewReply {
  leases: RenewResult[];
  waiters: WaiterStatus[];
}

/** Extends `holder`'s leases (only those it still holds) and waiters, in one call. */
export async function renewCall(
  redis: Redis,
  k: LimitKeys,
  o: { holder: string; leaseTtlMs: number; waiterTtlMs: number; leaseIds: readonly string[]; waiterIds?: readonly string[] },
): Promise<RenewReply> {
  const waiterIds = o.waiterIds ?? [];
  const args = [k.grantedChannel, o.holder, o.leaseTtlMs, o.waiterTtlMs, o.leaseIds.length, ...o.leaseIds, ...waiterIds];
  const reply = strings(await runScript(redis, k, 'renew', args));
  return {
    leases: reply.slice(0, o.leaseIds.length) as RenewResult[],
    waiters: reply.slice(o.leaseIds.length).map(parseStatus),
  };
}

/** Expire + grant pass; reports whether global limits exist and the status of `waiterIds`. */
export async function sweepCall(
  redis: Redis,
  k: LimitKeys,
  waiterIds: readonly string[],
): Promise<{ globalLimits: number; waiters: WaiterStatus[] }> {
  const reply = (await runScript(redis, k, 'sweep', [k.grantedChannel, ...waiterIds])) as unknown[];
  return { globalLimits: Number(reply[0]), waiters: reply.slice(1).map(parseStatus) };
}
