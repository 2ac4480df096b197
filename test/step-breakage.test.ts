import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSummary, ROOT, runCli, tempDir } from './helpers/cli.js';
import { waitFor } from './helpers/distributed.js';

const JOB = path.join(ROOT, 'test/fixtures/isolation/isolation.yaml');
const IN_PROCESS = path.join(ROOT, 'test/fixtures/isolation/config/in-process.yaml');

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('an op that breaks its process, on the local executors', () => {
  it('in_process: an unhandled rejection fails that step; the run ends with its summary, --json and exit 1', async () => {
    const r = await runCli(['run', JOB, '-s', 'forgot_await', '-s', 'ok*', '-c', IN_PROCESS, '--json']);
    expect(r.code, r.stderr).toBe(1);
    const summary = parseSummary(r);
    expect(summary.status).toBe('FAILURE');
    expect(summary.steps).toEqual({ forgot_await: 'FAILURE', ok: 'SUCCESS', ok2: 'SUCCESS' });
    expect(r.stderr).toContain('unhandled rejection while the step ran: nobody awaited me');
  });

  it.each([
    ['exiter', /exited with code 3/],
    ['forgot_await', /nobody awaited me/],
  ])('multiprocess: %s fails its step only; the run ends with exit 1', async (op, what) => {
    const r = await runCli(['run', JOB, '-s', op, '-s', 'ok', '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(parseSummary(r).steps).toEqual({ [op]: 'FAILURE', ok: 'SUCCESS' });
    expect(r.stderr).toMatch(what);
  });

  it.each([['in_process'], ['multiprocess']])('%s: a command op\'s leftover grandchildren are reaped at step end', async (executor) => {
    const pidFile = path.join(tempDir(), 'orphan.pid');
    const args = ['run', JOB, '-s', 'orphaner', '--json', ...(executor === 'in_process' ? ['-c', IN_PROCESS] : [])];
    const r = await runCli(args, { env: { ORPHAN_PID_FILE: pidFile } });
    expect(r.code, r.stderr).toBe(0);
    const orphan = Number(readFileSync(pidFile, 'utf8'));
    expect(orphan).toBeGreaterThan(0);
    await waitFor('the grandchild to be gone', () => (isAlive(orphan) ? undefined : true));
  });

  it.each([['in_process'], ['multiprocess']])('%s: a step longer than its op\'s timeout_seconds fails "timed out after 1 s", after its retry', async (executor) => {
    const args = ['run', JOB, '-s', 'sleepy', '--json', ...(executor === 'in_process' ? ['-c', IN_PROCESS] : [])];
    const started = Date.now();
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(1);
    expect(parseSummary(r).steps).toEqual({ sleepy: 'FAILURE' });
    expect(r.stderr).toContain('step "sleepy" timed out after 1 s');
    // Two attempts (max_retries: 1), each ended by its timeout, far sooner than the op's 60 s.
    expect(r.stderr).toMatch(/attempt 1 failed: step "sleepy" timed out after 1 s .*; retrying/);
    expect(Date.now() - started).toBeLessThan(45_000);
  });

  it('validate: a timeout_seconds that is not a positive number is located (exit 2)', async () => {
    const file = path.join(tempDir(), 'job.yaml');
    writeFileSync(file, 'name: t\nops:\n  a:\n    command: ["true"]\n    timeout_seconds: 0\n');
    const r = await runCli(['validate', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ops.a.timeout_seconds');
    expect(r.stderr).toContain('expected a number of seconds > 0');
  });

  it.each([
    ['in_process, max_runtime_seconds in run config', ['-c', path.join(ROOT, 'test/fixtures/isolation/config/in-process-max-runtime.yaml')]],
    ['multiprocess, the baton/max_runtime tag', ['--tag', 'baton/max_runtime=1']],
  ])('%s: a run longer than its max runtime is canceled with that reason', async (_what, extra) => {
    const started = Date.now();
    const r = await runCli(['run', JOB, '-s', 'long', '--json', ...extra]);
    expect(parseSummary(r)).toMatchObject({ status: 'CANCELED', steps: { long: 'CANCELED' } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('the run exceeded its max_runtime_seconds (1 s)');
    expect(Date.now() - started).toBeLessThan(45_000);
  });

  it('a baton/max_runtime tag that is not a positive number is invalid input (exit 2)', async () => {
    const r = await runCli(['run', JOB, '-s', 'ok', '--json', '--tag', 'baton/max_runtime=soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('tags.baton/max_runtime');
  });
});
