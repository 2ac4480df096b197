/** The global limits as the runs API shows them: holders with run and step, waiters in admission order with what blocks them. */
import type { Redis } from 'ioredis';
import { bucketsFor } from '../../core/tag-limits.js';
import type { Tags } from '../../core/types.js';
import { DEFAULT_PREFIX } from '../../distributed/keys.js';
import { limitKeys } from '../../distributed/semaphore/limit-keys.js';
import { listLimits, parseLimitSpec } from '../../distributed/semaphore/limits-admin.js';
import type { LimitInfo } from '../types.js';

interface WaiterData {
  tags?: Tags;
  runId?: string;
  stepKey?: string;
  attempt?: number;
}

export async function limitInfos(redis: Redis, prefix: string = DEFAULT_PREFIX): Promise<LimitInfo[]> {
  const views = await listLimits(redis, prefix); // expires dead leases and waiters first
  const k = limitKeys(prefix);
  const order = await redis.zrange(k.waiters, 0, -1);
  const data = order.length > 0 ? await redis.hmget(k.waiterData, ...order) : [];
  const waiters = data.flatMap((json) => (json ? [JSON.parse(json) as WaiterData] : []));
  // A limit blocks a waiter when the waiter counts against it and every slot of its bucket is taken.
  const usedBy = new Map<string, number>();
  for (const v of views) {
    if (v.byValue) for (const [value, n] of Object.entries(v.byValue)) usedBy.set(`${v.key}=*:${value}`, n);
    else usedBy.set(v.spec, v.inUse);
  }
  return views.map((v) => {
    const limit = { ...parseLimitSpec(v.spec), limit: v.limit };
    const blocked = waiters.filter((w) => bucketsFor(w.tags ?? {}, [limit]).length > 0);
    return {
      spec: v.spec,
      limit: v.limit,
      inUse: v.inUse,
      holders: v.holders.map((h) => ({ runId: h.runId, stepKey: h.stepKey, attempt: h.attempt })),
      waiters: blocked.map((w) => ({
        runId: w.runId ?? '',
        stepKey: w.stepKey ?? '',
        attempt: w.attempt ?? 0,
        blockedBy: views
          .filter((other) => {
            const buckets = bucketsFor(w.tags ?? {}, [{ ...parseLimitSpec(other.spec), limit: other.limit }]);
            return buckets.some((b) => (usedBy.get(b.name) ?? 0) >= b.limit);
          })
          .map((other) => other.spec),
      })),
    };
  });
}
