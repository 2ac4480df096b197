import { describe, expect, it } from 'vitest';
import { parseSelectionQuery, selectOps } from '../src/core/selection.js';
import { InputError } from '../src/errors.js';
import type { JobDefinition, OpDefinition } from '../src/core/types.js';

type OpSpec = { ins?: Record<string, string>; deps?: string[] };

function job(name: string, specs: Record<string, OpSpec>): JobDefinition {
  const ops = new Map<string, OpDefinition>();
  for (const [op, spec] of Object.entries(specs)) {
    ops.set(op, {
      name: op,
      impl: { kind: 'command', argv: ['true'] },
      tags: {},
      config: {},
      retry: null,
      ins: spec.ins ?? {},
      deps: spec.deps ?? [],
    });
  }
  return { name, tags: {}, ops, sourcePath: '/x/job.yaml', baseDir: '/x', hash: '0' };
}

/** return_one -> add_nums <- return_two; add_nums -> multiply_two -> add_one */
const math = job('math', {
  return_one: {},
  return_two: {},
  add_nums: { ins: { a: 'return_one', b: 'return_two' } },
  multiply_two: { ins: { n: 'add_nums' } },
  add_one: { ins: { n: 'multiply_two' } },
});

const sel = (queries: string[], j: JobDefinition = math): string[] => [...selectOps(j, queries)].sort();

/** The messages of the InputError that `fn` throws, asserting its code. */
function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    const err = e as InputError;
    expect(err.code).toBe('SELECTION_INVALID');
    return err.problems.map((p) => p.message);
  }
  throw new Error('expected an InputError');
}

describe('parseSelectionQuery', () => {
  it('parses names, ancestors and descendants', () => {
    expect(parseSelectionQuery('a')).toEqual([{ op: 'a', up: 0, down: 0 }]);
    expect(parseSelectionQuery('*a')).toEqual([{ op: 'a', up: 'all', down: 0 }]);
    expect(parseSelectionQuery('a*')).toEqual([{ op: 'a', up: 0, down: 'all' }]);
    expect(parseSelectionQuery('++a+++')).toEqual([{ op: 'a', up: 2, down: 3 }]);
    expect(parseSelectionQuery('*Op_9*')).toEqual([{ op: 'Op_9', up: 'all', down: 'all' }]);
    expect(parseSelectionQuery('*')).toEqual([{ all: true }]);
  });

  it('splits on commas and trims each clause', () => {
    expect(parseSelectionQuery(' *a , b+ ,*')).toEqual([
      { op: 'a', up: 'all', down: 0 },
      { op: 'b', up: 0, down: 1 },
      { all: true },
    ]);
  });

  it('says which side mixes + and *', () => {
    expect(problems(() => parseSelectionQuery('+*a'))).toEqual([
      'clause "+*a" mixes "+" and "*" before the op name; use "*" for all ancestors or one "+" per hop',
    ]);
    expect(problems(() => parseSelectionQuery('*+a'))[0]).toContain('clause "*+a" mixes "+" and "*" before');
    expect(problems(() => parseSelectionQuery('a+*'))[0]).toContain('clause "a+*" mixes "+" and "*" after');
  });

  it('rejects more than one *', () => {
    expect(problems(() => parseSelectionQuery('a**'))).toEqual([
      'clause "a**" has more than one "*" after the op name; a single "*" selects all descendants',
    ]);
    expect(problems(() => parseSelectionQuery('**a'))[0]).toContain('more than one "*" before');
  });

  it('rejects a space inside a clause', () => {
    expect(problems(() => parseSelectionQuery('a b'))).toEqual([
      'clause "a b" contains a space; separate clauses with ","',
    ]);
  });

  it('rejects empty clauses and empty queries', () => {
    expect(problems(() => parseSelectionQuery('a,,b'))).toEqual([
      'clause 2 of selection "a,,b" is empty; remove the extra ","',
    ]);
    expect(problems(() => parseSelectionQuery(','))).toEqual([
      'clause 1 of selection "," is empty; remove the extra ","',
      'clause 2 of selection "," is empty; remove the extra ","',
    ]);
    expect(problems(() => parseSelectionQuery('a,'))[0]).toContain('clause 2 of selection "a," is empty');
    for (const q of ['', '   ']) {
      expect(problems(() => parseSelectionQuery(q))).toEqual([
        `selection "${q}" is empty; write op names such as "my_op", "*my_op" or "my_op+", or "*" for every op`,
      ]);
    }
  });

  it('rejects invalid characters, naming them', () => {
    expect(problems(() => parseSelectionQuery('a-b'))).toEqual([
      'clause "a-b" contains invalid character "-"; op names use only letters, digits and "_"',
    ]);
    expect(problems(() => parseSelectionQuery('a.b/c.d'))[0]).toContain('invalid characters ".", "/"');
    expect(problems(() => parseSelectionQuery('a*b'))).toEqual([
      'clause "a*b" has "*" or "+" inside the op name "a*b"; they go only before or after it',
    ]);
  });

  it('rejects a clause without an op name', () => {
    for (const q of ['+', '++', '**', '+*', '*+']) {
      expect(problems(() => parseSelectionQuery(q))).toEqual([
        `clause "${q}" has no op name; write e.g. "+my_op" or "my_op+", or "*" alone for every op`,
      ]);
    }
  });

  it('collects every problem of a query', () => {
    const msgs = problems(() => parseSelectionQuery('+*a, ok ,a b,,x-y*+'));
    expect(msgs).toHaveLength(5);
    expect(msgs[0]).toContain('clause "+*a" mixes');
    expect(msgs[1]).toContain('clause "a b" contains a space');
    expect(msgs[2]).toContain('clause 4 of selection');
    expect(msgs[3]).toContain('clause "x-y*+" contains invalid character "-"');
    expect(msgs[4]).toContain('clause "x-y*+" mixes "+" and "*" after');
  });
});

describe('selectOps (Dagster examples)', () => {
  it('add_nums* selects add_nums and all descendants', () => {
    expect(sel(['add_nums*'])).toEqual(['add_nums', 'add_one', 'multiply_two']);
  });
  it('*add_nums+ selects all ancestors and one hop of descendants', () => {
    expect(sel(['*add_nums+'])).toEqual(['add_nums', 'multiply_two', 'return_one', 'return_two']);
  });
  it('*add_nums,return_one+ unions its clauses', () => {
    expect(sel(['*add_nums,return_one+'])).toEqual(['add_nums', 'return_one', 'return_two']);
  });
  it('+add_nums selects one hop of ancestors', () => {
    expect(sel(['+add_nums'])).toEqual(['add_nums', 'return_one', 'return_two']);
  });
  it('return_one++ selects two hops of descendants', () => {
    expect(sel(['return_one++'])).toEqual(['add_nums', 'multiply_two', 'return_one']);
  });
  it('* selects everything, alone or in a union', () => {
    expect(sel(['*'])).toHaveLength(5);
    expect(sel(['add_one, *'])).toHaveLength(5);
  });
});

describe('selectOps', () => {
  it('selects every op, in declaration order, when there are no queries', () => {
    expect([...selectOps(math, [])]).toEqual(['return_one', 'return_two', 'add_nums', 'multiply_two', 'add_one']);
  });

  it('returns the selection in declaration order', () => {
    expect([...selectOps(math, ['add_one', 'return_two', 'return_one'])]).toEqual([
      'return_one',
      'return_two',
      'add_one',
    ]);
  });

  it('selects a single op without neighbours', () => {
    expect(sel(['multiply_two'])).toEqual(['multiply_two']);
  });

  it('unions repeated queries', () => {
    expect(sel(['return_one', 'add_one'])).toEqual(['add_one', 'return_one']);
    expect(sel(['+add_nums', 'add_nums+'])).toEqual(['add_nums', 'multiply_two', 'return_one', 'return_two']);
    expect(sel(['add_nums', 'add_nums'])).toEqual(['add_nums']);
  });

  it('counts hops exactly and stops at the graph edge', () => {
    expect(sel(['++add_one'])).toEqual(['add_nums', 'add_one', 'multiply_two']);
    expect(sel(['+++add_one'])).toEqual(['add_nums', 'add_one', 'multiply_two', 'return_one', 'return_two']);
    expect(sel(['+++++++add_one'])).toHaveLength(5);
    expect(sel(['return_two+++++'])).toEqual(['add_nums', 'add_one', 'multiply_two', 'return_two']);
  });

  it('uses the shortest path for hop limits in a diamond with a shortcut', () => {
    // a -> b -> c -> d and a -> d: d is one hop from a.
    const j = job('j', { a: {}, b: { ins: { x: 'a' } }, c: { ins: { x: 'b' } }, d: { ins: { x: 'c', y: 'a' } } });
    expect(sel(['a+'], j)).toEqual(['a', 'b', 'd']);
    expect(sel(['+d'], j)).toEqual(['a', 'c', 'd']);
  });

  it('follows deps edges as well as ins', () => {
    const j = job('j', { extract: {}, load: { deps: ['extract'] }, report: { ins: { rows: 'load' } } });
    expect(sel(['*report'], j)).toEqual(['extract', 'load', 'report']);
    expect(sel(['extract*'], j)).toEqual(['extract', 'load', 'report']);
    expect(sel(['+load'], j)).toEqual(['extract', 'load']);
  });

  it('reports an unknown op with its clause, job and a suggestion', () => {
    expect(problems(() => selectOps(math, ['*add_num']))).toEqual([
      'unknown op "add_num" in clause "*add_num" of job "math"; did you mean "add_nums"?',
    ]);
  });

  it('reports an unknown op without a suggestion when nothing is close', () => {
    expect(problems(() => selectOps(math, ['zzzzzzzz']))).toEqual([
      'unknown op "zzzzzzzz" in clause "zzzzzzzz" of job "math"',
    ]);
  });

  it('collects syntax problems and unknown ops across all queries', () => {
    const msgs = problems(() => selectOps(math, ['add_one, mutliply_two+', 'a**', '*retrun_one']));
    expect(msgs).toEqual([
      'clause "a**" has more than one "*" after the op name; a single "*" selects all descendants',
      'unknown op "mutliply_two" in clause "mutliply_two+" of job "math"; did you mean "multiply_two"?',
      'unknown op "retrun_one" in clause "*retrun_one" of job "math"; did you mean "return_one"?',
    ]);
  });

  it('does not treat object prototype names as ops', () => {
    expect(problems(() => selectOps(math, ['constructor']))[0]).toContain('unknown op "constructor"');
  });
});
