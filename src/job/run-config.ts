/** Run config files (Dagster's shape) into a validated, normalised `RunConfig`. */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type {
  ExecutorConfig,
  JobDefinition,
  JsonObject,
  OpDefinition,
  OpRunConfig,
  OutputStorage,
  RunConfig,
  StartMethod,
  TagConcurrencyLimit,
} from '../core/types.js';
import { InputError, type ErrorCode, type Problem } from '../errors.js';
import { SourceIndex, toProblem } from './locate.js';
import { redactRedisUrl } from '../redact.js';
import { DISTRIBUTED_DEFAULTS, queueSpec } from '../distributed/options.js';
import { mergeRunConfig, sourceOf } from './merge.js';
import { MAX_PROBLEMS, choiceHint, describeValue, formatPath, isPlainMap, valueAt, type PathProblem, type PathSeg } from './problem.js';
import { parseYaml, readTextFile } from './read-yaml.js';
import { REDIS_URL_RE, runConfigSchema, type RawRunConfig } from './run-config-schema.js';
import { errorMap, issuesToProblems, selectorProblems } from './zod-problems.js';

export const DEFAULT_REDIS_URL = DISTRIBUTED_DEFAULTS.redisUrl;
export const DEFAULT_QUEUE = DISTRIBUTED_DEFAULTS.queue;
export const DEFAULT_OUTPUT_MAX_BYTES = 8 * 1024 * 1024;

/** One layer of run config: a file, the job's own, or an object given to the library. */
export interface RunConfigSource {
  /** The file, as the user named it. */
  file?: string;
  /** The file's text, for positions; a function when it is read only if a problem needs it. */
  text?: string | (() => string | undefined);
  value: unknown;
  /** Where the config sits inside its file: `['run_config']` in a job file. */
  base?: PathSeg[];
}

const duplicateMessage = (path: PathSeg[]) => `duplicate key "${String(path[path.length - 1])}"`;

/**
 * The job's own run config, then each file in order, merged (maps merge, lists and scalars
 * replace, a choice such as the executor replaces the earlier choice). An empty file is an empty
 * config. Problems name the file that provided the offending value.
 */
export async function loadRunConfig(files: readonly string[], job: JobDefinition): Promise<RunConfig> {
  const sources: RunConfigSource[] = [];
  const problems: Problem[] = [];
  let code: ErrorCode | undefined;
  for (const file of files) {
    const text = await readTextFile(file);
    try {
      sources.push({ file, text, value: parseRunConfigText(text, file) });
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      code ??= err.code;
      problems.push(...err.problems);
    }
  }
  if (code) throw new InputError(code, problems);
  return resolveSources([...jobSources(job), ...sources], job);
}

/** A run-config file's text as a value: `{}` when empty; YAML problems and a non-map refused. */
export function parseRunConfigText(text: string, file: string): unknown {
  const value = parseYaml(text, file, 'RUN_CONFIG_INVALID', duplicateMessage) ?? {};
  if (!isPlainMap(value)) {
    const message = `expected a map at the top level (with execution and/or ops), got ${describeValue(value)}`;
    throw new InputError('RUN_CONFIG_INVALID', [{ file, line: 1, column: 1, message }]);
  }
  return value;
}

/** Library API: a run config given as a plain object (null or undefined: the defaults), exactly as given. */
export function resolveRunConfig(raw: unknown, job: JobDefinition, file?: string): RunConfig {
  return resolveSources([{ ...(file !== undefined ? { file } : {}), value: raw ?? {} }], job);
}

/** Library API: the job's own run config with `raw` (a plain object, as given to `launchRun`) merged over it. */
export function resolveJobRunConfig(raw: unknown, job: JobDefinition, file?: string): RunConfig {
  return resolveSources([...jobSources(job), { ...(file !== undefined ? { file } : {}), value: raw ?? {} }], job);
}

/**
 * A run config as YAML text (the UI's Launchpad sends the whole text: nothing is merged under
 * it), its problems located in that text under `file`. An empty text is an empty config.
 */
export function resolveRunConfigText(text: string, job: JobDefinition, file: string): RunConfig {
  return resolveSources([{ file, text, value: parseRunConfigText(text, file) }], job);
}

function jobSources(job: JobDefinition): RunConfigSource[] {
  const own = job.runConfig;
  if (!own) return [];
  const text = (): string | undefined => {
    try {
      return readFileSync(own.sourcePath, 'utf8');
    } catch {
      return undefined; // changed or gone since loading: no positions
    }
  };
  return [{ file: own.file, text, value: own.value, base: own.path }];
}

/**
 * Every problem of one layer on its own: its shape, its choices (exactly one executor...) and
 * its op names. `ops` undefined: op names are not checked. `layer`: an empty choice
 * (`execution: { config: {} }`) may be completed by another layer, and is checked once merged.
 */
export function runConfigProblems(value: unknown, ops: ReadonlyMap<string, OpDefinition> | undefined, layer = false): PathProblem[] {
  const parsed = runConfigSchema.safeParse(value, { error: errorMap });
  return [
    ...(parsed.success ? [] : issuesToProblems(parsed.error.issues, value, runConfigSchema)),
    ...selectorProblems(runConfigSchema, value, [], layer),
    ...(ops && isPlainMap(value) && isPlainMap(value.ops) ? opProblems(value.ops, ops) : []),
  ];
}

interface SourcedProblem {
  /** Index of the source it is in. */
  i: number;
  problem: PathProblem;
}

function resolveSources(sources: readonly RunConfigSource[], job: JobDefinition): RunConfig {
  // Each layer is checked on its own, so a mistake in a section a later layer replaces still shows.
  const layers = sources.length > 1;
  const problems: SourcedProblem[] = sources.flatMap((s, i) => runConfigProblems(s.value, job.ops, layers).map((problem) => ({ i, problem })));
  const merged = sources.reduce<unknown>((acc, s) => mergeRunConfig(acc, s.value), {});
  const values = sources.map((s) => s.value);
  const fromMerged = (problem: PathProblem): SourcedProblem => ({ i: Math.max(0, sourceOf(values, problem.path)), problem });
  const parsed = runConfigSchema.safeParse(merged, { error: errorMap });
  if (problems.length === 0 && layers) {
    const mergedProblems = [
      ...(parsed.success ? [] : issuesToProblems(parsed.error.issues, merged, runConfigSchema)),
      ...selectorProblems(runConfigSchema, merged),
    ];
    problems.push(...mergedProblems.map(fromMerged));
  }
  if (problems.length === 0 && parsed.success) {
    const redisProblem = envRedisProblem(parsed.data);
    if (redisProblem) problems.push(fromMerged(redisProblem));
    problems.push(...preloadProblems(parsed.data, job).map(fromMerged));
  }
  if (!parsed.success || problems.length > 0) {
    // A selector with no key makes zod succeed: the problem list is what decides.
    throw new InputError('RUN_CONFIG_INVALID', locate(problems, sources));
  }
  const origins = executorOrigins(merged, sources);
  return {
    executor: toExecutor(parsed.data, job),
    ops: toOps(parsed.data),
    ...(parsed.data.max_runtime_seconds !== undefined ? { maxRuntimeSeconds: parsed.data.max_runtime_seconds } : {}),
    raw: merged as JsonObject,
    ...(origins ? { origins } : {}),
  };
}

/** For each executor setting of the merged config, the file that gave it (see `RunConfig.origins`). */
function executorOrigins(merged: unknown, sources: readonly RunConfigSource[]): Record<string, string> | undefined {
  const config = valueAt(merged, ['execution', 'config']);
  if (!isPlainMap(config)) return undefined;
  const values = sources.map((s) => s.value);
  const origins: Record<string, string> = {};
  const note = (path: PathSeg[]) => {
    const file = sources[sourceOf(values, path)]?.file;
    if (file !== undefined) origins[formatPath(path)] = file;
  };
  for (const kind of Object.keys(config)) {
    note(['execution', 'config', kind]);
    const settings = config[kind];
    if (isPlainMap(settings)) for (const key of Object.keys(settings)) note(['execution', 'config', kind, key]);
  }
  return Object.keys(origins).length > 0 ? origins : undefined;
}

/** Each problem goes to the file that provided the value, positioned in that file's text. */
function locate(items: readonly SourcedProblem[], sources: readonly RunConfigSource[]): Problem[] {
  const indexes = new Map<number, SourceIndex | undefined>();
  const indexOf = (i: number): SourceIndex | undefined => {
    if (!indexes.has(i)) {
      const t = sources[i]?.text;
      const text = typeof t === 'function' ? t() : t;
      indexes.set(i, text === undefined ? undefined : new SourceIndex(text));
    }
    return indexes.get(i);
  };
  const located = items.slice(0, MAX_PROBLEMS).map(({ i, problem }) => {
    const src = sources[i];
    const base = src?.base ?? [];
    const p = base.length > 0 ? { ...problem, path: [...base, ...problem.path] } : problem;
    return { i, problem: toProblem(p, src?.file, indexOf(i)) };
  });
  const pos = (p: Problem) => (p.line === undefined ? Infinity : p.line * 1e6 + (p.column ?? 0));
  located.sort((a, b) => a.i - b.i || pos(a.problem) - pos(b.problem));
  const out = located.map((l) => l.problem);
  const rest = items.length - MAX_PROBLEMS;
  if (rest > 0) out.push({ message: `... and ${rest} more problem${rest === 1 ? '' : 's'}` });
  return out;
}

/** `ops.<op>` must name an op of the job, and `ops.<op>.inputs.<input>` one of its inputs. */
/** A forkserver preload module that does not exist (relative paths are from the job file's folder). */
function preloadProblems(raw: RawRunConfig, job: JobDefinition): PathProblem[] {
  const modules = raw.execution?.config?.multiprocess?.start_method?.forkserver?.preload_modules ?? [];
  const base: PathSeg[] = ['execution', 'config', 'multiprocess', 'start_method', 'forkserver', 'preload_modules'];
  return modules.flatMap((m, i) => {
    const full = resolve(job.baseDir, m);
    return existsSync(full) ? [] : [{ path: [...base, i], message: `preload module "${m}" not found: no file at ${full}` }];
  });
}

function opProblems(ops: Record<string, unknown>, jobOps: ReadonlyMap<string, OpDefinition>): PathProblem[] {
  const problems: PathProblem[] = [];
  const names = [...jobOps.keys()];
  for (const name of Object.keys(ops)) {
    const op = jobOps.get(name);
    if (!op) {
      const hint = choiceHint(name, names, "the job's ops are");
      problems.push({ path: ['ops', name], atKey: true, message: `unknown op "${name}"`, ...(hint ? { hint } : {}) });
      continue;
    }
    const entry = ops[name];
    const inputs = isPlainMap(entry) && isPlainMap(entry.inputs) ? Object.keys(entry.inputs) : [];
    const known = Object.keys(op.ins);
    for (const input of inputs) {
      if (Object.hasOwn(op.ins, input)) continue;
      const hint = known.length === 0 ? `op "${name}" takes no inputs` : choiceHint(input, known, 'its inputs are');
      const message = `op "${name}" has no input "${input}"`;
      problems.push({ path: ['ops', name, 'inputs', input], atKey: true, message, ...(hint ? { hint } : {}) });
    }
  }
  return problems;
}

/** The default Redis URL comes from REDIS_URL: a bad one is reported like a bad `redis:` key. */
function envRedisProblem(data: RawRunConfig): PathProblem | undefined {
  const dist = data.execution?.config?.distributed;
  const env = process.env.REDIS_URL;
  if (!dist || dist.redis !== undefined || !env || REDIS_URL_RE.test(env)) return undefined;
  return {
    path: ['execution', 'config', 'distributed'],
    message: `expected REDIS_URL to start with redis:// or rediss://, got ${JSON.stringify(redactRedisUrl(env))}`,
    hint: 'fix REDIS_URL or set execution.config.distributed.redis',
  };
}

type Retries = { enabled?: unknown; disabled?: unknown } | undefined;
const retriesOn = (r: Retries) => r?.disabled === undefined;

type RawLimits = NonNullable<NonNullable<NonNullable<RawRunConfig['execution']>['config']>['multiprocess']>['tag_concurrency_limits'];
function toLimits(limits: RawLimits): TagConcurrencyLimit[] {
  return (limits ?? []).map(({ key, value, limit }) => {
    if (typeof value === 'string') return { key, value, limit };
    return value ? { key, perUniqueValue: true, limit } : { key, limit };
  });
}

/** Finished distributed runs are kept a week unless run config says otherwise (`retention_days`). */
export function retentionSeconds(days: number | undefined): number {
  return Math.round((days ?? 7) * 86_400);
}

function toExecutor(data: RawRunConfig, job: JobDefinition): ExecutorConfig {
  const sel = data.execution?.config ?? { multiprocess: {} };
  if (sel.in_process) return { kind: 'in_process', retries: retriesOn(sel.in_process.retries) };
  if (sel.distributed) {
    const d = sel.distributed;
    const storage = d.output_storage;
    const outputStorage: OutputStorage = storage?.filesystem
      ? { kind: 'filesystem', baseDir: resolve(job.baseDir, storage.filesystem.base_dir) }
      : { kind: 'redis', maxBytes: storage?.redis?.max_bytes ?? DEFAULT_OUTPUT_MAX_BYTES };
    return {
      kind: 'distributed',
      redisUrl: d.redis ?? (process.env.REDIS_URL || DEFAULT_REDIS_URL),
      queue: d.queue === undefined ? DEFAULT_QUEUE : queueSpec(d.queue),
      maxConcurrent: d.max_concurrent ?? 0,
      tagConcurrencyLimits: toLimits(d.tag_concurrency_limits),
      retries: retriesOn(d.retries),
      outputStorage,
      retentionSeconds: retentionSeconds(d.retention_days),
    };
  }
  const m = sel.multiprocess ?? {};
  const fork = m.start_method?.forkserver;
  const startMethod: StartMethod = fork
    ? { kind: 'forkserver', preloadModules: (fork.preload_modules ?? []).map((p) => resolve(job.baseDir, p)) }
    : { kind: 'spawn' };
  return {
    kind: 'multiprocess',
    maxConcurrent: m.max_concurrent || availableParallelism(),
    startMethod,
    tagConcurrencyLimits: toLimits(m.tag_concurrency_limits),
    retries: retriesOn(m.retries),
  };
}

function toOps(data: RawRunConfig): Record<string, OpRunConfig> {
  const out: Record<string, OpRunConfig> = Object.create(null) as Record<string, OpRunConfig>;
  for (const [name, entry] of Object.entries(data.ops ?? {})) {
    const op: OpRunConfig = {};
    if (entry.config) op.config = entry.config as JsonObject;
    if (entry.inputs) op.inputs = entry.inputs as JsonObject;
    out[name] = op;
  }
  return out;
}
