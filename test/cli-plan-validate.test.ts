/**
 * `coordinator plan`, `coordinator validate` and the CLI's own surface (--help, unknown flags),
 * through the built CLI in a child process.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { E2E, ROOT, runCli, removeTempDirs, tempDir, type CliResult } from './helpers/cli.js';

afterAll(removeTempDirs);

const job = (name: string): string => path.join(E2E, name);
const config = (name: string): string => path.join(E2E, 'config', name);
const example = (name: string): string => path.join(ROOT, 'examples/nightly_etl', name);
const why = (r: CliResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

interface PlanJson {
  job: string;
  ops: string[];
  steps: Array<{ key: string; deps: string[] }>;
  runConfig: Record<string, unknown>;
}

async function planJson(args: string[]): Promise<PlanJson> {
  const r = await runCli(['plan', job('seed.yaml'), ...args, '--json']);
  expect(r.code, why(r)).toBe(0);
  expect(r.stdout.trim().split('\n')).toHaveLength(1); // one JSON object, nothing else
  const plan = JSON.parse(r.stdout) as PlanJson;
  expect(Object.keys(plan).sort()).toEqual(['job', 'ops', 'runConfig', 'steps']);
  return plan;
}

/** `deps` lists only selected steps, and every step comes after its deps. */
function expectTopological(plan: PlanJson): void {
  expect(plan.steps.map((s) => s.key)).toEqual(plan.ops);
  const seen = new Set<string>();
  for (const step of plan.steps) {
    for (const dep of step.deps) {
      expect(plan.ops).toContain(dep);
      expect(seen.has(dep), `${step.key} comes before its dep ${dep}`).toBe(true);
    }
    seen.add(step.key);
  }
}

describe('coordinator plan', () => {
  it('--json prints the whole seed graph in topological order with each step\'s deps', async () => {
    const plan = await planJson([]);
    expect(plan).toEqual({
      runConfig: {},
      job: 'seed',
      ops: ['return_one', 'return_two', 'add_nums', 'multiply_two', 'add_one'],
      steps: [
        { key: 'return_one', deps: [] },
        { key: 'return_two', deps: [] },
        { key: 'add_nums', deps: ['return_one', 'return_two'] },
        { key: 'multiply_two', deps: ['add_nums'] },
        { key: 'add_one', deps: ['multiply_two'] },
      ],
    });
    expectTopological(plan);
  });

  // Selections whose inputs come from unselected ops take them from seed-inputs.yaml.
  it.concurrent.each([
    ['add_nums*', ['add_nums', 'multiply_two', 'add_one']],
    ['*add_nums+', ['return_one', 'return_two', 'add_nums', 'multiply_two']],
    ['*add_nums,return_one+', ['return_one', 'return_two', 'add_nums']],
    ['return_one+', ['return_one', 'add_nums']],
    ['+add_one', ['multiply_two', 'add_one']],
    ['return_two++', ['return_two', 'add_nums', 'multiply_two']],
    ['*multiply_two', ['return_one', 'return_two', 'add_nums', 'multiply_two']],
    ['*', ['return_one', 'return_two', 'add_nums', 'multiply_two', 'add_one']],
  ])('-s %s selects exactly %j', async (query, expected) => {
    const plan = await planJson(['-s', query, '-c', config('seed-inputs.yaml')]);
    expect(plan.ops).toEqual(expected);
    expectTopological(plan);
  });

  it('drops unselected upstreams from deps', async () => {
    const plan = await planJson(['-s', 'add_nums*', '-c', config('seed-inputs.yaml')]);
    expect(plan.steps[0]).toEqual({ key: 'add_nums', deps: [] });
  });

  it('unions repeated -s and --op-selection', async () => {
    const plan = await planJson(['-s', 'return_one', '--op-selection', 'return_two', '-s', 'add_nums']);
    expect(plan.ops).toEqual(['return_one', 'return_two', 'add_nums']);
  });

  it('prints a readable plan without --json', async () => {
    const r = await runCli(['plan', job('seed.yaml'), '-s', '*add_nums']);
    expect(r.code, why(r)).toBe(0);
    expect(r.stdout).toBe('job seed: 3 steps, executor multiprocess\n  return_one\n  return_two\n  add_nums  ← return_one, return_two\n');
  });

  it('exits 2 when a selected op needs an input nobody provides', async () => {
    const r = await runCli(['plan', job('seed.yaml'), '-s', 'add_nums*', '--json']);
    expect(r.code, why(r)).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('2 problems in the input [PLAN_INVALID]');
    expect(r.stderr).toContain('op "add_nums" needs input "return_one"');
    expect(r.stderr).toContain('op "add_nums" needs input "return_two"');
  });

  it('exits 2 on a malformed selection', async () => {
    const r = await runCli(['plan', job('seed.yaml'), '-s', 'add_numz+']);
    expect(r.code, why(r)).toBe(2);
    expect(r.stderr).toContain('unknown op "add_numz" in clause "add_numz+" of job "seed"; did you mean "add_nums"?');
  });
});

describe('coordinator validate', () => {
  it.concurrent.each(['run-config.yaml', 'in-process.yaml', 'forkserver.yaml'])('exits 0 on the example job with %s', async (file) => {
    const r = await runCli(['validate', example('job.yaml'), '-c', example(file)]);
    expect(r.code, why(r)).toBe(0);
    expect(r.stdout).toMatch(/^ok: job "nightly_etl" \(9 ops, 9 planned\), executor (multiprocess|in_process)\n$/);
    expect(r.stderr).toBe('');
  });

  it('exits 2 listing every problem of a bad job file, each located', async () => {
    const r = await runCli(['validate', job('many-problems.yaml')]);
    expect(r.code, why(r)).toBe(2);
    expect(r.stderr).toContain('3 problems in the input');
    expect(r.stderr).toContain('many-problems.yaml:2:7 at name: expected a job name');
    expect(r.stderr).toContain('many-problems.yaml:6:5 at ops.extract.retyr: unknown key "retyr" (did you mean "retry"?)');
    expect(r.stderr).toContain('many-problems.yaml:9:12 at ops.report.deps[0]: unknown op "extrat" (did you mean "extract"?)');
    expect(r.stderr).not.toMatch(/\n\s+at .*\.js:\d+/); // no stack trace
  });

  it('finds a missing module, a misspelt export and a non-function export before anything runs', async () => {
    const dir = tempDir();
    const r = await runCli(['validate', job('bad-code.yaml')], { env: { E2E_DIR: dir } });
    expect(r.code, why(r)).toBe(2);
    expect(r.stderr).toContain('3 problems in the input');
    expect(r.stderr).toMatch(/bad-code\.yaml\S* at ops\.typo\.fn: module "\.\/ops\.mjs" has no export "retrunOne" \(did you mean "returnOne"\?\)/);
    expect(r.stderr).toMatch(/bad-code\.yaml\S* at ops\.gone\.fn: cannot load module "\.\/nowhere\.mjs": file not found/);
    expect(r.stderr).toMatch(/bad-code\.yaml\S* at ops\.not_fn\.fn: export "notAFunction" of module "\.\/ops\.mjs" is not a function/);
    expect(r.stderr).not.toContain('ops.good');
    expect(existsSync(path.join(dir, 'ran.log'))).toBe(false);
  });

  it('checks the run config files too, merged in order', async () => {
    const r = await runCli(['validate', job('seed.yaml'), '-c', config('seed-inputs.yaml'), '-c', config('unknown-op.yaml')]);
    expect(r.code, why(r)).toBe(2);
    expect(r.stderr).toContain('unknown-op.yaml:2:3 at ops.add_num: unknown op "add_num" (did you mean "add_nums"?)');
  });

  it('lists run-config problems and op-code problems together', async () => {
    const r = await runCli(['validate', job('bad-code.yaml'), '-c', config('bad-code-unknown-op.yaml')]);
    expect(r.code, why(r)).toBe(2);
    expect(r.stderr).toContain('ops.nope: unknown op "nope"');
    expect(r.stderr).toContain('ops.typo.fn');
  });

  it('runs nothing, even for a valid job', async () => {
    const dir = tempDir();
    const r = await runCli(['validate', job('seed.yaml')], { env: { E2E_DIR: dir } });
    expect(r.code, why(r)).toBe(0);
    expect(r.stdout).toBe('ok: job "seed" (5 ops, 5 planned), executor multiprocess\n');
    expect(existsSync(path.join(dir, 'ran.log'))).toBe(false);
  });
});

describe('coordinator: help and usage', () => {
  it('--help exits 0 and lists the commands', async () => {
    const r = await runCli(['--help']);
    expect(r.code, why(r)).toBe(0);
    for (const command of ['run', 'plan', 'validate', 'status', 'logs']) expect(r.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
  });

  // What `npx coordinator` runs: the file package.json's bin names, executed through its shebang.
  // (Not `npx` itself: its first call after `npm install` re-runs `prepare`, rebuilding dist/ under
  // the CLI processes other test files have running at that moment.)
  it('the package bin runs on its own through its shebang', async () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const bin = path.join(ROOT, pkg.bin.coordinator ?? 'missing');
    const r = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
      const child = spawn(bin, ['--help'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stdout }));
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: coordinator /);
  });

  it('run --help exits 0 and documents the exit codes and options', async () => {
    const r = await runCli(['run', '--help']);
    expect(r.code, why(r)).toBe(0);
    expect(r.stdout).toContain('exit 0 success, 1 run failed, 2 invalid input, 130 interrupted');
    for (const flag of ['--select', '--op-selection', '--config', '--tag', '--json']) expect(r.stdout).toContain(flag);
  });

  it.concurrent.each([
    ['an unknown flag', ['run', 'job.yaml', '--no-such-flag'], "unknown option '--no-such-flag'"],
    ['an unknown command', ['runn', 'job.yaml'], "unknown command 'runn'"],
    ['a missing argument', ['plan'], "missing required argument 'job'"],
  ])('exits 2 on %s', async (_name, args, message) => {
    const r = await runCli(args);
    expect(r.code, why(r)).toBe(2);
    expect(r.stderr).toContain(message);
  });
});
