/**
 * The job file's `sensors:`: functions evaluated every `interval_seconds` that ask for runs, each
 * with a `run_key` (at most one run per key, ever). Checked when the job is loaded, with problems
 * located in the job file like every other key; the sensor's module must exist.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import * as z from 'zod';
import type { JobDefinition, OpDefinition, SensorDefinition } from '../core/types.js';
import { entryRunConfig, launchFields, namedEntriesProblems, readEntryFiles } from './automation.js';
import type { RunConfigFileRef } from './job-run-config.js';
import { fnSchema, parseFnRef } from './job-schema.js';
import { isPlainMap, type PathProblem } from './problem.js';

export const SENSOR_DEFAULTS = { intervalSeconds: 30, timeoutSeconds: 60, status: 'stopped' } as const;

const seconds = (what: string) => z.number({ error: `expected ${what}: a number of seconds > 0` }).positive({ error: `expected ${what}: a number of seconds > 0` });

export const sensorSchema = z.strictObject(
  {
    fn: fnSchema,
    description: z.string().optional(),
    interval_seconds: seconds('how often it is evaluated').optional(),
    timeout_seconds: seconds('how long one evaluation may take').optional(),
    ...launchFields,
  },
  { error: 'expected a map defining the sensor (with fn: ./sensors.mjs#name)' },
);

const sensorsSchema = z.record(z.string(), sensorSchema, { error: 'expected a map of sensor name -> sensor' });

export interface ParsedSensors {
  sensors: Map<string, SensorDefinition>;
  /** Each sensor's `run_config_file:`, still to be read (`readSensorFiles`). */
  files: Map<string, RunConfigFileRef>;
}

/** Problems of the job file's `sensors:` key, as paths in the job file (a module that is not there included). */
export function sensorProblems(doc: Record<string, unknown>, ops: ReadonlyMap<string, OpDefinition> | undefined, baseDir: string): PathProblem[] {
  const problems = namedEntriesProblems(doc, 'sensors', sensorsSchema, ops);
  const raw = doc.sensors;
  if (!isPlainMap(raw)) return problems;
  for (const [name, s] of Object.entries(raw)) {
    if (!isPlainMap(s) || typeof s.fn !== 'string' || !sensorSchema.shape.fn.safeParse(s.fn).success) continue;
    const { module } = parseFnRef(s.fn);
    if (!existsSync(resolve(baseDir, module))) {
      problems.push({ path: ['sensors', name, 'fn'], message: `no module ${JSON.stringify(module)} (looked for ${resolve(baseDir, module)})`, hint: 'a .mjs, .js or .ts file, relative to this job file' });
    }
  }
  return problems;
}

/** The sensors of a job file already checked by `sensorProblems`. */
export function buildSensors(doc: Record<string, unknown>, file: string, sourcePath: string, baseDir: string, text: string): ParsedSensors {
  const sensors = new Map<string, SensorDefinition>();
  const files = new Map<string, RunConfigFileRef>();
  const raw = doc.sensors;
  if (!isPlainMap(raw)) return { sensors, files };
  for (const [name, value] of Object.entries(raw)) {
    const s = sensorSchema.parse(value);
    const { module, exportName } = parseFnRef(s.fn);
    const def: SensorDefinition = {
      name,
      fn: { module: resolve(baseDir, module), exportName, ref: s.fn },
      intervalSeconds: s.interval_seconds ?? SENSOR_DEFAULTS.intervalSeconds,
      timeoutSeconds: s.timeout_seconds ?? SENSOR_DEFAULTS.timeoutSeconds,
      tags: { ...s.tags },
      defaultStatus: s.status ?? SENSOR_DEFAULTS.status,
    };
    if (s.selection && s.selection.length > 0) def.selection = s.selection;
    const rc = entryRunConfig('sensors', name, s, { file, sourcePath, baseDir, text });
    if (rc.inline) def.runConfig = rc.inline;
    if (rc.file) files.set(name, rc.file);
    sensors.set(name, def);
  }
  return { sensors, files };
}

/** Reads each sensor's `run_config_file:` (checked against the job's ops). */
export function readSensorFiles(parsed: ParsedSensors, job: JobDefinition): void {
  readEntryFiles(parsed.files, parsed.sensors, job);
}
