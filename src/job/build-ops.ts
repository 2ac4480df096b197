/** Validates each op of a job file and normalises it into an `OpDefinition`; checks ins/deps. */
import { resolve } from 'node:path';
import type { JsonObject, OpDefinition, OpImpl, Tags } from '../core/types.js';
import { NAME_RE, depsSchema, insSchema, isPlainValidOp, nameHint, opSchema, parseFnRef, type RawOp } from './job-schema.js';
import { MAX_PROBLEMS, choiceHint, isPlainMap, type PathProblem, type PathSeg } from './problem.js';
import { errorMap, issuesToProblems } from './zod-problems.js';

export interface BuiltOps {
  ops: Map<string, OpDefinition>;
  problems: PathProblem[];
  /**
   * Every `ins`/`deps` reference names an op declared before it: the declaration order is a
   * topological order, so there is no cycle to look for (the usual case, checked for free).
   */
  declaredInOrder: boolean;
}

type Edges = Pick<RawOp, 'ins' | 'deps'>;

/** One pass over the ops: a hand-written fast check for plain ops, zod for anything else. */
export function buildOps(rawOps: Record<string, unknown>, baseDir: string): BuiltOps {
  const problems: PathProblem[] = [];
  const ops = new Map<string, OpDefinition>();
  const edgeOps: string[] = [];
  const edgeAt: number[] = []; // position of each of edgeOps
  const edges: Edges[] = [];
  const impls = new Map<string, OpImpl>(); // 100,000 ops often share a few fn references
  const names = Object.keys(rawOps);
  const position = new Map<string, number>();
  for (let i = 0; i < names.length; i++) position.set(names[i] as string, i);
  if (names.length === 0) problems.push({ path: ['ops'], message: 'expected at least one op, got an empty map' });
  for (let at = 0; at < names.length; at++) {
    const name = names[at] as string;
    if (!NAME_RE.test(name)) problems.push(badName(['ops', name], 'op', name));
    const raw = rawOps[name];
    if (isPlainValidOp(raw)) {
      ops.set(name, normaliseOp(name, raw, baseDir, impls));
      edgeOps.push(name);
      edgeAt.push(at);
      edges.push(raw);
      continue;
    }
    const parsed = opSchema.safeParse(raw, { error: errorMap });
    if (parsed.success) {
      ops.set(name, normaliseOp(name, parsed.data, baseDir, impls));
      edgeOps.push(name);
      edgeAt.push(at);
      edges.push(parsed.data);
    } else {
      problems.push(...issuesToProblems(parsed.error.issues, raw, opSchema, ['ops', name]));
      const valid = validEdges(raw); // still check the references of an op with other problems
      if (valid) {
        edgeOps.push(name);
        edgeAt.push(at);
        edges.push(valid);
      }
    }
  }
  const refs: Refs = { position, rawOps, problems, declaredInOrder: true, at: 0 };
  for (let i = 0; i < edges.length; i++) {
    refs.at = edgeAt[i] as number;
    checkRefs(edgeOps[i] as string, edges[i] as Edges, refs);
  }
  return { ops, problems, declaredInOrder: refs.declaredInOrder };
}

function badName(path: PathSeg[], what: string, name: string): PathProblem {
  const hint = nameHint(name);
  const message = `invalid ${what} name ${JSON.stringify(name)}: expected letters, digits and underscores`;
  return { path, atKey: true, message, ...(hint ? { hint } : {}) };
}

function validEdges(raw: unknown): Edges | undefined {
  if (!isPlainMap(raw)) return undefined;
  const ins = insSchema.safeParse(raw.ins ?? []);
  const deps = depsSchema.safeParse(raw.deps ?? []);
  return ins.success && deps.success ? { ins: ins.data, deps: deps.data } : undefined;
}

/**
 * The parsed document's own objects are reused (tags, config, deps) rather than copied, ops
 * with the same `fn` share one impl, and ops without tags, config, deps or ins share one frozen
 * empty value: at 100,000 ops every copy costs tens of milliseconds. A definition is read-only.
 */
function normaliseOp(name: string, raw: RawOp, baseDir: string, impls: Map<string, OpImpl>): OpDefinition {
  let impl: OpImpl | undefined;
  if (raw.fn !== undefined) {
    impl = impls.get(raw.fn);
    if (!impl) {
      const { module, exportName } = parseFnRef(raw.fn);
      impls.set(raw.fn, (impl = { kind: 'fn', module: resolve(baseDir, module), exportName }));
    }
  } else {
    impl = { kind: 'command', argv: raw.command ?? [] };
  }
  const r = raw.retry;
  const op: OpDefinition = {
    name,
    impl,
    tags: raw.tags ?? (EMPTY_MAP as Tags),
    config: (raw.config as JsonObject | undefined) ?? (EMPTY_MAP as JsonObject),
    retry: r
      ? { maxRetries: r.max_retries, delaySeconds: r.delay ?? 0, backoff: r.backoff ?? null, jitter: r.jitter ?? null }
      : null,
    ins: insRecord(raw.ins),
    deps: raw.deps ?? (EMPTY_LIST as string[]),
  };
  if (raw.description !== undefined) op.description = raw.description;
  if (raw.timeout_seconds !== undefined) op.timeoutSeconds = raw.timeout_seconds;
  return op;
}

const EMPTY_MAP: Readonly<Record<string, never>> = Object.freeze({});
const EMPTY_LIST: readonly string[] = Object.freeze([]);
const EMPTY_INS = Object.freeze(Object.create(null)) as Record<string, string>;

/**
 * input name -> op name, without a prototype: input names such as `constructor` or `__proto__`
 * are valid, and each op's unique keys would otherwise give V8 one hidden class per op.
 */
function insRecord(ins: RawOp['ins']): Record<string, string> {
  if (ins === undefined || (Array.isArray(ins) && ins.length === 0)) return EMPTY_INS;
  const out = Object.create(null) as Record<string, string>;
  if (Array.isArray(ins)) for (const up of ins) out[up] = up;
  else if (ins) for (const input of Object.keys(ins)) out[input] = ins[input] as string;
  return out;
}

/** What checking an op's references needs and finds. */
interface Refs {
  /** Each op's position in declaration order. */
  position: ReadonlyMap<string, number>;
  rawOps: Record<string, unknown>;
  problems: PathProblem[];
  /** Cleared when a reference names an op declared at or after `at`. */
  declaredInOrder: boolean;
  /** Position of the op being checked. */
  at: number;
}

/** Every `ins`/`deps` entry names another op of the job; no name twice in one list. */
function checkRefs(name: string, op: Edges, refs: Refs): void {
  if (Array.isArray(op.ins)) checkList(name, 'ins', op.ins, refs);
  else if (op.ins) {
    for (const input of Object.keys(op.ins)) {
      if (!NAME_RE.test(input)) refs.problems.push(badName(['ops', name, 'ins', input], 'input', input));
      checkRef(name, op.ins[input] as string, 'ins', input, refs);
    }
  }
  if (op.deps) checkList(name, 'deps', op.deps, refs);
}

function checkList(name: string, field: 'ins' | 'deps', ups: readonly string[], refs: Refs): void {
  for (let i = 0; i < ups.length; i++) {
    const up = ups[i] as string;
    // Lists are short: a linear look-back beats allocating a Set for each of 100,000 ops.
    if (ups.indexOf(up) < i) {
      refs.problems.push({ path: ['ops', name, field, i], message: `duplicate ${field === 'ins' ? 'input' : 'dep'} "${up}"` });
    }
    checkRef(name, up, field, i, refs);
  }
}

/** `field` and `key` locate the reference; its path is only built for a problem. */
function checkRef(name: string, up: string, field: 'ins' | 'deps', key: PathSeg, refs: Refs): void {
  const { problems } = refs;
  const at = refs.position.get(up);
  if (at !== undefined && at < refs.at) return;
  refs.declaredInOrder = false;
  if (up === name) {
    problems.push({ path: ['ops', name, field, key], message: `op "${name}" cannot depend on itself` });
  } else if (at === undefined) {
    // Hints cost a scan of every op name: only for the problems that will be shown.
    const hint = problems.length < MAX_PROBLEMS ? opHint(up, refs.rawOps) : {};
    problems.push({ path: ['ops', name, field, key], message: `unknown op ${JSON.stringify(up)}`, ...hint });
  }
}

const opNames = new WeakMap<object, string[]>();
function opHint(name: string, rawOps: Record<string, unknown>): { hint?: string } {
  let names = opNames.get(rawOps);
  if (!names) opNames.set(rawOps, (names = Object.keys(rawOps)));
  const hint = choiceHint(name, names, "the job's ops are");
  return hint ? { hint } : {};
}
