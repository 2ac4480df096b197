/**
 * The job file's `schedules:`: cron lines that launch runs of the job. Checked when the job is
 * loaded, with problems located in the job file like every other key. Cron lines are read by
 * croner (5 fields, or 6 with seconds first), in an IANA time zone (default UTC).
 */
import * as z from 'zod';
import { cronOf } from '../core/schedule-ticks.js';
import type { JobDefinition, OpDefinition, ScheduleDefinition } from '../core/types.js';
import { entryRunConfig, launchFields, namedEntriesProblems, readEntryFiles } from './automation.js';
import type { RunConfigFileRef } from './job-run-config.js';
import { isPlainMap, type PathProblem } from './problem.js';

export const SCHEDULE_DEFAULTS = { timezone: 'UTC', status: 'stopped', catchup: 'latest', maxCatchup: 5 } as const;

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const CRON_HINT = 'e.g. "0 2 * * *" (minute hour day month weekday), or 6 fields with seconds first';

const cronSchema = z.string({ error: `expected a cron line, ${CRON_HINT}` }).superRefine((cron, ctx) => {
  try {
    cronOf({ cron, timezone: 'UTC' });
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).replace(/^CronPattern: /, '');
    ctx.addIssue({ code: 'custom', message: `invalid cron line ${JSON.stringify(cron)}: ${why}`, params: { hint: CRON_HINT } });
  }
});

const timezoneSchema = z.string({ error: 'expected an IANA time zone like "Europe/Berlin"' }).superRefine((tz, ctx) => {
  if (!isTimeZone(tz)) ctx.addIssue({ code: 'custom', message: `unknown time zone ${JSON.stringify(tz)}`, params: { hint: 'an IANA name like "UTC" or "Europe/Berlin"' } });
});

export const scheduleSchema = z.strictObject(
  {
    cron: cronSchema,
    timezone: timezoneSchema.optional(),
    ...launchFields,
    catchup: z.enum(['latest', 'all', 'none'], { error: 'expected "latest", "all" or "none"' }).optional(),
    max_catchup: z.int({ error: 'expected an integer >= 1' }).min(1, { error: 'expected an integer >= 1' }).optional(),
  },
  { error: 'expected a map defining the schedule (with cron)' },
);

const schedulesSchema = z.record(z.string(), scheduleSchema, { error: 'expected a map of schedule name -> schedule' });

export interface ParsedSchedules {
  schedules: Map<string, ScheduleDefinition>;
  /** Each schedule's `run_config_file:`, still to be read (`readScheduleFiles`). */
  files: Map<string, RunConfigFileRef>;
}

/** Problems of the job file's `schedules:` key, as paths in the job file. `ops` undefined: op names are not checked. */
export function scheduleProblems(doc: Record<string, unknown>, ops: ReadonlyMap<string, OpDefinition> | undefined): PathProblem[] {
  return namedEntriesProblems(doc, 'schedules', schedulesSchema, ops);
}

/** The schedules of a job file already checked by `scheduleProblems`. */
export function buildSchedules(doc: Record<string, unknown>, file: string, sourcePath: string, baseDir: string, text: string): ParsedSchedules {
  const schedules = new Map<string, ScheduleDefinition>();
  const files = new Map<string, RunConfigFileRef>();
  const raw = doc.schedules;
  if (!isPlainMap(raw)) return { schedules, files };
  for (const [name, value] of Object.entries(raw)) {
    const s = scheduleSchema.parse(value);
    const def: ScheduleDefinition = {
      name,
      cron: s.cron,
      timezone: s.timezone ?? SCHEDULE_DEFAULTS.timezone,
      tags: { ...s.tags },
      defaultStatus: s.status ?? SCHEDULE_DEFAULTS.status,
      catchup: s.catchup ?? SCHEDULE_DEFAULTS.catchup,
      maxCatchup: s.max_catchup ?? SCHEDULE_DEFAULTS.maxCatchup,
    };
    if (s.selection && s.selection.length > 0) def.selection = s.selection;
    const rc = entryRunConfig('schedules', name, s, { file, sourcePath, baseDir, text });
    if (rc.inline) def.runConfig = rc.inline;
    if (rc.file) files.set(name, rc.file);
    schedules.set(name, def);
  }
  return { schedules, files };
}

/** Reads each schedule's `run_config_file:` (checked against the job's ops). */
export function readScheduleFiles(parsed: ParsedSchedules, job: JobDefinition): void {
  readEntryFiles(parsed.files, parsed.schedules, job);
}
