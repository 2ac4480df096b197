/**
 * The job's own run config: `run_config:` inside the job file, or the file `run_config_file:`
 * names (relative to the job file). Checked like a run-config file when the job is loaded, with
 * problems located in the file that holds it.
 */
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { JobDefinition, JobRunConfig, JsonObject, OpDefinition } from '../core/types.js';
import { InputError } from '../errors.js';
import { canonicalJson } from './canonical-json.js';
import { SourceIndex, locateProblems } from './locate.js';
import { capProblems, isPlainMap, type PathProblem, type PathSeg } from './problem.js';
import { readTextFile, readTextFileSync } from './read-yaml.js';
import { parseRunConfigText, runConfigProblems } from './run-config.js';

/** A `run_config_file:` still to be read. */
export interface RunConfigFileRef {
  /** As the user would name it: the job file's directory as given, joined with the reference. */
  file: string;
  sourcePath: string;
  /** `job.yaml:3:18`, where the reference is written, for a file that cannot be read. */
  namedAt: () => string;
}

/** Aliases can make a small run config expand enormously; without them nodes <= characters. */
const tooLarge = (value: unknown, text: string): boolean => canonicalJson(value, 2 * text.length + 1024) === undefined;

/**
 * Problems of the job file's `run_config` and `run_config_file` keys, as paths in the job file.
 * `ops` undefined (the ops have problems of their own): op names are not checked.
 */
export function ownRunConfigProblems(
  doc: Record<string, unknown>,
  ops: ReadonlyMap<string, OpDefinition> | undefined,
  text: string,
): PathProblem[] {
  const inline = doc.run_config;
  if (inline !== undefined && inline !== null && doc.run_config_file !== undefined) {
    const hint = 'keep the run config in one place: inline, or in the file';
    return [{ path: ['run_config_file'], atKey: true, message: 'expected run_config or run_config_file, not both', hint }];
  }
  if (inline === undefined || inline === null) return [];
  if (tooLarge(inline, text)) return [{ path: ['run_config'], message: 'the run config is too large once its YAML aliases (*name) are expanded' }];
  return runConfigProblems(inline, ops).map((p) => ({ ...p, path: ['run_config', ...p.path] }));
}

/** The job's inline run config (checked by `ownRunConfigProblems`), if it has one. */
export function inlineRunConfig(doc: Record<string, unknown>, file: string, sourcePath: string): JobRunConfig | undefined {
  const value = doc.run_config;
  if (!isPlainMap(value)) return undefined;
  return { value: value as JsonObject, file, sourcePath, path: ['run_config'] };
}

/** The `run_config_file:` of a job file (`file` as the user named it), to be read next. */
export function runConfigFileRef(doc: Record<string, unknown>, file: string, baseDir: string, text: string): RunConfigFileRef | undefined {
  const ref = doc.run_config_file;
  return typeof ref === 'string' ? runConfigFileRefAt(ref, ['run_config_file'], file, baseDir, text) : undefined;
}

/** A run-config file reference `ref` written at `at` in the job file. */
export function runConfigFileRefAt(ref: string, at: PathSeg[], file: string, baseDir: string, text: string): RunConfigFileRef {
  return {
    file: isAbsolute(ref) ? ref : join(dirname(file), ref),
    sourcePath: resolve(baseDir, ref),
    namedAt: () => {
      const pos = new SourceIndex(text).position(at);
      return pos ? `${file}:${pos.line}:${pos.column}` : file;
    },
  };
}

export async function readRunConfigFile(ref: RunConfigFileRef, job: JobDefinition): Promise<JobRunConfig> {
  let text: string;
  try {
    text = await readTextFile(ref.sourcePath);
  } catch (err) {
    throw named(err, ref);
  }
  return checkRunConfigFile(ref, text, job);
}

export function readRunConfigFileSync(ref: RunConfigFileRef, job: JobDefinition): JobRunConfig {
  let text: string;
  try {
    text = readTextFileSync(ref.sourcePath);
  } catch (err) {
    throw named(err, ref);
  }
  return checkRunConfigFile(ref, text, job);
}

/** A read problem, under the name the user knows the file by, saying where the job names it. */
function named(err: unknown, ref: RunConfigFileRef): unknown {
  if (!(err instanceof InputError)) return err;
  const hint = `named by run_config_file at ${ref.namedAt()}`;
  return new InputError(err.code, err.problems.map((p) => ({ ...p, file: ref.file, hint: p.hint ? `${p.hint}; ${hint}` : hint })));
}

function checkRunConfigFile(ref: RunConfigFileRef, text: string, job: JobDefinition): JobRunConfig {
  const value = parseRunConfigText(text, ref.file);
  const problems: PathProblem[] = tooLarge(value, text)
    ? [{ path: [], message: 'the run config is too large once its YAML aliases (*name) are expanded' }]
    : runConfigProblems(value, job.ops);
  if (problems.length > 0) throw new InputError('RUN_CONFIG_INVALID', locateProblems(capProblems(problems), ref.file, text));
  return { value: value as JsonObject, file: ref.file, sourcePath: ref.sourcePath, path: [] };
}
