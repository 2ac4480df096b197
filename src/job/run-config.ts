/** Run config files (Dagster's shape) into a validated, normalised `RunConfig`. */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type {
  ExecutorConfig,
  JobDefinition,
  JsonObject,
  OpRunConfig,
  OutputStorage,
  RunConfig,
  StartMethod,
  TagConcurrencyLimit,
} from '../core/types.js';
import { InputError, type ErrorCode, type Problem } from '../errors.js';
import { SourceIndex, toProblem } from './locate.js';
import { redactRedisUrl } from '../redact.js';
import { deepMerge, sourceOf } from './merge.js';
import { capProblems, choiceHint, describeValue, isPlainMap, type PathProblem, type PathSeg } from './problem.js';
import { parseYaml, readTextFile } from './read-yaml.js';
import { REDIS_URL_RE, runConfigSchema, type RawRunConfig } from './run-config-schema.js';
import { errorMap, issuesToProblems, selectorProblems } from './zod-problems.js';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_QUEUE = 'baton';
export const DEFAULT_OUTPUT_MAX_BYTES = 8 * 1024 * 1024;

interface Source {
  file?: string;
  text?: string;
  value: unknown;
}

const duplicateMessage = (path: PathSeg[]) => `duplicate key "${String(path[path.length - 1])}"`;

/**
 * Reads run-config files and deep-merges them in order (maps merge, lists and scalars replace).
 * An empty file is an empty config. Problems name the file that provided the offending value.
 */
export async function loadRunConfig(files: readonly string[], job: JobDefinition): Promise<RunConfig> {
  const sources: Source[] = [];
  const problems: Problem[] = [];
  let code: ErrorCode | undefined;
  for (const file of files) {
    const text = await readTextFile(file);
    let value: unknown;
    try {
      value = parseYaml(text, file, 'RUN_CONFIG_INVALID', duplicateMessage) ?? {};
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      code ??= err.code;
      problems.push(...err.problems);
      continue;
    }
    if (!isPlainMap(value)) {
      const message = `expected a map at the top level (with execution and/or ops), got ${describeValue(value)}`;
      problems.push({ file, line: 1, column: 1, message });
      code ??= 'RUN_CONFIG_INVALID';
    }
    sources.push({ file, text, value });
  }
  if (code) throw new InputError(code, problems);
  const merged = sources.reduce<unknown>((acc, s) => deepMerge(acc, s.value), {});
  return resolveSources(merged, job, sources);
}

/** Library API: a run config given as a plain object (null or undefined: the defaults). */
export function resolveRunConfig(raw: unknown, job: JobDefinition, file?: string): RunConfig {
  const value = raw ?? {};
  return resolveSources(value, job, [{ ...(file !== undefined ? { file } : {}), value }]);
}

/**
 * A run config as YAML text (the UI's Launchpad), its problems located in that text under `file`.
 * An empty text is an empty config.
 */
export function resolveRunConfigText(text: string, job: JobDefinition, file: string): RunConfig {
  const value = parseYaml(text, file, 'RUN_CONFIG_INVALID', duplicateMessage) ?? {};
  if (!isPlainMap(value)) {
    const message = `expected a map at the top level (with execution and/or ops), got ${describeValue(value)}`;
    throw new InputError('RUN_CONFIG_INVALID', [{ file, line: 1, column: 1, message }]);
  }
  return resolveSources(value, job, [{ file, text, value }]);
}

function resolveSources(merged: unknown, job: JobDefinition, sources: readonly Source[]): RunConfig {
  const parsed = runConfigSchema.safeParse(merged, { error: errorMap });
  const problems: PathProblem[] = [
    ...(parsed.success ? [] : issuesToProblems(parsed.error.issues, merged, runConfigSchema)),
    ...selectorProblems(runConfigSchema, merged),
    ...(isPlainMap(merged) && isPlainMap(merged.ops) ? opProblems(merged.ops, job) : []),
  ];
  if (parsed.success && problems.length === 0) {
    const redisProblem = envRedisProblem(parsed.data);
    if (redisProblem) problems.push(redisProblem);
  }
  if (!parsed.success || problems.length > 0) {
    // A selector with no key makes zod succeed: the problem list is what decides.
    throw new InputError('RUN_CONFIG_INVALID', locate(capProblems(problems), sources));
  }
  return {
    executor: toExecutor(parsed.data, job),
    ops: toOps(parsed.data),
    raw: merged as JsonObject,
  };
}

/** Each problem goes to the file that provided the value, positioned in that file's text. */
function locate(problems: readonly PathProblem[], sources: readonly Source[]): Problem[] {
  const values = sources.map((s) => s.value);
  const indexes = new Map<number, SourceIndex | undefined>();
  const located = problems.map((p) => {
    const i = Math.max(0, sourceOf(values, p.path));
    const src = sources[i];
    if (!indexes.has(i)) indexes.set(i, src?.text === undefined ? undefined : new SourceIndex(src.text));
    return { i, problem: toProblem(p, src?.file, indexes.get(i)) };
  });
  const pos = (p: Problem) => (p.line === undefined ? Infinity : p.line * 1e6 + (p.column ?? 0));
  located.sort((a, b) => a.i - b.i || pos(a.problem) - pos(b.problem));
  return located.map((l) => l.problem);
}

/** `ops.<op>` must name an op of the job, and `ops.<op>.inputs.<input>` one of its inputs. */
function opProblems(ops: Record<string, unknown>, job: JobDefinition): PathProblem[] {
  const problems: PathProblem[] = [];
  const names = [...job.ops.keys()];
  for (const name of Object.keys(ops)) {
    const op = job.ops.get(name);
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
      queue: d.queue ?? DEFAULT_QUEUE,
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
