/**
 * Which ticks of a schedule are due: pure, no I/O, the clock is an argument. Cron lines are read
 * by croner in the schedule's time zone, which handles DST: a 02:30 daily line runs once on a
 * spring-forward day (just after the gap) and once on a fall-back day (the first 02:30).
 */
import { Cron } from 'croner';
import type { CatchupPolicy, Json } from './types.js';

export interface TickSchedule {
  cron: string;
  timezone: string;
  catchup: CatchupPolicy;
  maxCatchup: number;
}

export interface DueTicks {
  /** Tick times to launch a run for, oldest first. */
  due: Date[];
  /** Tick times passed over (missed while no serve ran, beyond the catchup policy), oldest first, at most `MAX_REPORTED_MISSED`. */
  skipped: Date[];
  /** How many ticks were passed over in all (may exceed `skipped.length`). */
  skippedCount: number;
  /** Evaluate from here next time. */
  cursor: Date;
}

/** Ticks looked at in one evaluation at most (a 1-second line missed for a day is 86,400). */
const MAX_SCAN = 100_000;
export const MAX_REPORTED_MISSED = 20;

export function cronOf(s: Pick<TickSchedule, 'cron' | 'timezone'>): Cron {
  return new Cron(s.cron, { timezone: s.timezone, paused: true, mode: '5-or-6-parts' });
}

/**
 * The ticks in (`last`, `now`]. `last` undefined (never evaluated, or just started): nothing is
 * due, the cursor starts at `now`. A tick is on time when no later tick has also passed; missed
 * ticks (all but the newest) run as the catchup policy says: `latest` runs only the newest,
 * `all` the newest `maxCatchup`, `none` only an on-time newest tick within `graceMs` of `now`.
 */
export function dueTicks(s: TickSchedule, last: Date | undefined, now: Date, graceMs = 60_000): DueTicks {
  if (!last || last >= now) return { due: [], skipped: [], skippedCount: 0, cursor: last && last > now ? last : now };
  const cron = cronOf(s);
  const passed: Date[] = [];
  let count = 0;
  for (let t = cron.nextRun(last); t && t <= now && count < MAX_SCAN; t = cron.nextRun(t)) {
    count++;
    passed.push(t);
    if (passed.length > MAX_REPORTED_MISSED + s.maxCatchup) passed.shift();
  }
  const keep = s.catchup === 'all' ? s.maxCatchup : s.catchup === 'latest' ? 1 : onTime(passed, count, now, graceMs);
  const due = keep > 0 ? passed.slice(-keep) : [];
  const skipped = passed.slice(0, passed.length - due.length).slice(-MAX_REPORTED_MISSED);
  return { due, skipped, skippedCount: count - due.length, cursor: now };
}

function onTime(passed: Date[], count: number, now: Date, graceMs: number): number {
  const newest = passed[passed.length - 1];
  return count === 1 && newest && now.getTime() - newest.getTime() <= graceMs ? 1 : 0;
}

/** The next `count` tick times after `from`. */
export function nextTicks(s: Pick<TickSchedule, 'cron' | 'timezone'>, from: Date, count: number): Date[] {
  return cronOf(s).nextRuns(count, from);
}

/** `2026-03-29T03:00:00+02:00`: the instant as wall time in `timezone`, with its offset. */
export function isoInZone(at: Date, timezone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: timezone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'longOffset',
  }).formatToParts(at);
  const p = (type: string) => parts.find((x) => x.type === type)?.value ?? '';
  const gmt = p('timeZoneName').replace('GMT', '');
  const offset = gmt === '' ? '+00:00' : gmt;
  return `${p('year')}-${p('month')}-${p('day')}T${p('hour')}:${p('minute')}:${p('second')}${offset === '+00:00' ? 'Z' : offset}`;
}

const TEMPLATE = /\{\{\s*(scheduled_time|scheduled_date)\s*\}\}/g;

/** `{{ scheduled_time }}` / `{{ scheduled_date }}` replaced in every string of a run config; nothing else is templated. */
export function substituteScheduled<T extends Json>(value: T, at: Date, timezone: string): T {
  const time = isoInZone(at, timezone);
  const date = time.slice(0, 10);
  const walk = (v: Json): Json => {
    if (typeof v === 'string') return v.replace(TEMPLATE, (_m, name: string) => (name === 'scheduled_time' ? time : date));
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const out: { [k: string]: Json } = {};
      for (const [k, x] of Object.entries(v)) Object.defineProperty(out, k, { value: walk(x), enumerable: true, writable: true, configurable: true });
      return out;
    }
    return v;
  };
  return walk(value) as T;
}
