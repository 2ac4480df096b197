/**
 * Schedule state in Redis (keys: keys.ts, all under `{schedules}`): whether each schedule is
 * running (set by operators, not the file), the cursor up to which its ticks were evaluated, and
 * its tick history. A tick is claimed with SET NX on its own key before any run is made, so one
 * serve, and only one, acts on each (schedule, tick time).
 */
import type { Redis } from 'ioredis';
import type { ScheduleDefinition } from '../core/types.js';
import { scheduleKeys } from './keys.js';

export type TickStatus = 'STARTED' | 'SUCCESS' | 'SKIPPED' | 'FAILURE';

export interface TickRecord {
  /** `job/schedule` */
  schedule: string;
  /** ISO-8601 (UTC) of the tick. */
  tickTime: string;
  status: TickStatus;
  runIds: string[];
  /** SKIPPED: why. */
  reason?: string;
  /** FAILURE: what went wrong. */
  error?: string;
  /** ISO-8601 of the last change. */
  at: string;
  /** ISO-8601 of the evaluation that claimed it (ticks caught up together share it). */
  evaluatedAt: string;
  /** The serve that claimed it. */
  by: string;
}

/** Tick records kept per schedule, and how long a tick key lives. */
export const TICK_RETENTION = { count: 200, ttlSeconds: 7 * 24 * 3600 } as const;

export const scheduleId = (job: string, s: Pick<ScheduleDefinition, 'name'>): string => `${job}/${s.name}`;

export function createScheduleStore(redis: Redis, prefix?: string) {
  const k = scheduleKeys(prefix);

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
    /** The status set by an operator, if any. */
    async statusOf(id: string): Promise<'running' | 'stopped' | undefined> {
      const v = await redis.hget(k.status, id);
      return v === 'running' || v === 'stopped' ? v : undefined;
    },
    /** Starting evaluates from now on: ticks missed while stopped are not caught up. */
    async setStatus(id: string, status: 'running' | 'stopped', nowMs: number): Promise<void> {
      const m = redis.multi().hset(k.status, id, status);
      if (status === 'running') m.hset(k.cursor, id, String(nowMs));
      await m.exec();
    },
    async cursor(id: string): Promise<number | undefined> {
      const v = await redis.hget(k.cursor, id);
      return v === null ? undefined : Number(v);
    },
    async setCursor(id: string, ms: number): Promise<void> {
      await redis.hset(k.cursor, id, String(ms));
    },
    /** One serve evaluates a schedule at a time (a lease; the tick claims stay the guarantee). */
    async lock(id: string, holder: string, ms: number): Promise<boolean> {
      return (await redis.set(k.lock(id), holder, 'PX', ms, 'NX')) === 'OK';
    },
    async unlock(id: string, holder: string): Promise<void> {
      if ((await redis.get(k.lock(id))) === holder) await redis.del(k.lock(id));
    },
    /** Claims the tick: true for exactly one caller per (schedule, tick time). */
    claim: (r: TickRecord): Promise<boolean> => write(r, 'NX'),
    update: (r: TickRecord): Promise<boolean> => write(r, 'XX'),
    /** Newest first. */
    async ticks(id: string, limit = 50): Promise<TickRecord[]> {
      const times = await redis.zrevrange(k.ticks(id), 0, limit - 1);
      if (times.length === 0) return [];
      const values = await redis.mget(times.map((t) => k.tick(id, Number(t))));
      return values.flatMap((v) => (v ? [JSON.parse(v) as TickRecord] : []));
    },
  };
}

export type ScheduleStore = ReturnType<typeof createScheduleStore>;
