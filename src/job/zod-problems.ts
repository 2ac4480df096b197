/**
 * Zod issues as plain-English problems. Zod's own messages never reach the user: `errorMap`
 * words every issue a schema did not word itself, and `issuesToProblems` adds what was found,
 * splits unknown keys into one problem each (with did-you-mean) and picks the relevant branch
 * of a union.
 */
import type * as z from 'zod';
import { didYouMean } from '../core/suggest.js';
import { describeValue, isPlainMap, valueAt, type PathProblem, type PathSeg } from './problem.js';

type Issue = z.core.$ZodIssue;
type Schema = z.core.$ZodType;

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a map',
  record: 'a map',
  map: 'a map',
  array: 'a list',
  null: 'an empty value',
};

function quoteAll(values: readonly unknown[]): string {
  const q = values.map((v) => JSON.stringify(v));
  return q.length <= 2 ? q.join(' or ') : `one of ${q.join(', ')}`;
}

function sizeMessage(origin: string, bound: number, inclusive: boolean, min: boolean): string {
  const op = min ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<';
  if (origin === 'array' || origin === 'set') {
    return min && bound === 1 ? 'expected a non-empty list' : `expected a list of ${op} ${bound} items`;
  }
  if (origin === 'string') {
    return min && bound === 1 ? 'expected a non-empty string' : `expected a string of ${op} ${bound} characters`;
  }
  return `expected a number ${op} ${bound}`;
}

/** Pass as `safeParse(value, { error: errorMap })`: messages for issues a schema left unworded. */
export const errorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
      return `expected ${TYPE_NAMES[iss.expected] ?? iss.expected}`;
    case 'too_small':
      return sizeMessage(iss.origin, Number(iss.minimum), iss.inclusive !== false, true);
    case 'too_big':
      return sizeMessage(iss.origin, Number(iss.maximum), iss.inclusive !== false, false);
    case 'invalid_value':
      return `expected ${quoteAll(iss.values)}`;
    case 'invalid_format':
      return 'expected a string in a different format';
    case 'unrecognized_keys':
      return 'unknown key';
    case 'invalid_union':
      return 'expected a different kind of value';
    case 'not_multiple_of':
      return `expected a multiple of ${String(iss.divisor)}`;
    default:
      return 'invalid value';
  }
};

/**
 * Object schemas that must hold exactly one of their keys (Dagster's selectors, such as
 * `retries: { enabled: {} }`), with what a key is called: `unknown executor "x"`.
 */
const selectors = new WeakMap<object, string>();
export function exactlyOneKey<T extends Schema>(schema: T, label: string): T {
  selectors.set(schema, label);
  return schema;
}

/** Extra data a custom issue (superRefine) may carry in `params`. */
export interface CustomParams {
  hint?: string;
  atKey?: boolean;
}

/**
 * `root` is the value that was parsed with `schema`; `base` is where `root` sits in the file
 * (e.g. `['ops', 'extract']` when each op is parsed on its own).
 */
export function issuesToProblems(
  issues: readonly Issue[],
  root: unknown,
  schema: Schema,
  base: readonly PathSeg[] = [],
): PathProblem[] {
  const out: PathProblem[] = [];
  const seen = new Set<string>();
  const add = (p: PathProblem) => {
    const key = `${JSON.stringify(p.path)}\u0000${p.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(p);
    }
  };
  const walk = (list: readonly Issue[], prefix: PathSeg[]) => {
    for (const iss of list) {
      const rel = [...prefix, ...iss.path.map((s) => (typeof s === 'number' ? s : String(s)))];
      if (iss.code === 'invalid_union') {
        const branch = relevantBranch(iss.errors);
        if (branch) {
          walk(branch, rel);
          continue;
        }
      }
      if (iss.code === 'unrecognized_keys') {
        const { keys, label } = allowedKeys(schema, rel);
        for (const key of iss.keys) add(unknownKey([...base, ...rel, key], key, keys, label));
        continue;
      }
      add(toProblem(iss, root, rel, base));
    }
  };
  walk(issues, []);
  return withoutMisspeltMissing(out);
}

/**
 * Drops `missing required key "name"` when its level also has `unknown key "nmae"` (did you mean
 * "name"?): it says nothing new. One pass and a set, as there may be thousands of problems.
 */
function withoutMisspeltMissing(problems: PathProblem[]): PathProblem[] {
  const meant = new Set<string>();
  for (const p of problems) {
    const m = p.atKey ? /^did you mean "([^"]+)"/.exec(p.hint ?? '') : null;
    if (m) meant.add(JSON.stringify([...p.path.slice(0, -1), m[1]]));
  }
  if (meant.size === 0) return problems;
  return problems.filter((p) => !(p.message.startsWith('missing required key ') && meant.has(JSON.stringify(p.path))));
}

function unknownKey(path: PathSeg[], key: string, allowed: string[], label?: string): PathProblem {
  const list = label ? `expected one of: ${allowed.join(', ')}` : `allowed keys: ${allowed.join(', ')}`;
  const hint = didYouMean(key, allowed) ?? (allowed.length > 0 ? list : undefined);
  return { path, atKey: true, message: `unknown ${label ?? 'key'} "${key}"`, ...(hint ? { hint } : {}) };
}

/** A union failed: if exactly one branch got past the value's type, its issues are the story. */
function relevantBranch(branches: readonly (readonly Issue[])[]): readonly Issue[] | undefined {
  const typed = branches.filter((b) => !b.some((i) => i.path.length === 0 && i.code === 'invalid_type'));
  return typed.length === 1 ? typed[0] : undefined;
}

function toProblem(iss: Issue, root: unknown, rel: PathSeg[], base: readonly PathSeg[]): PathProblem {
  const path = [...base, ...rel];
  const params = (iss.code === 'custom' ? (iss.params ?? {}) : {}) as CustomParams;
  const last = rel[rel.length - 1];
  const parent = valueAt(root, rel.slice(0, -1));
  const missing = rel.length > 0 && isPlainMap(parent) && !Object.hasOwn(parent, String(last));
  const value = valueAt(root, rel);
  let message: string;
  if (missing && value === undefined && (iss.code === 'invalid_type' || iss.code === 'custom')) message = `missing required key "${String(last)}": ${iss.message}`;
  // Rule: a message of the form "expected X" is completed with what was found.
  else if (iss.message.startsWith('expected ') && !iss.message.includes(', got ')) {
    message = `${iss.message}, got ${describeValue(value)}`;
  } else message = iss.message;
  const hint = params.hint ?? valueHint(iss, value);
  return { path, message, ...(hint ? { hint } : {}), ...(params.atKey ? { atKey: true } : {}) };
}

function valueHint(iss: Issue, value: unknown): string | undefined {
  if (iss.code === 'invalid_value' && typeof value === 'string') {
    return didYouMean(value, iss.values.filter((v): v is string => typeof v === 'string'));
  }
  if (iss.code === 'invalid_type' && iss.expected === 'string') {
    if (typeof value === 'number' || typeof value === 'boolean') return `quote it: "${String(value)}"`;
  }
  if (iss.code === 'invalid_type' && iss.expected === 'array' && typeof value === 'string' && value.trim()) {
    return `write it as a list: [${value.trim().split(/\s+/).map((x) => JSON.stringify(x)).join(', ')}]`;
  }
  return undefined;
}

interface Def {
  type: string;
  [k: string]: unknown;
}
const defOf = (s: Schema): Def => s._zod.def as unknown as Def;

/** Schemas a value may be checked against, looking through optional, default, pipe, union... */
function unwrap(s: Schema, depth = 0): Schema[] {
  if (depth > 20) return [s];
  const d = defOf(s);
  const inner = (x: unknown) => unwrap(x as Schema, depth + 1);
  if (d.innerType) return inner(d.innerType);
  if (d.type === 'pipe') return [...inner(d.in), ...inner(d.out)];
  if (d.type === 'union') return (d.options as Schema[]).flatMap(inner);
  if (d.type === 'lazy') return inner((d.getter as () => Schema)());
  return [s];
}

function child(s: Schema, seg: PathSeg): Schema[] {
  const d = defOf(s);
  if (d.type === 'object') {
    const shape = d.shape as Record<string, Schema>;
    return typeof seg === 'string' && Object.hasOwn(shape, seg) ? [shape[seg] as Schema] : [];
  }
  if (d.type === 'record') return [d.valueType as Schema];
  if (d.type === 'array' && typeof seg === 'number') return [d.element as Schema];
  return [];
}

/** The keys an object schema at `path` allows, and its label if it has one. */
function allowedKeys(schema: Schema, path: readonly PathSeg[]): { keys: string[]; label?: string } {
  let cur = unwrap(schema);
  for (const seg of path) cur = cur.flatMap((s) => child(s, seg)).flatMap((s) => unwrap(s));
  const keys = new Set<string>();
  let label: string | undefined;
  for (const s of cur) {
    if (defOf(s).type !== 'object') continue;
    for (const k of Object.keys(defOf(s).shape as object)) keys.add(k);
    label ??= selectors.get(s);
  }
  return { keys: [...keys], ...(label ? { label } : {}) };
}

/** The schemas a value may be checked against: `schema` itself, or what it wraps. */
export function schemasOf(schema: Schema): Schema[] {
  return unwrap(schema);
}

/** The schemas `value[seg]` is checked against, for a value checked against `schemas`. */
export function childSchemas(schemas: readonly Schema[], seg: PathSeg): Schema[] {
  return schemas.flatMap((s) => child(s, seg)).flatMap((s) => unwrap(s));
}

/** The keys to choose one of, when one of `schemas` is a selector (`exactlyOneKey`). */
export function choiceKeys(schemas: readonly Schema[]): string[] | undefined {
  const s = schemas.find((x) => selectors.has(x));
  return s ? Object.keys(defOf(s).shape as object) : undefined;
}

/**
 * "Exactly one key" problems of the selectors under `schema`, found by walking `value` along it.
 * Not a zod refinement: zod skips refinements of an object once a nested value has failed, and
 * `{ multiprocess: { max_concurrent: -1 }, in_process: {} }` has two problems worth reporting.
 * `noneIsFine`: an empty selector is not a problem (a layer that another layer completes).
 */
export function selectorProblems(schema: Schema, value: unknown, path: PathSeg[] = [], noneIsFine = false): PathProblem[] {
  const out: PathProblem[] = [];
  const schemas = unwrap(schema);
  for (const s of schemas) {
    const label = selectors.get(s);
    if (label === undefined || !isPlainMap(value)) continue;
    const allowed = Object.keys(defOf(s).shape as object);
    const keys = Object.keys(value);
    const given = keys.filter((k) => allowed.includes(k));
    // No known key but unknown ones: the unknown-key problem already says it all.
    if (given.length === 1 || (given.length === 0 && (keys.length > 0 || noneIsFine))) continue;
    const found = given.length === 0 ? 'none' : `${given.length}: ${given.join(', ')}`;
    const hint = given.length === 0 ? `choose one of: ${allowed.join(', ')}` : 'keep only one';
    out.push({ path, message: `expected exactly one ${label}, got ${found}`, hint });
  }
  const children = (seg: PathSeg) => schemas.flatMap((s) => child(s, seg));
  if (Array.isArray(value)) {
    value.forEach((v, i) => children(i).forEach((c) => out.push(...selectorProblems(c, v, [...path, i], noneIsFine))));
  } else if (isPlainMap(value)) {
    for (const k of Object.keys(value)) children(k).forEach((c) => out.push(...selectorProblems(c, value[k], [...path, k], noneIsFine)));
  }
  return out;
}
