import { describe, expect, it } from 'vitest';
import { buildPlan, upstreamOf } from '../src/core/plan.js';
import { deepMerge } from '../src/core/merge.js';
import { selectOps } from '../src/core/selection.js';
import { InputError } from '../src/errors.js';
import type { JobDefinition, JsonObject, OpDefinition, RunConfig } from '../src/core/types.js';

type OpSpec = Partial<Pick<OpDefinition, 'ins' | 'deps' | 'config' | 'tags' | 'retry'>>;

function op(name: string, spec: OpSpec = {}): OpDefinition {
  return {
    name,
    impl: { kind: 'command', argv: ['true'] },
    tags: spec.tags ?? {},
    config: spec.config ?? {},
    retry: spec.retry ?? null,
    ins: spec.ins ?? {},
    deps: spec.deps ?? [],
  };
}

function job(name: string, specs: Record<string, OpSpec>): JobDefinition {
  return jobOf(name, Object.entries(specs).map(([n, s]) => op(n, s)));
}

function jobOf(name: string, ops: OpDefinition[]): JobDefinition {
  const byName = new Map(ops.map((o) => [o.name, o]));
  return { name, tags: {}, ops: byName, sourcePath: '/x/job.yaml', baseDir: '/x', hash: '0' };
}

const noConfig: Pick<RunConfig, 'ops'> = { ops: {} };
const keys = (j: JobDefinition, selected?: string[], rc = noConfig): string[] =>
  buildPlan(j, selected && new Set(selected), rc).steps.map((s) => s.key);

function thrown(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected an InputError');
}

/** Declared out of topological order on purpose: ETL with a report op. */
const etl = job('etl', {
  report: { ins: { clean: 'clean', stats: 'stats' }, deps: ['notify_start'] },
  extract: {},
  clean: { ins: { raw: 'extract' }, config: { threshold: 1, opts: { a: 1, b: [1, 2] } } },
  stats: { ins: { raw: 'extract' }, deps: ['extract'] },
  notify_start: {},
});

describe('upstreamOf', () => {
  it('lists ins upstreams then deps, deduped', () => {
    expect(upstreamOf(op('x', { ins: { a: 'p', b: 'q', c: 'p' }, deps: ['r', 'q'] }))).toEqual(['p', 'q', 'r']);
    expect(upstreamOf(op('x'))).toEqual([]);
  });
});

describe('buildPlan order', () => {
  it('plans every op in topological order when nothing is selected', () => {
    const plan = buildPlan(etl, undefined, noConfig);
    expect(plan.job).toBe('etl');
    expect(plan.steps.map((s) => s.key)).toEqual(['extract', 'clean', 'stats', 'notify_start', 'report']);
    expect(plan.steps.every((s) => s.key === s.op)).toBe(true);
  });

  it('keeps declaration order when it is already topological', () => {
    const j = job('j', { a: {}, c: { ins: { x: 'a' } }, b: {}, d: { deps: ['b'] } });
    expect(keys(j)).toEqual(['a', 'c', 'b', 'd']);
  });

  it('breaks ties by declaration order', () => {
    const j = job('j', { z: {}, y: {}, x: { deps: ['w'] }, w: {}, v: {} });
    expect(keys(j)).toEqual(['z', 'y', 'w', 'x', 'v']);
  });

  it('orders a diamond', () => {
    const j = job('j', {
      sink: { ins: { l: 'left', r: 'right' } },
      right: { ins: { x: 'src' } },
      left: { ins: { x: 'src' } },
      src: {},
    });
    const plan = buildPlan(j, undefined, noConfig);
    expect(plan.steps.map((s) => s.key)).toEqual(['src', 'right', 'left', 'sink']);
    expect(plan.steps[3]?.upstream).toEqual(['left', 'right']);
    expect(plan.steps[3]?.inputs).toEqual({ l: { fromStep: 'left' }, r: { fromStep: 'right' } });
  });

  it('throws DEPENDENCY_CYCLE if a cycle remains', () => {
    const j = job('loop', {
      a: { ins: { x: 'c' } },
      b: { ins: { x: 'a' } },
      c: { deps: ['b'] },
      d: {},
      e: { deps: ['c'] },
    });
    const err = thrown(() => buildPlan(j, undefined, noConfig));
    expect(err.code).toBe('DEPENDENCY_CYCLE');
    expect(err.problems[0]?.message).toBe(
      'job "loop" has a dependency cycle: ops "a", "b", "c", "e" are in or behind it and can never run',
    );
  });

  it('treats an op that depends on itself as a cycle', () => {
    const err = thrown(() => buildPlan(job('self', { a: {}, b: { deps: ['b'] } }), undefined, noConfig));
    expect(err.code).toBe('DEPENDENCY_CYCLE');
    expect(err.problems[0]?.message).toContain('ops "b" are in or behind it');
  });

  it('plans a cyclic job when the selection breaks the cycle', () => {
    const j = job('loop', { a: { deps: ['b'] }, b: { deps: ['a'] } });
    expect(keys(j, ['a'])).toEqual(['a']);
  });
});

describe('buildPlan steps', () => {
  it('wires inputs and upstream between selected steps', () => {
    const plan = buildPlan(etl, undefined, noConfig);
    const report = plan.steps.find((s) => s.key === 'report');
    expect(report?.upstream).toEqual(['clean', 'stats', 'notify_start']);
    expect(report?.inputs).toEqual({ clean: { fromStep: 'clean' }, stats: { fromStep: 'stats' } });
    // `extract` is both an input and a dep of stats: one upstream entry.
    expect(plan.steps.find((s) => s.key === 'stats')?.upstream).toEqual(['extract']);
  });

  it('drops unselected deps', () => {
    const plan = buildPlan(etl, selectOps(etl, ['*report']), noConfig);
    expect(plan.steps).toHaveLength(5);
    const sub = buildPlan(etl, new Set(['extract', 'clean', 'stats', 'report']), noConfig);
    expect(sub.steps.map((s) => s.key)).toEqual(['extract', 'clean', 'stats', 'report']);
    expect(sub.steps[3]?.upstream).toEqual(['clean', 'stats']);
  });

  it('takes inputs of unselected upstreams from run config, including null', () => {
    const rc: Pick<RunConfig, 'ops'> = { ops: { report: { inputs: { clean: null, stats: { rows: [1, 2] } } } } };
    const plan = buildPlan(etl, new Set(['report']), rc);
    expect(plan.steps).toEqual([
      {
        key: 'report',
        op: 'report',
        upstream: [],
        inputs: { clean: { value: null }, stats: { value: { rows: [1, 2] } } },
        config: {},
        tags: {},
        retry: null,
      },
    ]);
  });

  it('mixes step inputs and run-config inputs', () => {
    const rc: Pick<RunConfig, 'ops'> = { ops: { report: { inputs: { stats: 0, clean: 'ignored' } } } };
    const plan = buildPlan(etl, new Set(['extract', 'clean', 'report']), rc);
    expect(plan.steps.at(-1)?.inputs).toEqual({ clean: { fromStep: 'clean' }, stats: { value: 0 } });
    expect(plan.steps.at(-1)?.upstream).toEqual(['clean']);
  });

  it('reports every missing input with its run-config path', () => {
    const err = thrown(() => buildPlan(etl, new Set(['clean', 'report']), { ops: { report: { inputs: {} } } }));
    expect(err.code).toBe('PLAN_INVALID');
    expect(err.problems).toEqual([
      {
        path: 'ops.report.inputs.stats',
        message:
          'op "report" needs input "stats" from op "stats", which is not selected; provide it in run config at ops.report.inputs.stats',
      },
      {
        path: 'ops.clean.inputs.raw',
        message:
          'op "clean" needs input "raw" from op "extract", which is not selected; provide it in run config at ops.clean.inputs.raw',
      },
    ]);
  });

  it('uses the exact message from the docs', () => {
    const err = thrown(() => buildPlan(etl, new Set(['report', 'stats']), noConfig));
    expect(err.problems.map((p) => p.message)).toContain(
      'op "report" needs input "clean" from op "clean", which is not selected; provide it in run config at ops.report.inputs.clean',
    );
    expect(err.problems.find((p) => p.message.includes('"clean" from'))?.path).toBe('ops.report.inputs.clean');
  });

  it('only reads own properties of run config', () => {
    const j = job('j', { src: {}, constructor: { ins: { toString: 'src' } } });
    const err = thrown(() => buildPlan(j, new Set(['constructor']), noConfig));
    expect(err.problems[0]?.path).toBe('ops.constructor.inputs.toString');
    const ok = buildPlan(j, new Set(['constructor']), { ops: { constructor: { inputs: { toString: 1 } } } });
    expect(ok.steps[0]?.inputs).toEqual({ toString: { value: 1 } });
  });

  it('rejects a selected name that is not an op', () => {
    const err = thrown(() => buildPlan(etl, new Set(['extract', 'nope']), noConfig));
    expect(err.code).toBe('PLAN_INVALID');
    expect(err.problems[0]?.message).toBe('selected op "nope" is not an op of job "etl"');
  });

  it('merges run config over op config and copies tags and retry', () => {
    const retry = { maxRetries: 2, delaySeconds: 1, backoff: 'exponential' as const, jitter: null };
    const j = job('j', {
      a: { config: { threshold: 1, opts: { a: 1, b: [1, 2] }, keep: 'x' }, tags: { team: 'data' }, retry },
    });
    const rc: Pick<RunConfig, 'ops'> = { ops: { a: { config: { threshold: 5, opts: { b: [3], c: null } } } } };
    const step = buildPlan(j, undefined, rc).steps[0];
    expect(step?.config).toEqual({ threshold: 5, opts: { a: 1, b: [3], c: null }, keep: 'x' });
    expect(step?.tags).toEqual({ team: 'data' });
    expect(step?.retry).toEqual(retry);
    // The job's defaults are not modified.
    expect(j.ops.get('a')?.config).toEqual({ threshold: 1, opts: { a: 1, b: [1, 2] }, keep: 'x' });
  });
});

describe('buildPlan with a selectOps result', () => {
  it('uses the selection as selected', () => {
    const rc: Pick<RunConfig, 'ops'> = { ops: { clean: { inputs: { raw: 1 } }, report: { inputs: { stats: 2 } } } };
    // A copy is a plain Set: the name-lookup path.
    expect(keys(etl, [...selectOps(etl, ['clean+'])], rc)).toEqual(['clean', 'report']);
    const sel = selectOps(etl, ['*stats']);
    expect(buildPlan(etl, sel, noConfig).steps.map((s) => s.key)).toEqual(['extract', 'stats']);
  });

  it('sees changes made to the set after selectOps', () => {
    const sel = selectOps(etl, ['*stats']);
    sel.add('notify_start');
    expect(buildPlan(etl, sel, noConfig).steps.map((s) => s.key)).toEqual(['extract', 'stats', 'notify_start']);
    sel.delete('extract');
    const err = thrown(() => buildPlan(etl, sel, noConfig));
    expect(err.problems[0]?.path).toBe('ops.stats.inputs.raw');
    const all = selectOps(etl, []);
    all.clear();
    all.add('extract');
    expect(buildPlan(etl, all, noConfig).steps.map((s) => s.key)).toEqual(['extract']);
  });

  it('does not reuse a selection made for another job', () => {
    const other = job('other', { extract: {}, stats: {} });
    const sel = selectOps(other, ['*']);
    expect(buildPlan(etl, sel, { ops: { stats: { inputs: { raw: 0 } } } }).steps.map((s) => s.key)).toEqual([
      'extract',
      'stats',
    ]);
  });
});

describe('graph edges', () => {
  it('match upstreamOf for every op, unknown names aside', () => {
    const j = job('j', {
      a: {},
      b: { ins: { x: 'a', y: 'a' }, deps: ['a'] },
      c: { ins: { p: 'b', q: 'ghost' }, deps: ['a', 'b', 'a'] },
      d: { deps: Array.from({ length: 40 }, (_, i) => (i % 2 ? 'a' : 'c')) },
    });
    for (const step of buildPlan(j, undefined, { ops: { c: { inputs: { q: 0 } } } }).steps) {
      const op = j.ops.get(step.op) as OpDefinition;
      expect(step.upstream).toEqual(upstreamOf(op).filter((u) => j.ops.has(u)));
    }
    expect(upstreamOf(j.ops.get('d') as OpDefinition)).toEqual(['c', 'a']);
  });
});

describe('deepMerge', () => {
  it('merges objects recursively; arrays, scalars and null replace', () => {
    const base: JsonObject = { a: { b: 1, c: [1, 2], d: { e: 1 } }, f: 'x', g: { h: 1 } };
    const over: JsonObject = { a: { c: [3], d: { z: 2 } }, f: { now: 'object' }, g: null, i: [{}] };
    expect(deepMerge(base, over)).toEqual({
      a: { b: 1, c: [3], d: { e: 1, z: 2 } },
      f: { now: 'object' },
      g: null,
      i: [{}],
    });
  });

  it('copies rather than shares and leaves its arguments alone', () => {
    const base: JsonObject = { a: { b: [1] } };
    const over: JsonObject = { c: { d: [2] } };
    const out = deepMerge(base, over);
    expect(out.a).not.toBe(base.a);
    expect(out.c).not.toBe(over.c);
    expect(base).toEqual({ a: { b: [1] } });
    expect(over).toEqual({ c: { d: [2] } });
    expect(deepMerge(base, undefined)).toEqual(base);
  });

  it('keeps __proto__ as an ordinary key', () => {
    const over = JSON.parse('{"__proto__": {"polluted": true}}') as JsonObject;
    const out = deepMerge({}, over);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('100,000 ops', () => {
  const N = 100_000;
  const name = (i: number): string => `op_${i}`;

  it('plans a chain declared in reverse', () => {
    const ops: OpDefinition[] = [];
    for (let i = N - 1; i >= 0; i--) ops.push(op(name(i), i === 0 ? {} : { ins: { x: name(i - 1) } }));
    const j = jobOf('chain', ops);
    const plan = buildPlan(j, selectOps(j, [`*${name(N - 1)}`]), noConfig);
    expect(plan.steps).toHaveLength(N);
    expect(plan.steps[0]?.key).toBe(name(0));
    expect(plan.steps.at(-1)?.key).toBe(name(N - 1));
    expect(plan.steps.at(-1)?.upstream).toEqual([name(N - 2)]);

    const half = buildPlan(j, selectOps(j, [`${name(N / 2)}*`]), { ops: { [name(N / 2)]: { inputs: { x: 1 } } } });
    expect(half.steps).toHaveLength(N / 2);
    expect(half.steps[0]?.inputs).toEqual({ x: { value: 1 } });
  });

  it('plans a wide DAG: one source, fan-out, fan-in', () => {
    const ops: OpDefinition[] = [op('src')];
    for (let i = 0; i < N - 2; i++) ops.push(op(name(i), { ins: { x: 'src' } }));
    ops.push(op('sink', { deps: ops.slice(1).map((o) => o.name) }));
    const j = jobOf('wide', ops);
    const plan = buildPlan(j, selectOps(j, ['src*']), noConfig);
    expect(plan.steps).toHaveLength(N);
    expect(plan.steps[0]?.key).toBe('src');
    expect(plan.steps[1]?.key).toBe(name(0));
    expect(plan.steps.at(-1)?.key).toBe('sink');
    expect(plan.steps.at(-1)?.upstream).toHaveLength(N - 2);
  });
});
