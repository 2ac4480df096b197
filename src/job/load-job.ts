/** Loads a job file (job.yaml) into a validated, normalised `JobDefinition`. */
import { createHash } from 'node:crypto';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import type { JobDefinition, OpDefinition } from '../core/types.js';
import { InputError } from '../errors.js';
import { buildOps } from './build-ops.js';
import { canonicalJson } from './canonical-json.js';
import { findCycles } from './find-cycle.js';
import {
  inlineRunConfig,
  ownRunConfigProblems,
  readRunConfigFile,
  readRunConfigFileSync,
  runConfigFileRef,
  type RunConfigFileRef,
} from './job-run-config.js';
import { jobSchema } from './job-schema.js';
import { locateProblems } from './locate.js';
import { capProblems, isPlainMap, type PathProblem, type PathSeg } from './problem.js';
import { parseYaml, readTextFile } from './read-yaml.js';
import { buildSchedules, readScheduleFiles, scheduleProblems, type ParsedSchedules } from './schedules.js';
import { buildSensors, readSensorFiles, sensorProblems, type ParsedSensors } from './sensors.js';
import { errorMap, issuesToProblems } from './zod-problems.js';

/** Reads, validates and normalises a job file (and its `run_config_file`). Throws `InputError` listing every problem. */
export async function loadJob(path: string): Promise<JobDefinition> {
  const text = await readTextFile(path);
  const sourcePath = resolve(path);
  const { job, runConfigFile, schedules, sensors } = parseJobText(text, path, dirname(sourcePath), sourcePath);
  if (runConfigFile) job.runConfig = await readRunConfigFile(runConfigFile, job);
  readScheduleFiles(schedules, job);
  readSensorFiles(sensors, job);
  return job;
}

/**
 * A job from text: `file` names it in problems, relative module paths resolve against `baseDir`.
 * `sourcePath` is `file` if absolute, else `baseDir/<basename of file>`.
 */
export function parseJob(text: string, file: string, baseDir: string): JobDefinition {
  const dir = resolve(baseDir);
  const { job, runConfigFile, schedules, sensors } = parseJobText(text, file, dir, isAbsolute(file) ? file : resolve(dir, basename(file)));
  if (runConfigFile) job.runConfig = readRunConfigFileSync(runConfigFile, job);
  readScheduleFiles(schedules, job);
  readSensorFiles(sensors, job);
  return job;
}

const EMPTY_JOB_HINT = 'e.g. name: my_job, then ops: { hello: { fn: ./ops.mjs#hello } }';

function duplicateMessage(path: PathSeg[]): string {
  const key = String(path[path.length - 1]);
  return path.length === 2 && path[0] === 'ops' ? `duplicate op name "${key}"` : `duplicate key "${key}"`;
}

/** `a -> b -> c -> a`; a cycle through thousands of ops keeps its ends only. */
function cycleText(cycle: string[]): string {
  if (cycle.length <= 21) return cycle.join(' -> ');
  const hidden = cycle.length - 20;
  return [...cycle.slice(0, 10), `... ${hidden} more ops ...`, ...cycle.slice(-10)].join(' -> ');
}

function cycleProblems(ops: ReadonlyMap<string, OpDefinition>): PathProblem[] {
  const hint = 'each op needs the one before it: remove one of these ins or deps';
  return findCycles(ops).map((cycle) => ({
    path: ['ops', cycle[0] as string],
    atKey: true,
    message: `dependency cycle: ${cycleText(cycle)}`,
    hint,
  }));
}

interface ParsedJob {
  job: JobDefinition;
  /** Its `run_config_file:`, for the caller to read. */
  runConfigFile?: RunConfigFileRef;
  /** Its schedules, whose `run_config_file:`s the caller reads. */
  schedules: ParsedSchedules;
  /** Its sensors, whose `run_config_file:`s the caller reads. */
  sensors: ParsedSensors;
}

function parseJobText(text: string, file: string, baseDir: string, sourcePath: string): ParsedJob {
  const doc = parseYaml(text, file, 'JOB_INVALID', duplicateMessage);
  if (doc === undefined) {
    throw new InputError('JOB_INVALID', [
      { file, message: 'the file is empty: expected a job with "name" and "ops"', hint: EMPTY_JOB_HINT },
    ]);
  }
  const fail = (problems: PathProblem[]) =>
    new InputError('JOB_INVALID', locateProblems(capProblems(problems), file, text));

  const top = jobSchema.safeParse(doc, { error: errorMap });
  const rawOps = isPlainMap(doc) ? doc.ops : undefined;
  const built = isPlainMap(rawOps) ? buildOps(rawOps, baseDir) : undefined;
  const goodOps = built && built.problems.length === 0 ? built.ops : undefined;
  // Spread into an array literal, not push(...): 100,000 problems would overflow the arguments.
  const problems = [
    ...(top.success ? [] : issuesToProblems(top.error.issues, doc, jobSchema)),
    ...(built?.problems ?? []),
    ...(isPlainMap(doc) ? ownRunConfigProblems(doc, goodOps, text) : []),
    ...(isPlainMap(doc) ? scheduleProblems(doc, goodOps) : []),
    ...(isPlainMap(doc) ? sensorProblems(doc, goodOps, baseDir) : []),
  ];
  const cycles = built && !built.declaredInOrder ? cycleProblems(built.ops) : [];
  if (!top.success || !built || problems.length > 0) throw fail([...problems, ...cycles]);
  if (cycles.length > 0) throw new InputError('DEPENDENCY_CYCLE', locateProblems(cycles, file, text));

  // The hash covers what running a step needs, the name and the ops: editing a description, the
  // job's tags or its run config does not strand the workers. Aliases (which need an anchor, `&`)
  // can make a small file expand enormously: such a file is measured now, against a budget
  // (without them nodes <= characters). Otherwise the hash is made when first read: `validate`,
  // `plan` and local runs never need it.
  let definition: unknown = { name: top.data.name, ops: rawOps };
  let hash: string | undefined;
  const hashOf = (canonical: string) => createHash('sha256').update(canonical).digest('hex');
  if (text.includes('&')) {
    const canonical = canonicalJson(definition, 2 * text.length + 1024);
    if (canonical === undefined) {
      throw fail([{ path: [], message: 'the job is too large once its YAML aliases (*name) are expanded' }]);
    }
    hash = hashOf(canonical);
  }
  const fields: Omit<JobDefinition, 'hash'> = {
    name: top.data.name,
    tags: { ...top.data.tags },
    ops: built.ops,
    sourcePath,
    baseDir,
  };
  const job = Object.defineProperty(fields, 'hash', {
    enumerable: true,
    get: () => {
      if (hash === undefined) {
        hash = hashOf(canonicalJson(definition, Infinity) as string);
        definition = undefined; // the parsed document is not kept once hashed
      }
      return hash;
    },
  }) as JobDefinition;
  if (top.data.description !== undefined) job.description = top.data.description;
  const runConfig = inlineRunConfig(doc as Record<string, unknown>, file, sourcePath);
  if (runConfig) job.runConfig = runConfig;
  const runConfigFile = runConfigFileRef(doc as Record<string, unknown>, file, baseDir, text);
  // Schedules and sensors are not hashed: editing a cron line does not strand the workers.
  const schedules = buildSchedules(doc as Record<string, unknown>, file, sourcePath, baseDir, text);
  if (schedules.schedules.size > 0) job.schedules = schedules.schedules;
  const sensors = buildSensors(doc as Record<string, unknown>, file, sourcePath, baseDir, text);
  if (sensors.sensors.size > 0) job.sensors = sensors.sensors;
  return { job, schedules, sensors, ...(runConfigFile ? { runConfigFile } : {}) };
}
