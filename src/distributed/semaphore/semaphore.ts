/**
 * Redis-backed semaphores enforcing tag concurrency limits across every run and worker.
 *
 * A step matching limits takes one slot in each, all at once in one Lua call, so steps
 * needing the same limits in any order cannot deadlock. Waiters are admitted by priority,
 * then first come first served, across all clients. Admission is pushed: whoever frees a slot
 * (release, limit change, expiry) runs the grant pass in the same script and PUBLISHes the
 * admitted ids; each instance has one subscriber connection.
 *
 * Slots are leases renewed by their holder every leaseTtl/3. A process that dies stops
 * renewing; the next script call from anyone (at the latest the sweep every sweepInterval
 * of any live instance) expires the lease, using Redis server time. Bound: a slot held by a
 * dead process returns within leaseTtl + sweepInterval. Waiters expire the same way (within
 * waiterTtl + sweepInterval), so a dead coordinator's queued steps stop blocking others.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Redis } from 'ioredis';
import type { TagConcurrencyLimit, Tags } from '../../core/types.js';
import { createRedis } from '../connection.js';
import { DEFAULT_PREFIX } from '../keys.js';
import { type LimitKeys, limitKeys } from './limit-keys.js';
import {
  acquireCall,
  claimCall,
  releaseCall,
  releaseTakeCall,
  renewCall,
  sweepCall,
  type Handoff,
  type WaiterPayload,
  type WaiterStatus,
} from './slot-calls.js';
import { closeConnection, positiveMs, repeat } from './support.js';

export type { Handoff, RenewResult } from './slot-calls.js';

export interface SlotRequest {
  runId: string;
  stepKey: string;
  attempt: number;
  tags: Tags;
  /** Higher first; clamped to -1000..1000. */
  priority: number;
  /** The run's own `tag_concurrency_limits`, scoped to this run (buckets `run:<runId>:...`). */
  runLimits: readonly TagConcurrencyLimit[];
  /** The waiter's id, which becomes the lease id; default a random UUID. */
  id?: string;
  /** The step's queue job, for a worker that frees a slot to enqueue it at once (releaseAndTake). */
  handoff?: Handoff;
}

/** `buckets` is empty when no limit matched: then there is nothing to release or claim. */
export interface Lease {
  id: string;
  buckets: string[];
}

export interface SemaphoreOptions {
  redisUrl: string;
  prefix?: string;
  /** Who renews this instance's leases; default `<hostname>:<pid>:<random>`. */
  holder?: string;
  leaseTtlMs?: number;
  waiterTtlMs?: number;
  sweepIntervalMs?: number;
}

export interface Semaphore {
  /** Resolves once the step holds a slot in every limit it matches; rejects (and removes the waiter) if signal aborts. The lease is then auto-renewed by this instance until released, or until a renew says held-by-other. */
  acquire(req: SlotRequest, signal?: AbortSignal): Promise<Lease>;
  /** Worker side: take over a lease acquired elsewhere; auto-renews it from then on. false if it no longer exists. */
  claim(leaseId: string): Promise<boolean>;
  /** Idempotent; returns slots and runs the grant pass (one script call for many ids). */
  release(leaseIds: readonly string[]): Promise<void>;
  /**
   * A worker's release: the steps it admits whose handoff names `queue` are made out to this
   * instance (which renews them until a worker claims them) and their jobs returned, for the
   * caller to enqueue.
   */
  releaseAndTake(leaseIds: readonly string[], queue: string): Promise<Array<{ leaseId: string; job: string }>>;
  /** True if some global limit is defined (cached; refreshed on the `changed` channel and each sweep); true until first known. */
  hasGlobalLimits(): boolean;
  /** Subscribed and the defined limits known: from then on `hasGlobalLimits` is accurate. */
  ready(): Promise<void>;
  /** Stops timers, withdraws queued waiters, closes its connections; does NOT release held leases. */
  close(): Promise<void>;
}

export const DEFAULT_LEASE_TTL_MS = 10_000;
export const DEFAULT_WAITER_TTL_MS = 10_000;
export const DEFAULT_SWEEP_INTERVAL_MS = 2_000;

export function createSemaphore(o: SemaphoreOptions): Semaphore {
  return new RedisSemaphore(o);
}

export function clampPriority(p: number): number {
  return Number.isFinite(p) ? Math.max(-1000, Math.min(1000, Math.trunc(p))) : 0;
}

interface Waiter {
  id: string;
  priority: number;
  payload: WaiterPayload;
  /** Redis answered the acquire call: it knows this waiter (until it expires). */
  queued: boolean;
  resolve(lease: Lease): void;
  reject(err: unknown): void;
  detach(): void;
}

class RedisSemaphore implements Semaphore {
  private readonly redis: Redis;
  private readonly sub: Redis;
  private readonly keys: LimitKeys;
  private readonly holder: string;
  private readonly leaseTtl: number;
  private readonly waiterTtl: number;
  private readonly waiting = new Map<string, Waiter>();
  private readonly held = new Set<string>();
  private readonly readiness: Promise<void>;
  private readonly timers: NodeJS.Timeout[] = [];
  private globalLimits: boolean | undefined;
  private closed = false;

  constructor(o: SemaphoreOptions) {
    this.leaseTtl = positiveMs('leaseTtlMs', o.leaseTtlMs, DEFAULT_LEASE_TTL_MS);
    this.waiterTtl = positiveMs('waiterTtlMs', o.waiterTtlMs, DEFAULT_WAITER_TTL_MS);
    const sweepMs = positiveMs('sweepIntervalMs', o.sweepIntervalMs, DEFAULT_SWEEP_INTERVAL_MS);
    this.keys = limitKeys(o.prefix ?? DEFAULT_PREFIX);
    this.holder = o.holder ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    // Connection errors surface as failed commands; the timers simply retry on their next tick.
    this.redis = createRedis(o.redisUrl, { onError: () => {} });
    this.sub = createRedis(o.redisUrl, { role: 'blocking', onError: () => {} });
    this.sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
    this.readiness = this.sub.subscribe(this.keys.grantedChannel, this.keys.changedChannel).then(() => this.refreshDefs());
    this.readiness.catch(() => {});
    const heartbeatMs = Math.max(20, Math.floor(Math.min(this.leaseTtl, this.waiterTtl) / 3));
    this.timers.push(repeat(heartbeatMs, () => this.heartbeat()), repeat(sweepMs, () => this.sweep()));
  }

  acquire(req: SlotRequest, signal?: AbortSignal): Promise<Lease> {
    if (this.closed) return Promise.reject(new Error('the semaphore is closed'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = req.id ?? randomUUID();
    return new Promise<Lease>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.waiting.get(id) !== w) return;
        this.waiting.delete(id);
        reject(signal?.reason);
        // Also returns the slots if the waiter was admitted while the abort was under way.
        void this.forget([id]);
      };
      const w: Waiter = {
        id,
        priority: clampPriority(req.priority),
        payload: {
          tags: req.tags,
          runLimits: [...req.runLimits],
          runId: req.runId,
          stepKey: req.stepKey,
          attempt: req.attempt,
          holder: this.holder,
          leaseTtl: this.leaseTtl,
          ...(req.handoff ? { handoff: req.handoff } : {}),
        },
        queued: false,
        resolve,
        reject,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      this.waiting.set(id, w);
      signal?.addEventListener('abort', onAbort, { once: true });
      void this.enqueue(w);
    });
  }

  async claim(leaseId: string): Promise<boolean> {
    const ok = await claimCall(this.redis, this.keys, leaseId, this.holder, this.leaseTtl);
    if (ok && !this.closed) this.held.add(leaseId);
    return ok;
  }

  async release(leaseIds: readonly string[]): Promise<void> {
    const ids = this.dropHeld(leaseIds);
    if (ids.length > 0) await releaseCall(this.redis, this.keys, ids);
  }

  async releaseAndTake(leaseIds: readonly string[], queue: string): Promise<Array<{ leaseId: string; job: string }>> {
    const ids = this.dropHeld(leaseIds);
    if (ids.length === 0) return [];
    const taken = await releaseTakeCall(this.redis, this.keys, ids, { holder: this.holder, queue, leaseTtlMs: this.leaseTtl });
    if (!this.closed) for (const t of taken) this.held.add(t.leaseId);
    return taken;
  }

  private dropHeld(leaseIds: readonly string[]): string[] {
    const ids = leaseIds.filter((id) => id.length > 0);
    for (const id of ids) this.held.delete(id);
    return ids;
  }

  hasGlobalLimits(): boolean {
    return this.globalLimits ?? true;
  }

  async ready(): Promise<void> {
    await this.readiness;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    const pending = [...this.waiting.values()];
    this.waiting.clear();
    this.held.clear();
    for (const w of pending) {
      w.detach();
      w.reject(new Error('the semaphore was closed while the step waited for a slot'));
    }
    if (pending.length > 0 && this.redis.status === 'ready') await this.forget(pending.map((w) => w.id));
    await Promise.all([closeConnection(this.redis), closeConnection(this.sub)]);
  }

  /** Sends (or re-sends, after expiry) the waiter; idempotent per id on the Redis side. */
  private async enqueue(w: Waiter): Promise<void> {
    try {
      await this.readiness;
      if (this.waiting.get(w.id) !== w) return;
      const buckets = await acquireCall(this.redis, this.keys, w.id, w.priority, this.waiterTtl, w.payload);
      if (buckets) this.admit(w.id, buckets);
      else w.queued = true;
    } catch (err) {
      if (this.waiting.get(w.id) !== w) return;
      this.waiting.delete(w.id);
      w.detach();
      w.reject(err);
      void this.forget([w.id]); // the call may have run even though its reply was lost
    }
  }

  private admit(id: string, buckets: string[]): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    w.detach();
    if (buckets.length > 0 && !this.closed) this.held.add(id);
    w.resolve({ id, buckets });
  }

  private onMessage(channel: string, message: string): void {
    if (channel === this.keys.changedChannel) {
      void this.refreshDefs();
      return;
    }
    if (channel !== this.keys.grantedChannel) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    if (!Array.isArray(parsed) || typeof parsed[0] !== 'string') return;
    if (this.waiting.has(parsed[0])) this.admit(parsed[0], parsed.slice(1).map(String));
  }

  /** What the heartbeat or the sweep learnt about a queued waiter of ours. */
  private onStatus(w: Waiter, status: WaiterStatus | undefined): void {
    if (!status || this.waiting.get(w.id) !== w) return;
    if (status.state === 'granted') this.admit(w.id, status.buckets);
    else if (status.state === 'missing') {
      // Expired (e.g. this process stalled past waiterTtl) or admitted with no buckets and the
      // message was lost: queue it again; the acquire call answers both cases.
      w.queued = false;
      void this.enqueue(w);
    }
  }

  private queuedWaiters(): Waiter[] {
    return [...this.waiting.values()].filter((w) => w.queued);
  }

  /** Renews held leases (dropping those now missing or claimed by another) and queued waiters. */
  private async heartbeat(): Promise<void> {
    const leaseIds = [...this.held];
    const waiters = this.queuedWaiters();
    if (leaseIds.length === 0 && waiters.length === 0) return;
    const reply = await renewCall(this.redis, this.keys, {
      holder: this.holder,
      leaseTtlMs: this.leaseTtl,
      waiterTtlMs: this.waiterTtl,
      leaseIds,
      waiterIds: waiters.map((w) => w.id),
    });
    leaseIds.forEach((id, i) => {
      if (reply.leases[i] !== 'renewed') this.held.delete(id);
    });
    waiters.forEach((w, i) => this.onStatus(w, reply.waiters[i]));
  }

  /** Safety net: expiry and grant pass for everyone, plus our waiters in case a message was lost. */
  private async sweep(): Promise<void> {
    const waiters = this.queuedWaiters();
    const reply = await sweepCall(this.redis, this.keys, waiters.map((w) => w.id));
    this.globalLimits = reply.globalLimits > 0;
    waiters.forEach((w, i) => this.onStatus(w, reply.waiters[i]));
  }

  private async refreshDefs(): Promise<void> {
    try {
      this.globalLimits = (await this.redis.hlen(this.keys.defs)) > 0;
    } catch {
      // Next sweep refreshes it.
    }
  }

  private async forget(ids: string[]): Promise<void> {
    try {
      await releaseCall(this.redis, this.keys, ids);
    } catch {
      // Unreachable Redis: the waiter or lease expires on its own within its TTL.
    }
  }
}
