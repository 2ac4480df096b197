import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { OpDefinition } from '../src/core/types.js';
import { InputError, type Problem } from '../src/errors.js';
import { findCycles } from '../src/job/find-cycle.js';
import { isPlainValidOp, opSchema } from '../src/job/job-schema.js';
import { loadJob, parseJob } from '../src/job/load-job.js';
import { formatPath, parsePath } from '../src/job/problem.js';
import { makeBigJobYaml } from './fixtures/make-big-job.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/jobs/${name}`, import.meta.url));
const tmp = () => mkdtempSync(join(tmpdir(), 'baton-load-job-'));

/** The InputError a call throws (sync or async), as code + problems. */
async function failure(run: () => unknown): Promise<{ code: string; problems: Problem[]; message: string }> {
  try {
    await run();
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    expect(err.message).not.toMatch(/\n\s+at |ZodError|"code":/);
    return { code: err.code, problems: err.problems, message: err.message };
  }
  throw new Error('expected an InputError');
}
const parse = (text: string) => () => parseJob(text, 'job.yaml', '/jobs');
const job = (ops: string) => `name: j\nops:\n${ops}`;

describe('loadJob: good files', () => {
  it('normalises the example job', async () => {
    const path = fixture('etl.yaml');
    const def = await loadJob(path);
    const dir = dirname(path);
    const { name, description, tags, sourcePath, baseDir } = def;
    expect({ name, description, tags, sourcePath, baseDir }).toEqual({
      name: 'nightly_etl',
      description: 'Nightly extract, clean, report and publish',
      tags: { team: 'data' },
      sourcePath: path,
      baseDir: dir,
    });
    expect(def.hash).toMatch(/^[0-9a-f]{64}$/);
    expect([...def.ops.keys()]).toEqual(['extract', 'clean', 'report', 'publish']);
    expect(def.ops.get('extract')).toEqual({
      name: 'extract',
      description: "Pull yesterday's orders",
      impl: { kind: 'fn', module: join(dir, 'ops/etl.mjs'), exportName: 'extract' },
      tags: { database: 'redshift' },
      config: { day: '2024-01-01' },
      retry: { maxRetries: 2, delaySeconds: 0.5, backoff: 'exponential', jitter: 'full' },
      ins: {},
      deps: [],
    } satisfies OpDefinition);
    const argv = ['node', 'scripts/clean.mjs', '--fast'];
    expect(def.ops.get('clean')).toEqual({ name: 'clean', impl: { kind: 'command', argv }, tags: {}, config: {}, retry: null, ins: {}, deps: [] });
    expect(def.ops.get('report')?.ins).toEqual({ extract: 'extract', clean: 'clean' });
    expect(def.ops.get('publish')?.deps).toEqual(['report']);
  });

  it('uses the default export without #, maps of inputs, aliases and retry defaults', async () => {
    const module = join(dirname(fixture('minimal.yaml')), 'ops/hello.mjs');
    expect((await loadJob(fixture('minimal.yaml'))).ops.get('hello')?.impl).toEqual({ kind: 'fn', module, exportName: 'default' });
    const def = await loadJob(fixture('named-inputs.yaml'));
    expect(def.ops.get('join')?.ins).toEqual({ left: 'orders', right: 'customers' });
    expect(def.ops.get('customers')?.tags).toEqual({ heavy: 'true' });
    expect(def.ops.get('customers')?.retry).toEqual({ maxRetries: 0, delaySeconds: 0, backoff: null, jitter: null });
    expect(def.ops.get('join')?.retry).toEqual({ maxRetries: 3, delaySeconds: 1, backoff: 'linear', jitter: 'plus_minus' });
    expect(def.ops.get('notify')?.impl).toEqual({ kind: 'command', argv: ['sh', '-c', 'echo done'] });
  });

  it('parseJob resolves modules against baseDir and names sourcePath there', () => {
    const def = parseJob(job('  a: { fn: ../lib/ops.mjs#a }\n'), 'job.yaml', '/srv/jobs');
    expect(def.sourcePath).toBe('/srv/jobs/job.yaml');
    expect(def.ops.get('a')?.impl).toEqual({ kind: 'fn', module: '/srv/lib/ops.mjs', exportName: 'a' });
  });

  it('hashes the document, not its layout or checkout directory', async () => {
    const a = 'name: j\nops:\n  a: { fn: ./x.mjs#a, tags: { k: v } }\n  b: { fn: ./x.mjs#b, ins: [a] }\n';
    const b = '# same job\nops:\n  a:\n    tags: {k: v}\n    fn: ./x.mjs#a\n  b:\n    ins: [ a ]\n    fn: ./x.mjs#b\nname: j\n';
    const [d1, d2] = [tmp(), tmp()];
    writeFileSync(join(d1, 'job.yaml'), a);
    writeFileSync(join(d2, 'job.yaml'), b);
    const [h1, h2] = [(await loadJob(join(d1, 'job.yaml'))).hash, (await loadJob(join(d2, 'job.yaml'))).hash];
    expect(h1).toBe(h2);
    expect(parseJob(a.replace('#b', '#c'), 'job.yaml', d1).hash).not.toBe(h1);
  });

  it('loads a generated 100,000-op job', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'big.yaml'), makeBigJobYaml(100_000));
    const def = await loadJob(join(dir, 'big.yaml'));
    expect(def.ops.size).toBe(100_000);
    expect(def.ops.get('op_99999')?.ins).toEqual({ op_99998: 'op_99998' });
  });
});

describe('parseJob: problems', () => {
  it('a YAML syntax error, at js-yaml mark', async () => {
    expect(await failure(parse('name: j\nops:\n  a: { fn: ./x.mjs\n  b: 1\n'))).toEqual({
      code: 'YAML_SYNTAX',
      problems: [{ file: 'job.yaml', line: 4, column: 3, message: 'invalid YAML: deficient indentation' }],
      message: 'job.yaml:4:3: invalid YAML: deficient indentation',
    });
  });

  it('an empty file', async () => {
    expect(await failure(parse('# just a comment\n\n'))).toMatchObject({
      code: 'JOB_INVALID',
      message: 'job.yaml: the file is empty: expected a job with "name" and "ops" (e.g. name: my_job, then ops: { hello: { fn: ./ops.mjs#hello } })',
    });
  });

  it('a top level that is not a map', async () => {
    expect((await failure(parse('- a\n- b\n'))).message).toBe(
      'job.yaml:1:1: expected a map with "name" and "ops" at the top level, got a list',
    );
    expect((await failure(parse('hello\n'))).message).toContain('at the top level, got "hello"');
  });

  it('unknown keys, with did-you-mean against the keys allowed there', async () => {
    const text = 'nmae: j\nops:\n  a:\n    fn: ./x.mjs\n    retry: { max_retries: 1, dealy: 2 }\n';
    expect((await failure(parse(text))).problems).toEqual([
      { file: 'job.yaml', line: 1, column: 1, path: 'nmae', message: 'unknown key "nmae"', hint: 'did you mean "name"?' },
      { file: 'job.yaml', line: 5, column: 30, path: 'ops.a.retry.dealy', message: 'unknown key "dealy"', hint: 'did you mean "delay"?' },
    ]);
    expect((await failure(parse(job('  a: { fn: ./x.mjs, zzz: 1 }\n')))).message).toBe(
      'job.yaml:3:21 at ops.a.zzz: unknown key "zzz" (allowed keys: fn, command, description, tags, config, retry, timeout_seconds, ins, deps)',
    );
  });

  it('wrong types say what was expected and what was found', async () => {
    const text = 'name: 5\ndescription: [x]\nops:\n  a: { fn: ./x.mjs, tags: { n: 1 }, config: 3, deps: b }\n  b: { fn: ./x.mjs }\n';
    expect((await failure(parse(text))).message.split('\n')).toEqual([
      'job.yaml:1:7 at name: expected a job name, got 5 (quote it: "5")',
      'job.yaml:2:14 at description: expected a string, got a list',
      'job.yaml:4:32 at ops.a.tags.n: expected a string tag value, got 1 (quote it: "1")',
      'job.yaml:4:45 at ops.a.config: expected a map of config values, got 3',
      'job.yaml:4:54 at ops.a.deps: expected a list of op names, got "b" (write it as a list: ["b"])',
    ]);
  });

  it('an op needs exactly one of fn and command', async () => {
    const text = job('  a: { fn: ./x.mjs, command: [ls] }\n  b: { description: nothing }\n');
    expect((await failure(parse(text))).message.split('\n')).toEqual([
      'job.yaml:3:3 at ops.a: expected "fn" or "command", got both (an op is either a JS/TS function (fn) or an argv (command))',
      'job.yaml:4:3 at ops.b: expected "fn" or "command", got neither (add fn: ./ops.mjs#name or command: [program, args...])',
    ]);
  });

  it('bad op and input names', async () => {
    const text = job('  load-orders: { fn: ./x.mjs }\n  b: { fn: ./x.mjs, ins: { "my input": load-orders } }\n');
    expect((await failure(parse(text))).message.split('\n')).toEqual([
      'job.yaml:3:3 at ops.load-orders: invalid op name "load-orders": expected letters, digits and underscores (try "load_orders")',
      'job.yaml:4:28 at ops.b.ins.my input: invalid input name "my input": expected letters, digits and underscores (try "my_input")',
    ]);
  });

  it('ins and deps must name ops of the job, not the op itself, once', async () => {
    const text = job(
      '  extract: { fn: ./x.mjs }\n  report: { fn: ./x.mjs, ins: [extrct, extract, extract], deps: [report, zzz] }\n',
    );
    expect((await failure(parse(text))).message.split('\n')).toEqual([
      'job.yaml:4:32 at ops.report.ins[0]: unknown op "extrct" (did you mean "extract"?)',
      'job.yaml:4:49 at ops.report.ins[2]: duplicate input "extract"',
      'job.yaml:4:66 at ops.report.deps[0]: op "report" cannot depend on itself',
      `job.yaml:4:74 at ops.report.deps[1]: unknown op "zzz" (the job's ops are: extract, report)`,
    ]);
  });

  it('duplicate op names and duplicate keys, every one', async () => {
    const text = job('  a: { fn: ./x.mjs }\n  b: { fn: ./x.mjs, fn: ./y.mjs }\n  a: { fn: ./z.mjs }\n');
    expect(await failure(parse(text))).toMatchObject({
      code: 'JOB_INVALID',
      problems: [
        { line: 4, column: 21, path: 'ops.b.fn', message: 'duplicate key "fn"', hint: 'first defined at line 4' },
        { line: 5, column: 3, path: 'ops.a', message: 'duplicate op name "a"', hint: 'first defined at line 3' },
      ],
    });
  });

  it('a dependency cycle', async () => {
    const text = job('  a: { fn: ./x.mjs, ins: [c] }\n  b: { fn: ./x.mjs, ins: [a] }\n  c: { fn: ./x.mjs, deps: [b] }\n');
    const hint = 'each op needs the one before it: remove one of these ins or deps';
    expect(await failure(parse(text))).toMatchObject({
      code: 'DEPENDENCY_CYCLE',
      problems: [{ file: 'job.yaml', line: 3, column: 3, path: 'ops.a', message: 'dependency cycle: a -> b -> c -> a', hint }],
    });
  });

  it('ops declared after the ops that need them load; a cycle among ops declared in order is still found', () => {
    const later = parse(job('  report: { fn: ./x.mjs, ins: [extract], deps: [clean] }\n  clean: { fn: ./x.mjs }\n  extract: { fn: ./x.mjs }\n'))();
    expect([...later.ops.keys()]).toEqual(['report', 'clean', 'extract']);
    // b naming c is the only reference to a later op, and it closes the cycle b -> c -> b.
    const text = job('  a: { fn: ./x.mjs }\n  b: { fn: ./x.mjs, ins: [a, c] }\n  c: { fn: ./x.mjs, deps: [b] }\n');
    expect(() => parse(text)()).toThrow('dependency cycle: b -> c -> b');
  });

  it('a long cycle keeps its ends only', async () => {
    const ops = Array.from({ length: 30 }, (_, i) => `  o${i}: { fn: ./x.mjs, deps: [o${(i + 29) % 30}] }\n`).join('');
    expect((await failure(parse(job(ops)))).problems[0]?.message).toBe(
      'dependency cycle: o0 -> o1 -> o2 -> o3 -> o4 -> o5 -> o6 -> o7 -> o8 -> o9 -> ... 11 more ops ... -> o21 -> o22 -> o23 -> o24 -> o25 -> o26 -> o27 -> o28 -> o29 -> o0',
    );
  });

  it('bad retry policies', async () => {
    const text = job(
      '  a: { fn: ./x.mjs, retry: { max_retries: -1, delay: -1, backoff: exp, jitter: none } }\n' +
        '  b: { fn: ./x.mjs, retry: { max_retries: 1.5 } }\n  c: { fn: ./x.mjs, retry: { delay: 1 } }\n  d: { fn: ./x.mjs, retry: 3 }\n',
    );
    expect((await failure(parse(text))).message.split('\n')).toEqual([
      'job.yaml:3:43 at ops.a.retry.max_retries: expected an integer >= 0, got -1',
      'job.yaml:3:54 at ops.a.retry.delay: expected a number of seconds >= 0, got -1',
      'job.yaml:3:67 at ops.a.retry.backoff: expected "linear" or "exponential", got "exp" (did you mean "exponential"?)',
      'job.yaml:3:80 at ops.a.retry.jitter: expected "full" or "plus_minus", got "none"',
      'job.yaml:4:43 at ops.b.retry.max_retries: expected an integer >= 0, got 1.5',
      'job.yaml:5:28 at ops.c.retry.max_retries: missing required key "max_retries": expected an integer >= 0',
      'job.yaml:6:28 at ops.d.retry: expected a retry policy map like { max_retries: 2 }, got 3',
    ]);
  });

  it('bad fn references', async () => {
    const text = job(
      '  a: { fn: "" }\n  b: { fn: "#" }\n  c: { fn: "#run" }\n  d: { fn: ./x.mjs# }\n  e: { fn: ./x.mjs#run-it }\n  f: { fn: " ./x.mjs" }\n  g: { fn: 7 }\n',
    );
    expect((await failure(parse(text))).message.split('\n')).toEqual([
      'job.yaml:3:12 at ops.a.fn: expected a module reference, got an empty string (e.g. ./ops/etl.mjs#extract)',
      'job.yaml:4:12 at ops.b.fn: missing the module path before "#" in "#" (e.g. ./ops/etl.mjs#extract)',
      'job.yaml:5:12 at ops.c.fn: missing the module path before "#" in "#run" (e.g. ./ops/etl.mjs#extract)',
      'job.yaml:6:12 at ops.d.fn: missing the export name after "#" in "./x.mjs#" (omit "#" to use the default export)',
      'job.yaml:7:12 at ops.e.fn: invalid export name "run-it" in "./x.mjs#run-it": expected a JavaScript identifier',
      'job.yaml:8:12 at ops.f.fn: unexpected blanks around the module path in " ./x.mjs"',
      'job.yaml:9:12 at ops.g.fn: expected a module reference like "./ops/etl.mjs#extract", got 7 (quote it: "7")',
    ]);
  });

  it('bad commands', async () => {
    const text = job('  a: { command: [] }\n  b: { command: ["", x] }\n  c: { command: [node, 1] }\n');
    expect((await failure(parse(text))).message.split('\n')).toEqual([
      'job.yaml:3:17 at ops.a.command: expected a non-empty list: the program, then its arguments, got an empty list',
      'job.yaml:4:18 at ops.b.command[0]: expected the program to run, got an empty string',
      'job.yaml:5:24 at ops.c.command[1]: expected a string, got 1 (quote it: "1")',
    ]);
  });

  it('missing or empty ops', async () => {
    expect((await failure(parse('name: j\n'))).message).toBe(
      'job.yaml:1:1 at ops: missing required key "ops": expected a map of op name -> op definition',
    );
    expect((await failure(parse('name: j\nops: {}\n'))).message).toBe(
      'job.yaml:2:6 at ops: expected at least one op, got an empty map',
    );
  });

  it('paths round-trip', () => ['ops.report.ins[1]', 'ops.a.ins.my input', 'x'].forEach((p) => expect(formatPath(parsePath(p))).toBe(p)));

  it('reports every problem of a file, capped at 100 plus a summary', async () => {
    const ops = Array.from({ length: 150 }, (_, i) => `  op_${i}: { fn: ./x.mjs, deps: [nope] }\n`).join('');
    const { problems } = await failure(parse(job(ops)));
    expect(problems).toHaveLength(101);
    expect(problems[0]).toMatchObject({ path: 'ops.op_0.deps[0]', message: 'unknown op "nope"' });
    expect(problems[100]).toEqual({ file: 'job.yaml', message: '... and 50 more problems' });
  });
});

describe('isPlainValidOp (the fast path) never accepts what the zod schema refuses', () => {
  const fns = ['./x.mjs', './x.mjs#run', '#run', './x.mjs#', ' ./x.mjs', './a#b#c', './x.mjs#1x', '', 5];
  const commands = [['ls'], [], [''], ['ls', 1], 'ls'];
  const others = [
    { ins: ['a', 'b'] }, { ins: { a: 'b' } }, { ins: { a: 1 } }, { ins: 'a' }, { deps: ['a'] }, { deps: [1] },
    { tags: { a: 'b' } }, { tags: { a: 1 } }, { tags: [] }, { config: { a: [1] } }, { config: [] },
    { description: 'd' }, { description: null }, { retry: { max_retries: 1 } }, { other: 1 },
  ];
  const variants: unknown[] = [
    ...fns.map((fn) => ({ fn })),
    ...commands.map((command) => ({ command })),
    ...others.map((o) => ({ fn: './x.mjs', ...o })),
    { fn: './x.mjs', command: ['ls'] }, {}, null, [], 'x',
  ];
  it.each(variants.map((v) => [JSON.stringify(v), v]))('%s', (_name, v) => {
    if (isPlainValidOp(v)) expect(opSchema.safeParse(v).success).toBe(true);
  });
});

describe('findCycles', () => {
  const op = (name: string, deps: string[]): OpDefinition => ({ name, impl: { kind: 'command', argv: ['x'] }, tags: {}, config: {}, retry: null, ins: {}, deps });
  const ops = (edges: Record<string, string[]>) => new Map(Object.entries(edges).map(([name, deps]) => [name, op(name, deps)]));

  it('none in a DAG; self-dependencies and unknown ops are left to validation', () => {
    expect(findCycles(ops({ a: [], b: ['a'], c: ['a', 'b', 'zzz'], d: ['d'] }))).toEqual([]);
  });

  it('one per disjoint cycle, in run order', () => {
    const cycles = findCycles(ops({ a: ['b'], b: ['a'], c: [], d: ['f'], e: ['d'], f: ['e'] }));
    expect(cycles).toEqual([['a', 'b', 'a'], ['d', 'e', 'f', 'd']]);
  });

  it('a 100,000-op cycle without overflowing the stack', () => {
    const edges: Record<string, string[]> = {};
    for (let i = 0; i < 100_000; i++) edges[`op_${i}`] = [`op_${(i + 1) % 100_000}`];
    const [cycle] = findCycles(ops(edges));
    expect(cycle).toHaveLength(100_001);
    expect(cycle?.slice(0, 3)).toEqual(['op_0', 'op_99999', 'op_99998']);
  });
});

