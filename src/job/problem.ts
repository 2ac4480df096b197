/** Problems located by a path inside a parsed document, before they get a file and a position. */
import { didYouMean } from '../core/suggest.js';
import { redactCredentials } from '../redact.js';

export type PathSeg = string | number;

export interface PathProblem {
  path: PathSeg[];
  message: string;
  hint?: string;
  /** Point at the key rather than its value (unknown keys, bad names, duplicates). */
  atKey?: boolean;
  /** Not about a place in the file (e.g. the "... and 5 more problems" line). */
  nowhere?: boolean;
}

/** More than this many problems in one file is noise: the rest are summarised in one line. */
export const MAX_PROBLEMS = 100;

/** `ops.report.ins[1]` */
export function formatPath(path: readonly PathSeg[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

export function isPlainMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What a user would call the value, for "expected X, got Y" messages. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'an empty value';
  if (typeof v === 'string') {
    if (v === '') return 'an empty string';
    // A value echoed back must not reveal a password (a malformed Redis URL, say).
    const shown = redactCredentials(v);
    return JSON.stringify(shown.length > 60 ? `${shown.slice(0, 57)}...` : shown);
  }
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return '.nan';
    if (!Number.isFinite(v)) return v > 0 ? '.inf' : '-.inf';
    return String(v);
  }
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list';
  if (isPlainMap(v)) return Object.keys(v).length === 0 ? 'an empty map' : 'a map';
  return typeof v;
}

/** The value at `path` inside `root`, or undefined (own properties only). */
export function valueAt(root: unknown, path: readonly PathSeg[]): unknown {
  let cur = root;
  for (const seg of path) {
    if (Array.isArray(cur) && typeof seg === 'number') cur = cur[seg];
    else if (isPlainMap(cur) && Object.hasOwn(cur, seg)) cur = cur[seg];
    else return undefined;
  }
  return cur;
}

/** Whether every segment of `path` exists in `root`. */
export function hasPath(root: unknown, path: readonly PathSeg[]): boolean {
  let cur = root;
  for (const seg of path) {
    if (Array.isArray(cur) && typeof seg === 'number' && seg < cur.length) cur = cur[seg];
    else if (isPlainMap(cur) && Object.hasOwn(cur, seg)) cur = cur[seg];
    else return false;
  }
  return true;
}

/** Caps a problem list, replacing the tail by one summary line. */
export function capProblems(problems: PathProblem[]): PathProblem[] {
  if (problems.length <= MAX_PROBLEMS) return problems;
  const rest = problems.length - MAX_PROBLEMS;
  return [...problems.slice(0, MAX_PROBLEMS), { path: [], nowhere: true, message: `... and ${rest} more problem${rest === 1 ? '' : 's'}` }];
}


/** did-you-mean, else the full list when it is short. */
export function choiceHint(name: string, candidates: readonly string[], listLabel: string): string | undefined {
  return didYouMean(name, candidates) ?? (candidates.length <= 10 ? `${listLabel}: ${candidates.join(', ')}` : undefined);
}

/** The inverse of formatPath: `ops.report.ins[1]` -> ['ops', 'report', 'ins', 1]. */
export function parsePath(dotted: string): PathSeg[] {
  const out: PathSeg[] = [];
  for (const m of dotted.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : (m[1] as string));
  return out;
}
