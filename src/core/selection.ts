/**
 * Dagster's op-selection syntax. A query is a comma-separated union of clauses; a clause is an op
 * name with optional `*` (all) or `+`s (that many hops) before it for ancestors and after it for
 * descendants; `*` alone selects every op. Unlike Dagster, malformed clauses and unknown ops are
 * reported precisely, every problem of every query at once.
 */
import { InputError, type Problem } from '../errors.js';
import { graphOf, markReachable, scratchFor } from './graph.js';
import { didYouMean } from './suggest.js';
import type { JobDefinition, OpDefinition } from './types.js';

export type SelectionClause = { op: string; up: number | 'all'; down: number | 'all' } | { all: true };

/**
 * What `selectOps` returns: a plain Set of op names that also remembers, for `buildPlan`, which
 * graph indices it holds, so planning skips one name lookup per op. Any change drops the memo.
 */
export class OpSelection extends Set<string> {
  #memo: { ops: ReadonlyMap<string, OpDefinition>; chosen: Uint8Array | 'all' } | undefined;

  // No iterable: Set's constructor would call `add` before `#memo` exists.
  constructor() {
    super();
  }

  /** The remembered selection if it was made for `ops` and not changed since. */
  marksFor(ops: ReadonlyMap<string, OpDefinition>): Uint8Array | 'all' | undefined {
    return this.#memo?.ops === ops ? this.#memo.chosen : undefined;
  }

  remember(ops: ReadonlyMap<string, OpDefinition>, chosen: Uint8Array | 'all'): this {
    this.#memo = { ops, chosen };
    return this;
  }

  override add(name: string): this {
    this.#memo = undefined;
    return super.add(name);
  }

  override delete(name: string): boolean {
    this.#memo = undefined;
    return super.delete(name);
  }

  override clear(): void {
    this.#memo = undefined;
    super.clear();
  }
}

interface ParsedClause {
  clause: SelectionClause;
  /** The trimmed clause as written, for messages. */
  text: string;
}

const NAME = /^[A-Za-z0-9_]+$/;

/** Parses one query; throws InputError('SELECTION_INVALID') listing every malformed clause. */
export function parseSelectionQuery(query: string): SelectionClause[] {
  const { clauses, problems } = parseQuery(query);
  if (problems.length > 0) throw new InputError('SELECTION_INVALID', problems);
  return clauses.map((c) => c.clause);
}

/**
 * The ops the queries select (their union), in declaration order; no queries selects every op.
 * Throws InputError('SELECTION_INVALID') with every malformed clause and unknown op.
 */
export function selectOps(job: Pick<JobDefinition, 'name' | 'ops'>, queries: readonly string[]): OpSelection {
  const problems: Problem[] = [];
  const clauses: ParsedClause[] = [];
  for (const query of queries) {
    const parsed = parseQuery(query);
    clauses.push(...parsed.clauses);
    problems.push(...parsed.problems);
  }
  for (const { clause, text } of clauses) {
    if ('all' in clause || job.ops.has(clause.op)) continue;
    const hint = didYouMean(clause.op, job.ops.keys());
    problems.push({
      message: `unknown op "${clause.op}" in clause "${text}" of job "${job.name}"${hint ? `; ${hint}` : ''}`,
    });
  }
  if (problems.length > 0) throw new InputError('SELECTION_INVALID', problems);

  if (queries.length === 0 || clauses.some((c) => 'all' in c.clause)) {
    const all = new OpSelection();
    for (const name of job.ops.keys()) all.add(name);
    return all.remember(job.ops, 'all');
  }

  const graph = graphOf(job.ops);
  const chosen = new Uint8Array(graph.names.length);
  const scratch = scratchFor(graph.names.length);
  for (const { clause } of clauses) {
    if ('all' in clause) continue;
    const from = graph.index.get(clause.op) as number; // checked above
    markReachable(graph.upStart, graph.upList, from, hops(clause.up), chosen, scratch);
    markReachable(graph.downStart, graph.downList, from, hops(clause.down), chosen, scratch);
  }
  const result = new OpSelection();
  for (let i = 0; i < chosen.length; i++) if (chosen[i] === 1) result.add(graph.names[i] as string);
  return result.remember(job.ops, chosen);
}

function hops(n: number | 'all'): number {
  return n === 'all' ? Infinity : n;
}

function parseQuery(query: string): { clauses: ParsedClause[]; problems: Problem[] } {
  const clauses: ParsedClause[] = [];
  const problems: Problem[] = [];
  if (query.trim() === '') {
    problems.push({
      message:
        `selection "${query}" is empty; ` +
        'write op names such as "my_op", "*my_op" or "my_op+", or "*" for every op',
    });
    return { clauses, problems };
  }
  query.split(',').forEach((raw, i) => {
    const text = raw.trim();
    const result = parseClause(text);
    if (Array.isArray(result)) {
      const where = text === '' ? `clause ${i + 1} of selection "${query}"` : `clause "${text}"`;
      for (const what of result) problems.push({ message: `${where} ${what}` });
    } else {
      clauses.push({ clause: result, text });
    }
  });
  return { clauses, problems };
}

/** A clause, or what is wrong with it (each phrased to follow `clause "..."`). */
function parseClause(text: string): SelectionClause | string[] {
  if (text === '') return ['is empty; remove the extra ","'];
  if (text === '*') return { all: true };
  if (/\s/.test(text)) return ['contains a space; separate clauses with ","'];

  const before = /^[*+]*/.exec(text)?.[0] ?? '';
  const after = /[*+]*$/.exec(text.slice(before.length))?.[0] ?? '';
  const name = text.slice(before.length, text.length - after.length);
  if (name === '') return ['has no op name; write e.g. "+my_op" or "my_op+", or "*" alone for every op'];

  const wrong: string[] = [];
  if (!NAME.test(name)) {
    const bad = [...new Set(name.replace(/[A-Za-z0-9_]/g, ''))];
    if (bad.some((c) => c === '*' || c === '+')) {
      wrong.push(`has "*" or "+" inside the op name "${name}"; they go only before or after it`);
    } else {
      const list = bad.map((c) => `"${c}"`).join(', ');
      const chars = `character${bad.length > 1 ? 's' : ''} ${list}`;
      wrong.push(`contains invalid ${chars}; op names use only letters, digits and "_"`);
    }
  }
  const up = parseSide(before, 'before', 'ancestors', wrong);
  const down = parseSide(after, 'after', 'descendants', wrong);
  if (wrong.length > 0 || up === undefined || down === undefined) return wrong;
  return { op: name, up, down };
}

/** `*` -> 'all', `+`*k -> k, '' -> 0; otherwise records what is wrong and returns undefined. */
function parseSide(
  side: string,
  where: 'before' | 'after',
  kin: 'ancestors' | 'descendants',
  wrong: string[],
): number | 'all' | undefined {
  const stars = side.split('*').length - 1;
  if (stars > 0 && stars < side.length) {
    wrong.push(`mixes "+" and "*" ${where} the op name; use "*" for all ${kin} or one "+" per hop`);
    return undefined;
  }
  if (stars > 1) {
    wrong.push(`has more than one "*" ${where} the op name; a single "*" selects all ${kin}`);
    return undefined;
  }
  return stars === 1 ? 'all' : side.length;
}
