/**
 * The schedules daemon inside `coordinator serve`: every interval, each running schedule of the
 * serve's jobs is evaluated (dueTicks), each due tick is claimed in Redis (one serve wins it),
 * and the winner submits the run through the instance — recorded QUEUED in serve's own Redis, so
 * the run queue starts it under the run-level limits, on the executor its run config names
 * (default: distributed). Missed ticks the catchup policy
 * passes over are recorded SKIPPED. Any number of serve processes may run this at once.
 */
import { hostname } from 'node:os';
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { dueTicks, isoInZone, substituteScheduled } from '../core/schedule-ticks.js';
import type { JobDefinition, JsonObject, ScheduleDefinition } from '../core/types.js';
import type { Instance } from '../instance/types.js';
import type { TickStore } from '../automation/tick-store.js';
import { createScheduleStore, scheduleId, type TickRecord } from './schedule-store.js';
import { submitOnce } from './submit-once.js';

export const SCHEDULE_TAGS = { schedule: 'baton/schedule', scheduledTime: 'baton/scheduled_time' } as const;

/** The run id of a tick: the same for every serve, so a tick is one run even across a crash. */
export function tickRunId(scheduleId: string, tick: Date): string {
  return `sched-${createHash('sha256').update(`${scheduleId}@${tick.getTime()}`).digest('hex').slice(0, 32)}`;
}

export interface SchedulerOptions {
  /** Where schedule state lives: `store`, else the schedules' store in `redis`. */
  redis?: Redis;
  store?: TickStore;
  instance: Instance;
  jobs: ReadonlyMap<string, JobDefinition>;
  logger: Logger;
  /** The clock (tests may pass their own). */
  now?: () => number;
  /** How long one serve may hold a schedule while evaluating it. */
  lockMs?: number;
  /** A tick still STARTED this long after its claim was left by a serve that stopped mid-tick. */
  staleTickMs?: number;
}

export interface Scheduler {
  /** Evaluates every running schedule once. Never throws: problems are logged and recorded as ticks. */
  evaluate(): Promise<void>;
}

export function createScheduler(o: SchedulerOptions): Scheduler {
  const store = o.store ?? (o.redis ? createScheduleStore(o.redis) : undefined);
  if (!store) throw new Error('createScheduler needs a store or a redis client');
  const holder = `serve:${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const now = o.now ?? Date.now;
  const lockMs = o.lockMs ?? 30_000;
  const staleMs = o.staleTickMs ?? 60_000;

  const record = (id: string, tick: Date, evaluatedAt: Date, fields: Pick<TickRecord, 'status'> & Partial<TickRecord>): TickRecord => ({
    schedule: id,
    evaluatedAt: evaluatedAt.toISOString(),
    tickTime: tick.toISOString(),
    runIds: [],
    at: new Date(now()).toISOString(),
    by: holder,
    ...fields,
  });

  /** Submits the run of a claimed tick under the tick's own run id, and records how it went. */
  const launchClaimed = async (job: JobDefinition, s: ScheduleDefinition, started: TickRecord): Promise<void> => {
    const tick = new Date(started.tickTime);
    const scheduledTime = isoInZone(tick, s.timezone);
    const runId = started.runIds[0] as string;
    try {
      const runConfig = s.runConfig ? substituteScheduled(s.runConfig.value, tick, s.timezone) : ({} as JsonObject);
      await submitOnce(o.instance, job, {
        runId,
        runConfig,
        tags: { ...s.tags, [SCHEDULE_TAGS.schedule]: s.name, [SCHEDULE_TAGS.scheduledTime]: scheduledTime },
        ...(s.selection ? { selection: s.selection } : {}),
      });
      await store.update({ ...started, status: 'SUCCESS', at: new Date(now()).toISOString() });
      o.logger.info({ schedule: started.schedule, tick: scheduledTime, runId }, 'scheduled run submitted');
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      await store.update({ ...started, status: 'FAILURE', runIds: [], error, at: new Date(now()).toISOString() });
      o.logger.error({ schedule: started.schedule, tick: scheduledTime, err: error }, 'could not submit a scheduled run');
    }
  };

  const launch = async (job: JobDefinition, s: ScheduleDefinition, id: string, tick: Date, evaluatedAt: Date): Promise<void> => {
    // The run id is chosen with the claim, so a serve that finishes a crashed claim makes the same run.
    const started = record(id, tick, evaluatedAt, { status: 'STARTED', runIds: [tickRunId(id, tick)] });
    if (!(await store.claim(started))) return; // another serve has this tick
    await launchClaimed(job, s, started);
  };

  /** Ticks a serve claimed and then stopped on (it died mid-tick): finished here, same run id. */
  const finishStale = async (job: JobDefinition, s: ScheduleDefinition, id: string): Promise<void> => {
    for (const t of await store.ticks(id, 20)) {
      if (t.status !== 'STARTED' || Date.parse(t.at) > now() - staleMs || t.runIds.length === 0) continue;
      o.logger.warn({ schedule: id, tick: t.tickTime, by: t.by }, 'finishing a tick whose serve stopped mid-tick');
      await launchClaimed(job, s, { ...t, by: holder });
    }
  };

  const evaluateOne = async (job: JobDefinition, s: ScheduleDefinition): Promise<void> => {
    const id = scheduleId(job.name, s);
    if (((await store.statusOf(id)) ?? s.defaultStatus) !== 'running') return;
    if (!(await store.lock(id, holder, lockMs))) return; // another serve is evaluating it
    try {
      await finishStale(job, s, id);
      const last = await store.cursor(id);
      const at = new Date(now());
      const r = dueTicks(s, last === undefined ? undefined : new Date(Number(last)), at);
      if (r.skippedCount > 0) {
        const reason = `missed while no serve evaluated the schedule (catchup: ${s.catchup}); ${r.skippedCount} tick(s) passed over`;
        for (const t of r.skipped) await store.claim(record(id, t, at, { status: 'SKIPPED', reason }));
        o.logger.warn({ schedule: id, skipped: r.skippedCount }, 'missed ticks skipped');
      }
      for (const t of r.due) await launch(job, s, id, t, at);
      await store.setCursor(id, r.cursor.getTime());
    } finally {
      await store.unlock(id, holder);
    }
  };

  return {
    async evaluate() {
      for (const job of o.jobs.values()) {
        for (const s of job.schedules?.values() ?? []) {
          try {
            await evaluateOne(job, s);
          } catch (e) {
            o.logger.warn({ schedule: scheduleId(job.name, s), err: e instanceof Error ? e.message : String(e) }, 'could not evaluate a schedule');
          }
        }
      }
    },
  };
}
