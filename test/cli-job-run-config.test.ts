/**
 * A job's own run config through the built CLI: `run` with no `-c`, a `-c` file replacing its
 * executor, a located typo, `plan` (text and --json), `validate --json`, and the one JSON object
 * `run --json` prints when it refuses its input or a step fails.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { E2E, ROOT, parseErrorSummary, parseSummary, removeTempDirs, runCli, tempDir, type CliResult } from './helpers/cli.js';

afterAll(removeTempDirs);

const job = (name: string): string => path.join(E2E, name);
const config = (name: string): string => path.join(E2E, 'config', name);
const why = (r: CliResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const pidOf = (dir: string, op: string): number => JSON.parse(readFileSync(path.join(dir, `out-${op}.json`), 'utf8')) as number;

async function run(args: string[]): Promise<CliResult & { dir: string }> {
  const dir = tempDir();
  return { ...(await runCli(args, { env: { E2E_DIR: dir } })), dir };
}

describe.concurrent('coordinator run with the job\'s own run config', () => {
  it('a job whose run config says in_process runs every step in the coordinator\'s own process, with no -c', async () => {
    const r = await run(['run', job('own-config.yaml'), '--json']);
    expect(r.code, why(r)).toBe(0);
    expect(parseSummary(r).status).toBe('SUCCESS');
    expect(pidOf(r.dir, 'here')).toBe(r.pid);
    expect(pidOf(r.dir, 'there')).toBe(r.pid);
  });

  it('a -c file naming multiprocess { max_concurrent: 3 } replaces it: a process per step', async () => {
    const r = await run(['run', job('own-config.yaml'), '-c', config('multiprocess-3.yaml'), '--json']);
    expect(r.code, why(r)).toBe(0);
    const pids = [pidOf(r.dir, 'here'), pidOf(r.dir, 'there')];
    expect(pids).not.toContain(r.pid);
    expect(pids[0]).not.toBe(pids[1]);
  });

  it('a misspelt max_concurent in the job\'s run config exits 2 naming the job file\'s line; nothing runs', async () => {
    const r = await run(['run', job('own-config-typo.yaml'), '--json']);
    expect(r.code, why(r)).toBe(2);
    expect(r.stderr).toContain(
      'own-config-typo.yaml:6:9 at run_config.execution.config.multiprocess.max_concurent: unknown key "max_concurent" (did you mean "max_concurrent"?)',
    );
    const { error } = parseErrorSummary(r);
    expect(error.code).toBe('JOB_INVALID');
    expect(error.problems).toEqual([
      {
        file: job('own-config-typo.yaml'),
        line: 6,
        column: 9,
        path: 'run_config.execution.config.multiprocess.max_concurent',
        message: 'unknown key "max_concurent"',
        hint: 'did you mean "max_concurrent"?',
      },
    ]);
    expect(existsSync(path.join(r.dir, 'out-here.json'))).toBe(false);
  });
});

describe.concurrent('the example job carries its multiprocess settings', () => {
  const example = 'examples/nightly_etl/job.yaml';

  // Nine steps, a process each, and a retry: a generous ceiling for a loaded machine.
  it('the README\'s first command needs no -c: multiprocess from the job file', { timeout: 150_000 }, async () => {
    const r = await runCli(['run', example, '--json'], { timeoutMs: 140_000 });
    expect(r.code, why(r)).toBe(0);
    const summary = parseSummary(r);
    expect(Object.values(summary.steps)).toEqual(Array(9).fill('SUCCESS'));
    expect(r.stderr).toContain(`run ${summary.runId} SUCCESS`);
  });

  it('plan names the job file as the home of each setting; -c in-process.yaml replaces the executor', async () => {
    const r = await runCli(['plan', example]);
    expect(r.code, why(r)).toBe(0);
    expect(r.stdout).toContain(
      [
        'job nightly_etl: 9 steps, executor multiprocess',
        `executor multiprocess: from ${example}`,
        `  max_concurrent: 4  (from ${example})`,
        `  tag_concurrency_limits: [{"key":"database","value":"redshift","limit":2}]  (from ${example})`,
        'steps:',
      ].join('\n'),
    );
    const inProcess = await runCli(['plan', example, '-c', 'examples/nightly_etl/in-process.yaml', '--json']);
    expect(JSON.parse(inProcess.stdout).runConfig.execution).toEqual({ config: { in_process: {} } });
  });
});

describe.concurrent('coordinator plan and validate show the merged run config', () => {
  it('plan --json carries the merged config as runConfig: the -c executor replaced the job\'s', async () => {
    const own = await runCli(['plan', job('own-config.yaml'), '--json']);
    expect(own.code, why(own)).toBe(0);
    expect(JSON.parse(own.stdout)).toMatchObject({ job: 'own_config', runConfig: { execution: { config: { in_process: {} } } } });
    const merged = await runCli(['plan', job('own-config.yaml'), '-c', config('multiprocess-3.yaml'), '--json']);
    expect(merged.code, why(merged)).toBe(0);
    expect(JSON.parse(merged.stdout).runConfig).toEqual({ execution: { config: { multiprocess: { max_concurrent: 3 } } } });
  });

  it('plan says which file set the executor and each of its settings', async () => {
    const own = await runCli(['plan', path.relative(ROOT, job('own-config.yaml'))]);
    expect(own.stdout).toBe('job own_config: 2 steps, executor in_process\nexecutor in_process: from test/fixtures/e2e/own-config.yaml\nsteps:\n  here\n  there\n');
    const three = path.relative(ROOT, config('multiprocess-3.yaml'));
    const r = await runCli(['plan', path.relative(ROOT, job('own-config.yaml')), '-c', three]);
    expect(r.stdout).toBe(
      `job own_config: 2 steps, executor multiprocess\nexecutor multiprocess: from ${three}\n  max_concurrent: 3  (from ${three})\nsteps:\n  here\n  there\n`,
    );
  });

  it('plan --json redacts a Redis password in the run config', async () => {
    const dir = tempDir();
    const { writeFileSync } = await import('node:fs');
    const dist = path.join(dir, 'dist.yaml');
    writeFileSync(dist, 'execution:\n  config:\n    distributed: { redis: "redis://user:s3cret@127.0.0.1:1" }\n');
    const r = await runCli(['plan', job('own-config.yaml'), '-c', dist, '--json']);
    expect(r.code, why(r)).toBe(0);
    expect(r.stdout).not.toContain('s3cret');
    expect(JSON.parse(r.stdout).runConfig).toEqual({ execution: { config: { distributed: { redis: 'redis://user:***@127.0.0.1:1' } } } });
  });

  it('validate --json prints {ok, runConfig, problems}', async () => {
    const ok = await runCli(['validate', job('own-config.yaml'), '--json']);
    expect(ok.code, why(ok)).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ ok: true, runConfig: { execution: { config: { in_process: {} } } }, problems: [] });
    expect(ok.stdout.trim().split('\n')).toHaveLength(1);

    const bad = await runCli(['validate', job('own-config.yaml'), '-c', config('unknown-op.yaml'), '--json']);
    expect(bad.code, why(bad)).toBe(2);
    expect(JSON.parse(bad.stdout)).toEqual({
      ok: false,
      runConfig: null,
      problems: [expect.objectContaining({ file: config('unknown-op.yaml'), line: 2, column: 3, path: 'ops.add_num', message: 'unknown op "add_num"' })],
    });
    expect(bad.stderr).toContain('unknown op "add_num"');

    const typo = await runCli(['validate', job('own-config-typo.yaml'), '--json']);
    expect(typo.code, why(typo)).toBe(2);
    expect(JSON.parse(typo.stdout)).toMatchObject({ ok: false, runConfig: null, problems: [{ line: 6, column: 9 }] });
  });
});

describe.concurrent('coordinator run --json: one object on every exit', () => {
  it('exit 2: {"error":{"code","message","problems"}}, each problem located', async () => {
    const r = await run(['run', job('seed.yaml'), '-c', config('unknown-op.yaml'), '--json']);
    expect(r.code, why(r)).toBe(2);
    expect(parseErrorSummary(r)).toEqual({
      error: {
        code: 'RUN_CONFIG_INVALID',
        message: `${config('unknown-op.yaml')}:2:3 at ops.add_num: unknown op "add_num" (did you mean "add_nums"?)`,
        problems: [
          { file: config('unknown-op.yaml'), line: 2, column: 3, path: 'ops.add_num', message: 'unknown op "add_num"', hint: 'did you mean "add_nums"?' },
        ],
      },
    });
  });

  it('exit 2 on a usage error: code USAGE, no problems', async () => {
    const r = await run(['run', job('seed.yaml'), '--tag', 'novalue', '--json']);
    expect(r.code, why(r)).toBe(2);
    expect(parseErrorSummary(r).error).toEqual({ code: 'USAGE', message: '--tag expects key=value, got "novalue"', problems: [] });
  });

  it('a failed step: errors carries its message', async () => {
    const r = await run(['run', job('branches.yaml'), '-c', config('in-process.yaml'), '--json']);
    expect(r.code, why(r)).toBe(1);
    const summary = parseSummary(r) as unknown as { errors: Record<string, { message: string; stack?: string }> };
    expect(Object.keys(summary.errors)).toEqual(['boom']);
    expect(summary.errors.boom?.message).toBe('boom: the warehouse is on fire');
    expect(summary.errors.boom?.stack).toContain('ops.mjs');
  });
});
