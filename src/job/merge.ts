/** Deep merge of run-config files, and which file a merged value came from. */
import { cloneJson } from '../core/merge.js';
import type { Json } from '../core/types.js';
import { hasPath, isPlainMap, type PathSeg } from './problem.js';
import { runConfigSchema } from './run-config-schema.js';
import { childSchemas, choiceKeys, schemasOf } from './zod-problems.js';

type Schemas = ReturnType<typeof schemasOf>;

/**
 * `over` deep-merged over `base` as run config: maps merge key by key, lists and scalars replace,
 * and a choice named in `over` (an executor, a start method, a retries mode, an output storage)
 * replaces the choice `base` made rather than joining it: `in_process` over `multiprocess: {...}`
 * leaves `in_process` alone. Neither argument is modified; the result shares nothing with them.
 */
export function mergeRunConfig(base: unknown, over: unknown): unknown {
  return mergeAt(schemasOf(runConfigSchema), base, over);
}

function mergeAt(schemas: Schemas, base: unknown, over: unknown): unknown {
  if (!isPlainMap(base) || !isPlainMap(over)) return over === undefined ? clone(base) : clone(over);
  const choices = choiceKeys(schemas);
  const named = choices ? Object.keys(over).filter((k) => choices.includes(k)) : [];
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(base)) {
    if (named.length > 0 && choices?.includes(key) && !named.includes(key)) continue; // replaced
    setOwn(out, key, clone(base[key]));
  }
  for (const key of Object.keys(over)) {
    const value = over[key];
    if (value === undefined) continue;
    const prev = Object.hasOwn(out, key) ? out[key] : undefined;
    setOwn(out, key, isPlainMap(prev) && isPlainMap(value) ? mergeAt(childSchemas(schemas, key), prev, value) : clone(value));
  }
  return out;
}

const clone = (v: unknown): unknown => (v === undefined ? undefined : cloneJson(v as Json));

/** Plain assignment of `__proto__` (a legal YAML key) would change the prototype instead. */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/**
 * Index of the source that provided the merged value at `path`: later sources win, so it is the
 * last one holding the path; for a missing key, the last one holding its nearest ancestor.
 */
export function sourceOf(values: readonly unknown[], path: readonly PathSeg[]): number {
  for (let len = path.length; len >= 0; len--) {
    const prefix = path.slice(0, len);
    for (let i = values.length - 1; i >= 0; i--) if (hasPath(values[i], prefix)) return i;
  }
  return values.length - 1;
}
