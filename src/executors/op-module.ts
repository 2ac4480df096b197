import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import type { JobDefinition, Json, JsonObject, OpDefinition, OpImpl, Tags } from '../core/types.js';
import { BatonError, InputError, type ErrorCode, type Problem } from '../errors.js';

export interface OpContext {
  runId: string;
  op: string;
  config: JsonObject;
  tags: Tags;
  /** 1-based */
  attempt: number;
  log: Logger;
  /** Fired when the step is canceled. */
  signal: AbortSignal;
}

export type OpFunction = (context: OpContext, inputs: Record<string, Json>) => unknown;

const TS_MODULE = /\.[mc]?ts$/i;
type TsImport = (specifier: string, parent: string) => Promise<Record<string, unknown>>;
let tsImporter: Promise<TsImport> | undefined;

/**
 * tsx's tsImport, loaded only when a TypeScript module is first imported. Unlike a global
 * register(), it compiles the file whatever package.json is above it (none, "type": "commonjs"
 * or "module"), so a user's .ts op loads wherever it lives.
 */
function tsImport(): Promise<TsImport> {
  tsImporter ??= import('tsx/esm/api').then((api) => api.tsImport as unknown as TsImport);
  return tsImporter;
}

// Node caches modules itself, but each import() still goes through resolution (and any loader
// hooks' thread), which a step would pay every time.
const imported = new Map<string, Promise<Record<string, unknown>>>();

/**
 * Imports a module by absolute path, once per process; .ts/.mts/.cts go through tsx. A failed
 * import is not kept, so a fixed file is picked up by the next step.
 */
export function importModule(path: string): Promise<Record<string, unknown>> {
  let mod = imported.get(path);
  if (!mod) {
    mod = (async () => {
      const url = pathToFileURL(path).href;
      if (TS_MODULE.test(path)) return namedExports(await (await tsImport())(url, import.meta.url));
      return (await import(url)) as Record<string, unknown>;
    })();
    imported.set(path, mod);
    mod.catch(() => imported.delete(path));
  }
  return mod;
}

/** A TypeScript module compiled as CommonJS arrives as { default: exports, ...named }: either way, its names. */
function namedExports(mod: Record<string, unknown>): Record<string, unknown> {
  const inner = mod.default;
  if (inner === null || typeof inner !== 'object') return mod;
  return { ...(inner as Record<string, unknown>), ...mod };
}

/** The module exists but does not compile (a TypeScript or JavaScript syntax error). */
function isCompileError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TransformError' || err.name === 'SyntaxError' || /^Transform failed/.test(err.message));
}

interface LoadProblem {
  code: ErrorCode;
  message: string;
  hint?: string;
}

/** The op's function, or what is wrong with it; `shown` is how the module path is reported. */
async function loadOpFunction(
  impl: { module: string; exportName: string },
  shown: string,
): Promise<{ fn: OpFunction } | LoadProblem> {
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(impl.module);
  } catch (err) {
    const missing = !(await exists(impl.module));
    const why = missing ? `file not found (${impl.module})` : err instanceof Error ? err.message : String(err);
    if (!missing && isCompileError(err)) return { code: 'OP_MODULE_COMPILE_FAILED', message: `module "${shown}" does not compile: ${why}` };
    return { code: 'OP_MODULE_NOT_FOUND', message: `cannot load module "${shown}": ${why}` };
  }
  const name = impl.exportName || 'default';
  const value = mod[name];
  if (typeof value === 'function') return { fn: value as OpFunction };
  const functions = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
  const problem: LoadProblem = {
    code: 'OP_EXPORT_NOT_FOUND',
    message:
      value === undefined
        ? `module "${shown}" has no export "${name}"`
        : `export "${name}" of module "${shown}" is not a function (it is ${value === null ? 'null' : typeof value})`,
  };
  if (value === undefined && functions.length > 0) {
    // Only on this error path: keeps the step hot path free of the dependency.
    const { didYouMean } = await import('../core/suggest.js');
    problem.hint = didYouMean(name, functions) ?? `function exports: ${functions.join(', ')}`;
  }
  return problem;
}

/** The op function of an `fn` impl. Throws BatonError OP_MODULE_NOT_FOUND / OP_EXPORT_NOT_FOUND. */
export async function importOpFunction(impl: { module: string; exportName: string }): Promise<OpFunction> {
  const result = await loadOpFunction(impl, impl.module);
  if ('fn' in result) return result.fn;
  throw new BatonError(result.code, result.hint ? `${result.message} (${result.hint})` : result.message);
}

/**
 * Plan-time check, before anything runs: every fn op's module imports and exports a function,
 * and every command op's executable exists. Throws one InputError listing every bad op. Each
 * distinct module#export and program is checked once: 100,000 ops often share a few.
 */
export async function verifyOps(job: JobDefinition, opNames: Iterable<string>): Promise<void> {
  // Keyed by the impl object (ops with the same fn share one) or by the program.
  const checks = new Map<unknown, Promise<LoadProblem | undefined>>();
  const keyOf = (impl: OpImpl): unknown => (impl.kind === 'fn' ? impl : `command\u0000${impl.argv[0] ?? ''}`);
  const selected: string[] = [];
  for (const name of opNames) {
    const op = job.ops.get(name);
    if (!op) continue; // planning reports unknown ops
    selected.push(name);
    const impl = op.impl;
    const key = keyOf(impl);
    if (checks.has(key)) continue;
    checks.set(
      key,
      impl.kind === 'fn'
        ? loadOpFunction(impl, displayPath(job.baseDir, impl.module)).then((r) => ('fn' in r ? undefined : r))
        : checkExecutable(impl.argv, job.baseDir).then((message) =>
            message === undefined ? undefined : { message, code: 'OP_MODULE_NOT_FOUND' as const },
          ),
    );
  }
  const results = new Map<unknown, LoadProblem>();
  await Promise.all(
    [...checks].map(async ([key, check]) => {
      const problem = await check;
      if (problem) results.set(key, problem);
    }),
  );
  if (results.size === 0) return;
  let code: ErrorCode | undefined;
  const problems: Problem[] = [];
  for (const name of new Set(selected)) {
    const impl = (job.ops.get(name) as OpDefinition).impl;
    const r = results.get(keyOf(impl));
    if (!r) continue;
    code ??= r.code;
    const path = `ops.${name}.${impl.kind === 'fn' ? 'fn' : 'command'}`;
    problems.push({ file: job.sourcePath, path, message: r.message, ...(r.hint ? { hint: r.hint } : {}) });
  }
  throw new InputError(code as ErrorCode, problems);
}

/** undefined when argv[0] can be executed from `baseDir` (the command's cwd), else why not. */
async function checkExecutable(argv: string[], baseDir: string): Promise<string | undefined> {
  const cmd = argv[0];
  if (!cmd) return 'command is empty';
  if (isAbsolute(cmd) || cmd.includes('/') || cmd.includes(sep)) {
    const full = resolve(baseDir, cmd);
    return (await isFile(full)) ? undefined : `command "${cmd}" not found: no file at ${full}`;
  }
  const exts = process.platform === 'win32' ? ['', ...(process.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';')] : [''];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const full = resolve(dir, cmd + ext);
      if ((await isFile(full)) && (await canExecute(full))) return undefined;
    }
  }
  return `command "${cmd}" not found on PATH`;
}

function displayPath(baseDir: string, path: string): string {
  const rel = relative(baseDir, path);
  if (rel.startsWith('..') || isAbsolute(rel)) return path;
  return `./${rel.split(sep).join('/')}`;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

async function canExecute(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}
