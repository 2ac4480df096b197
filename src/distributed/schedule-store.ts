/**
 * Schedule and sensor state in Redis (keys: keys.ts, all under `{schedules}` or `{sensors}`): the
 * Redis adapter of `TickStore` (src/automation/tick-store.ts). A tick is claimed with SET NX on
 * its own key before any run is made, so one serve, and only one, acts on each (schedule, tick
 * time); a sensor's run key is claimed with HSETNX, so it makes one run, ever.
 */
import type { Redis } from 'ioredis';
import type { ScheduleDefinition } from '../core/types.js';
import { TICK_RETENTION, type AutomationKind, type AutomationStores, type RunKeyClaim, type TickRecord, type TickStore } from '../automation/tick-store.js';
import { scheduleKeys } from './keys.js';

export { TICK_RETENTION, type TickRecord, type TickStatus } from '../automation/tick-store.js';

export const scheduleId = (job: string, s: Pick<ScheduleDefinition, 'name'>): string => `${job}/${s.name}`;

export function createRedisTickStore(redis: Redis, kind: AutomationKind, prefix?: string): TickStore {
  const k = scheduleKeys(prefix, kind);

  const write = async (r: TickRecord, mode: 'NX' | 'XX'): Promise<boolean> => {
    const key = k.tick(r.schedule, Date.parse(r.tickTime));
    const json = JSON.stringify(r);
    const ok = mode === 'NX' ? await redis.set(key, json, 'EX', TICK_RETENTION.ttlSeconds, 'NX') : await redis.set(key, json, 'KEEPTTL', 'XX');
    if (ok !== 'OK') return false;
    if (mode === 'NX') {
      await redis
        .multi()
        .zadd(k.ticks(r.schedule), Date.parse(r.tickTime), String(Date.parse(r.tickTime)))
        .zremrangebyrank(k.ticks(r.schedule), 0, -TICK_RETENTION.count - 1)
        .exec();
    }
    return true;
  };

  return {
    async statusOf(id) {
      const v = await redis.hget(k.status, id);
      return v === 'running' || v === 'stopped' ? v : undefined;
    },
    async setStatus(id, status, cursorOnStart) {
      const m = redis.multi().hset(k.status, id, status);
      if (status === 'running' && cursorOnStart !== undefined) m.hset(k.cursor, id, String(cursorOnStart));
      await m.exec();
    },
    async cursor(id) {
      return (await redis.hget(k.cursor, id)) ?? undefined;
    },
    async setCursor(id, value) {
      await redis.hset(k.cursor, id, String(value));
    },
    async lock(id, holder, ms) {
      return (await redis.set(k.lock(id), holder, 'PX', ms, 'NX')) === 'OK';
    },
    async unlock(id, holder) {
      if ((await redis.get(k.lock(id))) === holder) await redis.del(k.lock(id));
    },
    claim: (r) => write(r, 'NX'),
    update: (r) => write(r, 'XX'),
    async ticks(id, limit = 50) {
      const times = await redis.zrevrange(k.ticks(id), 0, limit - 1);
      if (times.length === 0) return [];
      const values = await redis.mget(times.map((t) => k.tick(id, Number(t))));
      return values.flatMap((v) => (v ? [JSON.parse(v) as TickRecord] : []));
    },
    async claimRunKey(id, runKey, runId, atMs) {
      const claim: RunKeyClaim = { runId, launched: false, at: atMs };
      if ((await redis.hsetnx(k.runKeys(id), runKey, JSON.stringify(claim))) === 1) return undefined;
      const held = await redis.hget(k.runKeys(id), runKey);
      return held ? (JSON.parse(held) as RunKeyClaim) : claim;
    },
    async markRunKeyLaunched(id, runKey, runId) {
      await redis
        .multi()
        .hset(k.runKeys(id), runKey, JSON.stringify({ runId, launched: true, at: Date.now() } satisfies RunKeyClaim))
        .hset(k.lastKey, id, runKey)
        .exec();
    },
    async lastRunKey(id) {
      return (await redis.hget(k.lastKey, id)) ?? undefined;
    },
  };
}

/** The schedule and sensor stores of this Redis. */
export function redisAutomationStores(redis: Redis, prefix?: string): AutomationStores {
  return { schedules: createRedisTickStore(redis, 'schedules', prefix), sensors: createRedisTickStore(redis, 'sensors', prefix), close: async () => {} };
}

/** The schedules' store in this Redis. */
export function createScheduleStore(redis: Redis, prefix?: string): TickStore {
  return createRedisTickStore(redis, 'schedules', prefix);
}

export type ScheduleStore = TickStore;
