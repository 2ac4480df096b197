/**
 * Schedules in the job file (checked and located like every other key, not hashed), and the pure
 * tick calculator on a fake clock: catchup policies, DST days, run-config substitution.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dueTicks, isoInZone, nextTicks, substituteScheduled, type TickSchedule } from '../src/core/schedule-ticks.js';
import { InputError } from '../src/errors.js';
import { loadJob, parseJob } from '../src/job/load-job.js';

const OPS = `ops:
  extract: { fn: ./ops.mjs#extract }
  report: { fn: ./ops.mjs#report, ins: [extract] }
`;

const parse = (text: string) => parseJob(text, 'job.yaml', '/jobs');

function failure(text: string): InputError {
  try {
    parse(text);
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('expected the job to be refused');
}

describe('schedules in the job file', () => {
  it('reads a schedule with its defaults', () => {
    const job = parse(`name: j\n${OPS}schedules:\n  nightly:\n    cron: "0 2 * * *"\n`);
    expect(job.schedules?.get('nightly')).toEqual({
      name: 'nightly',
      cron: '0 2 * * *',
      timezone: 'UTC',
      tags: {},
      defaultStatus: 'stopped',
      catchup: 'latest',
      maxCatchup: 5,
    });
  });

  it('reads every field', () => {
    const job = parse(`name: j
${OPS}schedules:
  every2:
    cron: "*/2 * * * * *"
    timezone: Europe/Berlin
    run_config: { ops: { extract: { config: { day: "{{ scheduled_date }}" } } } }
    tags: { team: data }
    selection: ["*report"]
    status: running
    catchup: all
    max_catchup: 3
`);
    const s = job.schedules?.get('every2');
    expect(s).toMatchObject({ timezone: 'Europe/Berlin', tags: { team: 'data' }, selection: ['*report'], defaultStatus: 'running', catchup: 'all', maxCatchup: 3 });
    expect(s?.runConfig?.value).toEqual({ ops: { extract: { config: { day: '{{ scheduled_date }}' } } } });
    expect(s?.runConfig?.path).toEqual(['schedules', 'every2', 'run_config']);
  });

  it('names the file, line and path of a bad cron line, time zone, status and run config', () => {
    const e = failure(`name: j
${OPS}schedules:
  nightly:
    cron: "0 2 * *"
    timezone: Mars/Olympus
  other:
    cron: "61 * * * *"
    status: paused
    run_config: { ops: { nope: {} } }
`);
    const text = e.problems.map((p) => `${p.file}:${p.line} ${p.path}: ${p.message}`).join('\n');
    expect(text).toContain('job.yaml:8 schedules.nightly.timezone: unknown time zone "Mars/Olympus"');
    expect(text).toMatch(/job\.yaml:10 schedules\.other\.cron: invalid cron line "61 \* \* \* \*"/);
    expect(text).toContain('job.yaml:11 schedules.other.status: expected "running" or "stopped"');
    expect(text).toMatch(/job\.yaml:12 schedules\.other\.run_config\.ops\.nope/);
  });

  it('refuses a cron line of the wrong length, and a bad schedule name', () => {
    const e = failure(`name: j\n${OPS}schedules:\n  night-ly:\n    cron: "* * * *"\n`);
    const text = e.problems.map((p) => `${p.line} ${p.path}: ${p.message}`).join('\n');
    expect(text).toContain('expected a schedule name made of letters, digits and underscores');
    expect(text).toMatch(/7 schedules\.night-ly\.cron: invalid cron line "\* \* \* \*"/);
  });

  it('leaves schedules out of the definition hash', () => {
    const a = parse(`name: j\n${OPS}schedules:\n  s: { cron: "0 2 * * *" }\n`);
    const b = parse(`name: j\n${OPS}schedules:\n  s: { cron: "0 3 * * *", status: running }\n`);
    const c = parse(`name: j\n${OPS}`);
    expect(a.hash).toBe(b.hash);
    expect(a.hash).toBe(c.hash);
  });

  it("reads a schedule's run_config_file relative to the job file", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-schedules-'));
    writeFileSync(join(dir, 'job.yaml'), `name: j\n${OPS}schedules:\n  s: { cron: "0 2 * * *", run_config_file: nightly.yaml }\n`);
    writeFileSync(join(dir, 'nightly.yaml'), 'ops: { extract: { config: { n: 1 } } }\n');
    const job = await loadJob(join(dir, 'job.yaml'));
    expect(job.schedules?.get('s')?.runConfig?.value).toEqual({ ops: { extract: { config: { n: 1 } } } });
    writeFileSync(join(dir, 'nightly.yaml'), 'ops: { missing: {} }\n');
    await expect(loadJob(join(dir, 'job.yaml'))).rejects.toThrow(/nightly\.yaml.*ops\.missing/);
  });
});

const at = (iso: string) => new Date(iso);
const iso = (ds: Date[]) => ds.map((d) => d.toISOString());

describe('due ticks on a fake clock', () => {
  const every2: TickSchedule = { cron: '*/2 * * * * *', timezone: 'UTC', catchup: 'latest', maxCatchup: 5 };

  it('starts from now: nothing is due on the first evaluation', () => {
    const r = dueTicks(every2, undefined, at('2026-01-01T00:00:05Z'));
    expect(r.due).toEqual([]);
    expect(r.cursor.toISOString()).toBe('2026-01-01T00:00:05.000Z');
  });

  it('runs each tick once as the clock passes it', () => {
    const r1 = dueTicks(every2, at('2026-01-01T00:00:00Z'), at('2026-01-01T00:00:02Z'));
    expect(iso(r1.due)).toEqual(['2026-01-01T00:00:02.000Z']);
    const r2 = dueTicks(every2, r1.cursor, at('2026-01-01T00:00:03.500Z'));
    expect(r2.due).toEqual([]);
    const r3 = dueTicks(every2, r2.cursor, at('2026-01-01T00:00:04.100Z'));
    expect(iso(r3.due)).toEqual(['2026-01-01T00:00:04.000Z']);
  });

  it('after 10 missed ticks: latest runs one, all runs max_catchup, none runs nothing', () => {
    const from = at('2026-01-01T00:00:00Z');
    const now = at('2026-01-01T00:00:21Z');
    const latest = dueTicks(every2, from, now);
    expect(iso(latest.due)).toEqual(['2026-01-01T00:00:20.000Z']);
    expect(latest.skippedCount).toBe(9);
    const all = dueTicks({ ...every2, catchup: 'all' }, from, now);
    expect(iso(all.due)).toEqual(['12', '14', '16', '18', '20'].map((s) => `2026-01-01T00:00:${s}.000Z`));
    expect(all.skippedCount).toBe(5);
    const none = dueTicks({ ...every2, catchup: 'none' }, from, now);
    expect(none.due).toEqual([]);
    expect(none.skippedCount).toBe(10);
    // On time, none runs the tick.
    expect(iso(dueTicks({ ...every2, catchup: 'none' }, at('2026-01-01T00:00:19Z'), now).due)).toEqual(['2026-01-01T00:00:20.000Z']);
  });

  it('a 02:30 daily line in Europe/Berlin runs once on the spring-forward day, after the gap', () => {
    const daily: TickSchedule = { cron: '30 2 * * *', timezone: 'Europe/Berlin', catchup: 'all', maxCatchup: 10 };
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
    const r = dueTicks(daily, at('2026-03-28T12:00:00Z'), at('2026-03-29T12:00:00Z'));
    expect(iso(r.due)).toEqual(['2026-03-29T01:00:00.000Z']); // 03:00 CEST, just after the gap
    expect(isoInZone(r.due[0] as Date, 'Europe/Berlin')).toBe('2026-03-29T03:00:00+02:00');
  });

  it('a 02:30 daily line in Europe/Berlin runs once on the fall-back day', () => {
    const daily: TickSchedule = { cron: '30 2 * * *', timezone: 'Europe/Berlin', catchup: 'all', maxCatchup: 10 };
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    const r = dueTicks(daily, at('2026-10-24T12:00:00Z'), at('2026-10-25T12:00:00Z'));
    expect(iso(r.due)).toEqual(['2026-10-25T00:30:00.000Z']);
    // Evaluated every minute through the night, still once.
    let cursor = at('2026-10-24T23:00:00Z');
    const runs: Date[] = [];
    for (let t = cursor.getTime(); t <= at('2026-10-25T03:00:00Z').getTime(); t += 60_000) {
      const step = dueTicks(daily, cursor, new Date(t));
      runs.push(...step.due);
      cursor = step.cursor;
    }
    expect(iso(runs)).toEqual(['2026-10-25T00:30:00.000Z']);
  });

  it('previews the next ticks in the time zone', () => {
    const next = nextTicks({ cron: '0 9 * * 1', timezone: 'America/New_York' }, at('2026-03-01T00:00:00Z'), 2);
    expect(next.map((d) => isoInZone(d, 'America/New_York'))).toEqual(['2026-03-02T09:00:00-05:00', '2026-03-09T09:00:00-04:00']);
  });
});

describe('scheduled run config', () => {
  it('substitutes scheduled_time and scheduled_date in strings only, in the time zone', () => {
    const config = { ops: { extract: { config: { day: '{{ scheduled_date }}', at: 'at {{scheduled_time}}', n: 3, other: '{{ run_id }}' } } } };
    const out = substituteScheduled(config, at('2026-06-30T22:30:00Z'), 'Europe/Berlin');
    expect(out).toEqual({ ops: { extract: { config: { day: '2026-07-01', at: 'at 2026-07-01T00:30:00+02:00', n: 3, other: '{{ run_id }}' } } } });
    expect(substituteScheduled({ t: '{{ scheduled_time }}' }, at('2026-06-30T22:30:00Z'), 'UTC')).toEqual({ t: '2026-06-30T22:30:00Z' });
  });
});
