/**
 * `coordinator run` end to end, through the built CLI in a child process: exit codes, the
 * `--json` summary, live progress on stderr, selection, run config, retries, tag limits,
 * command ops, TypeScript ops and Ctrl-C. The ops of test/fixtures/e2e leave markers in $E2E_DIR
 * (ran.log, out-<op>.json, <op>.pid), which is how these tests see what actually ran.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { E2E, isAlive, parseSummary, ROOT, runCli, removeTempDirs, tempDir, waitFor, type CliResult } from './helpers/cli.js';

afterAll(removeTempDirs);

const job = (name: string): string => path.join(E2E, name);
const config = (name: string): string => path.join(E2E, 'config', name);
const example = (name: string): string => path.join(ROOT, 'examples/nightly_etl', name);

/** Runs the CLI with a fresh $E2E_DIR; returns the result and that directory. */
async function run(args: string[], env: Record<string, string> = {}): Promise<CliResult & { dir: string }> {
  const dir = tempDir();
  const r = await runCli(args, { env: { E2E_DIR: dir, ...env } });
  return { ...r, dir };
}

const ranLog = (dir: string): string[] => {
  const file = path.join(dir, 'ran.log');
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : [];
};
const output = (dir: string, op: string): unknown => JSON.parse(readFileSync(path.join(dir, `out-${op}.json`), 'utf8'));
const why = (r: CliResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** The largest number of intervals open at once, from "start"/"end" lines in append order. */
function maxOverlap(dir: string): { max: number; starts: number; ends: number } {
  const lines = readFileSync(path.join(dir, 'intervals.log'), 'utf8').trim().split('\n');
  let open = 0;
  let max = 0;
  let starts = 0;
  let ends = 0;
  for (const line of lines) {
    if (line.startsWith('start ')) {
      starts++;
      max = Math.max(max, ++open);
    } else if (line.startsWith('end ')) {
      ends++;
      open--;
    }
  }
  return { max, starts, ends };
}

describe.concurrent('coordinator run: exit codes and --json', () => {
  it('exits 0 on success and prints exactly one JSON object on stdout', async () => {
    const r = await run(['run', job('seed.yaml'), '--json']);
    expect(r.code, why(r)).toBe(0);
    // The whole of stdout is one JSON object and a newline: no log line leaked onto it.
    expect(r.stdout.endsWith('}\n')).toBe(true);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const summary = parseSummary(r);
    expect(Object.keys(summary).sort()).toEqual(['job', 'runId', 'status', 'steps']);
    expect(summary.runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(summary).toMatchObject({
      job: 'seed',
      status: 'SUCCESS',
      steps: { return_one: 'SUCCESS', return_two: 'SUCCESS', add_nums: 'SUCCESS', multiply_two: 'SUCCESS', add_one: 'SUCCESS' },
    });
    expect(Object.keys(summary.steps)).toHaveLength(5);
    expect(output(r.dir, 'add_one')).toBe(7); // (1 + 2) * 2 + 1: outputs flowed between processes
    // Logs went to stderr, and they carry the same run id.
    expect(r.stderr).toContain(`run ${summary.runId} started`);
    expect(r.stderr).toContain(`run ${summary.runId} SUCCESS`);
  });

  it('exits 1 when a step fails: its downstream is SKIPPED, an independent branch still succeeds', async () => {
    const r = await run(['run', job('branches.yaml'), '--json']);
    expect(r.code, why(r)).toBe(1);
    expect(parseSummary(r)).toEqual({
      runId: expect.any(String),
      job: 'branches',
      status: 'FAILURE',
      steps: {
        first: 'SUCCESS',
        boom: 'FAILURE',
        after_boom: 'SKIPPED',
        after_after: 'SKIPPED',
        independent: 'SUCCESS',
        independent_next: 'SUCCESS',
      },
      // The failed step's error; a multiprocess step's stack comes from its own process.
      errors: { boom: { message: 'boom: the warehouse is on fire', stack: expect.stringContaining('boom: the warehouse is on fire') } },
    });
    expect(r.stderr).toContain('boom failed');
    expect(r.stderr).toContain('boom: the warehouse is on fire');
    expect(r.stderr).toMatch(/after_boom skipped: upstream step "boom" failed/);
    const ran = ranLog(r.dir);
    expect(ran).not.toContain('ran after_boom 1');
    expect(ran).not.toContain('ran after_after 1');
    expect(ran).toContain('ran independent_next 1');
  });

  it.concurrent.each([
    ['a run config naming an unknown op', ['run', job('seed.yaml'), '-c', config('unknown-op.yaml')], 'unknown op "add_num"'],
    ['an unknown op in the selection', ['run', job('seed.yaml'), '-s', 'nope'], 'unknown op "nope"'],
    ['a missing input', ['run', job('seed.yaml'), '-s', 'add_nums*'], 'needs input "return_one"'],
    ['a misspelt export in one op of several', ['run', job('bad-code.yaml')], 'has no export "retrunOne"'],
    ['a malformed --tag', ['run', job('seed.yaml'), '--tag', 'novalue'], '--tag expects key=value'],
    ['an unknown flag', ['run', job('seed.yaml'), '--jsn'], "unknown option '--jsn'"],
  ])('exits 2 with nothing executed on %s', async (_name, args, message) => {
    const r = await run([...args, '--json']);
    expect(r.code, why(r)).toBe(2);
    expect(r.stderr).toContain(message);
    // No summary, there was no run: one error object instead.
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const { error } = JSON.parse(r.stdout) as { error: { code: string; message: string; problems: unknown[] } };
    expect(Object.keys(error).sort()).toEqual(['code', 'message', 'problems']);
    expect(error.message).toContain(message);
    expect(existsSync(path.join(r.dir, 'ran.log'))).toBe(false); // no op ran, not even the valid ones
  });

  it('exits 2 naming the op and the input when an unselected upstream input is not in run config', async () => {
    const r = await run(['run', job('seed.yaml'), '-s', 'multiply_two']);
    expect(r.code, why(r)).toBe(2);
    expect(r.stderr).toContain('op "multiply_two" needs input "add_nums" from op "add_nums", which is not selected');
    expect(r.stderr).toContain('ops.multiply_two.inputs.add_nums');
    expect(ranLog(r.dir)).toEqual([]);
  });
});

describe('coordinator run: --json with an op that prints to stdout', () => {
  // One run per executor, shared by the two tests below.
  const runs = new Map<string, Promise<CliResult>>();
  const chatty = (file: string): Promise<CliResult> => {
    let r = runs.get(file);
    if (!r) runs.set(file, (r = run(['run', job('chatty.yaml'), '-c', config(file), '--json'])));
    return r;
  };

  it.each(['spawn.yaml', 'in-process.yaml'])('%s: the run succeeds and the summary is the last stdout line', async (file) => {
    const r = await chatty(file);
    expect(r.code, why(r)).toBe(0);
    const last = r.stdout.trim().split('\n').at(-1) ?? '';
    expect(JSON.parse(last)).toMatchObject({ job: 'chatty', status: 'SUCCESS', steps: { talk: 'SUCCESS' } });
    expect(`${r.stdout}${r.stderr}`).toContain('hello from console.log');
  });

  // An op's console.log becomes a log line on stderr: stdout holds the summary alone.
  it.each(['spawn.yaml', 'in-process.yaml'])('%s: stdout holds only the JSON summary', async (file) => {
    expect(parseSummary(await chatty(file)).status).toBe('SUCCESS');
  });
});

describe.concurrent('coordinator run: live progress on stderr', () => {
  it('shows [done/total], step starts and successes, fn op logs and a command op stdout line', async () => {
    const r = await run(['run', job('command.yaml'), '-s', 'produce+', '--json']);
    expect(r.code, why(r)).toBe(0);
    const lines = r.stderr.split('\n');
    expect(lines[0]).toMatch(/^\[0\/2\] run [0-9a-f-]{36} started/);
    expect(r.stderr).toMatch(/^\[0\/2\] ▶ produce started$/m);
    expect(r.stderr).toMatch(/^\[1\/2\] ✔ produce succeeded in \d+\.\d\ds$/m);
    expect(r.stderr).toMatch(/^\[1\/2\] ▶ consume started$/m);
    expect(r.stderr).toMatch(/^\[2\/2\] ✔ consume succeeded/m);
    expect(r.stderr).toMatch(/^\[2\/2\] run [0-9a-f-]{36} SUCCESS$/m);
    expect(r.stderr).toMatch(/^ +produce │ producing 21 rows$/m); // the command's stdout
    expect(r.stderr).toMatch(/^ +consume │ consumed rows=21$/m); // context.log with a field
    // Order: a step's log line comes between its start and its success.
    const at = (re: RegExp): number => lines.findIndex((l) => re.test(l));
    expect(at(/produce started/)).toBeLessThan(at(/producing 21 rows/));
    expect(at(/producing 21 rows/)).toBeLessThan(at(/produce succeeded/));
    expect(at(/produce succeeded/)).toBeLessThan(at(/consume started/));
    expect(r.stdout).not.toContain('producing');
  });
});

describe.concurrent('coordinator run: command ops', () => {
  it("passes a command's BATON_OUTPUT JSON to a downstream fn op", async () => {
    const r = await run(['run', job('command.yaml'), '-s', 'produce,consume', '--json']);
    expect(r.code, why(r)).toBe(0);
    expect(parseSummary(r).steps).toEqual({ produce: 'SUCCESS', consume: 'SUCCESS' });
    expect(output(r.dir, 'consume')).toEqual({ rows: 21, doubled: 42, source: 'cmd' });
  });

  it('fails the step on a non-zero exit and shows the exit code and the tail of stderr', async () => {
    const r = await run(['run', job('command.yaml'), '-s', 'broken*', '--json']);
    expect(r.code, why(r)).toBe(1);
    expect(parseSummary(r)).toMatchObject({ status: 'FAILURE', steps: { broken: 'FAILURE', after_broken: 'SKIPPED' } });
    expect(r.stderr).toMatch(/broken failed in [\d.]+s: command "node cmd\.mjs fail" exited with code 3/);
    expect(r.stderr).toMatch(/^ +disk error 5$/m);
    expect(r.stderr).toMatch(/^ +giving up: \/var\/data is full$/m);
    expect(r.stderr).toContain('about to fail'); // its stdout, as a log line
  });
});

describe.concurrent('coordinator run: selection', () => {
  // in_process keeps these cheap: selection does not depend on the executor.
  const steps = async (args: string[]): Promise<Record<string, string>> => {
    const r = await run(['run', job('seed.yaml'), ...args, '-c', config('seed-inputs.yaml'), '-c', config('in-process.yaml'), '--json']);
    expect(r.code, why(r)).toBe(0);
    return parseSummary(r).steps;
  };

  it('unions repeated -s and --op-selection', async () => {
    expect(Object.keys(await steps(['-s', 'return_one', '-s', 'return_two'])).sort()).toEqual(['return_one', 'return_two']);
    expect(Object.keys(await steps(['-s', 'return_one', '--op-selection', 'add_one'])).sort()).toEqual(['add_one', 'return_one']);
    expect(Object.keys(await steps(['--op-selection', 'multiply_two', '--op-selection', 'return_two'])).sort()).toEqual([
      'multiply_two',
      'return_two',
    ]);
  });

  it.each([
    ['*add_nums', ['add_nums', 'return_one', 'return_two']],
    ['add_nums+', ['add_nums', 'multiply_two']],
    ['add_nums*', ['add_nums', 'add_one', 'multiply_two']],
    ['+multiply_two', ['add_nums', 'multiply_two']],
    ['*', ['add_nums', 'add_one', 'multiply_two', 'return_one', 'return_two']],
  ])('-s %s', async (query, expected) => {
    expect(Object.keys(await steps(['-s', query])).sort()).toEqual(expected);
  });

  it('feeds inputs of unselected upstream ops from run config ops.<op>.inputs', async () => {
    const r = await run(['run', job('seed.yaml'), '-s', 'add_nums+', '-c', config('seed-inputs.yaml'), '--json']);
    expect(r.code, why(r)).toBe(0);
    expect(output(r.dir, 'add_nums')).toBe(30); // 10 + 20 from run config
    expect(output(r.dir, 'multiply_two')).toBe(60); // from add_nums, not the config's 7: its upstream ran
    expect(ranLog(r.dir).sort()).toEqual(['ran add_nums 1', 'ran multiply_two 1']);
  });

  it('gives a command op its run-config input through BATON_INPUTS', async () => {
    const dir = tempDir();
    const r = await runCli(
      ['run', path.join(E2E, 'command-inputs.yaml'), '-s', 'take', '-c', config('command-inputs.yaml')],
      { env: { E2E_DIR: dir } },
    );
    expect(r.code, why(r)).toBe(0);
    expect(JSON.parse(readFileSync(path.join(dir, 'inputs-take.json'), 'utf8'))).toEqual({ numbers: [1, 2, 3] });
  });
});

describe.concurrent('coordinator run: run config', () => {
  it('deep-merges several -c files in order over the op default config', async () => {
    const [merged, reversed, defaults] = await Promise.all([
      run(['run', job('configured.yaml'), '-c', config('merge-1.yaml'), '-c', config('merge-2.yaml')]),
      run(['run', job('configured.yaml'), '-c', config('merge-2.yaml'), '-c', config('merge-1.yaml')]),
      run(['run', job('configured.yaml')]),
    ]);
    for (const r of [merged, reversed, defaults]) expect(r.code, why(r)).toBe(0);
    expect(output(merged.dir, 'show')).toEqual({ greeting: 'hey', keep: true, nested: { a: 2, b: 3 }, first: 1, second: 2 });
    expect(output(reversed.dir, 'show')).toMatchObject({ greeting: 'hi' }); // the later file wins
    expect(output(defaults.dir, 'show')).toEqual({ greeting: 'hello', keep: true, nested: { a: 1, b: 1 } });
  });

  it.concurrent.each([
    ['multiprocess spawn', 'run-config.yaml'],
    ['in_process', 'in-process.yaml'],
    ['multiprocess forkserver with preload_modules', 'forkserver.yaml'],
  ])('runs the example job with %s', async (_name, file) => {
    const r = await runCli(['run', example('job.yaml'), '-c', example(file), '--json']);
    expect(r.code, why(r)).toBe(0);
    const summary = parseSummary(r);
    expect(summary.status).toBe('SUCCESS');
    expect(Object.keys(summary.steps)).toHaveLength(9);
    expect(Object.values(summary.steps).every((s) => s === 'SUCCESS')).toBe(true);
    expect(r.stderr).toContain('extract_events started (attempt 2)'); // its retry policy at work
    expect(r.stderr).toMatch(/publish │ publishing reports for run [0-9a-f-]+: revenue_report, engagement_report/);
  });

  it('tag_concurrency_limits: 6 tagged ops under a limit of 2 (max_concurrent 6) overlap exactly 2 at most', async () => {
    const r = await run(['run', job('limits.yaml'), '-c', config('limit-2.yaml')], { E2E_AWAIT_PEERS: '2', E2E_TOTAL: '6' });
    expect(r.code, why(r)).toBe(0);
    expect(maxOverlap(r.dir)).toEqual({ max: 2, starts: 6, ends: 6 });
  });

  it('a limit on a tag key alone (limit 3) holds too', async () => {
    const r = await run(['run', job('limits.yaml'), '-c', config('limit-key-3.yaml')], { E2E_AWAIT_PEERS: '3', E2E_TOTAL: '6' });
    expect(r.code, why(r)).toBe(0);
    expect(maxOverlap(r.dir)).toEqual({ max: 3, starts: 6, ends: 6 });
  });

  it('the overlap count does see more than 2 when nothing limits it (control)', async () => {
    const r = await run(['run', job('limits.yaml'), '-c', config('parallel-6.yaml')], { E2E_AWAIT_PEERS: '3', E2E_TOTAL: '6' });
    expect(r.code, why(r)).toBe(0);
    expect(maxOverlap(r.dir).max).toBeGreaterThanOrEqual(3);
  });

  it('max_concurrent 1: steps never overlap', async () => {
    const r = await run(['run', job('limits.yaml'), '-c', config('serial.yaml')]);
    expect(r.code, why(r)).toBe(0);
    expect(maxOverlap(r.dir)).toEqual({ max: 1, starts: 6, ends: 6 });
  });

  it('retries: {disabled: {}} turns a retry policy off', async () => {
    const r = await run(['run', job('retry.yaml'), '-s', 'flaky', '-c', config('retries-off.yaml'), '--json']);
    expect(r.code, why(r)).toBe(1);
    expect(parseSummary(r).steps).toEqual({ flaky: 'FAILURE' });
    expect(ranLog(r.dir)).toEqual(['ran flaky 1']);
    expect(r.stderr).toContain('flaky failed on attempt 1');
    expect(r.stderr).not.toContain('up for retry');
    expect(r.stderr).not.toContain('retrying');
  });
});

describe.concurrent('coordinator run: retries', () => {
  it('retries a failed attempt: the second attempt succeeds and the run succeeds', async () => {
    const r = await run(['run', job('retry.yaml'), '-s', 'flaky+', '--json']);
    expect(r.code, why(r)).toBe(0);
    expect(parseSummary(r).steps).toEqual({ flaky: 'SUCCESS', after_flaky: 'SUCCESS' });
    expect(ranLog(r.dir)).toEqual(['ran flaky 1', 'ran flaky 2', 'ran after_flaky 1']);
    expect(r.stderr).toMatch(/↻ flaky attempt 1 failed: flaky failed on attempt 1; retrying in/);
    expect(r.stderr).toContain('flaky started (attempt 2)');
    expect(output(r.dir, 'after_flaky')).toEqual({ flaky: { attempt: 2 } });
  });

  it('fails with the last error once max_retries are exhausted', async () => {
    const r = await run(['run', job('retry.yaml'), '-s', 'hopeless', '--json']);
    expect(r.code, why(r)).toBe(1);
    expect(parseSummary(r).steps).toEqual({ hopeless: 'FAILURE' });
    expect(ranLog(r.dir)).toEqual(['ran hopeless 1', 'ran hopeless 2', 'ran hopeless 3']);
    expect(r.stderr).toMatch(/✖ hopeless failed in [\d.]+s: hopeless failed on attempt 3$/m);
  });
});

describe.concurrent('coordinator run: TypeScript ops', () => {
  it('runs a .ts op module with the spawn executor (tsx in the compiled CLI and its step processes)', async () => {
    const r = await run(['run', job('typed.yaml'), '-c', config('spawn.yaml'), '--json']);
    expect(r.code, why(r)).toBe(0);
    expect(parseSummary(r).steps).toEqual({ return_one: 'SUCCESS', triple: 'SUCCESS' });
    expect(output(r.dir, 'triple')).toEqual({ op: 'triple', result: 3 });
  });
});

describe('coordinator run: interrupt', () => {
  /** Both long steps are running: the command op has written its pid and said so. */
  const bothRunning = (stderr: string): boolean => /long_fn │ sleeping/.test(stderr) && /long_cmd │ command sleeping/.test(stderr);

  const checkCanceled = async (r: CliResult, dir: string): Promise<void> => {
    expect(r.interrupts).toBe(1);
    expect(r.code, why(r)).toBe(130);
    const summary = parseSummary(r);
    expect(summary.status).toBe('CANCELED');
    expect(summary.steps.long_fn).toBe('CANCELED');
    expect(summary.steps.long_cmd).toBe('CANCELED');
    expect(summary.steps.after).not.toBe('SUCCESS');
    expect(r.stderr).toContain('interrupt: canceling the run');
    expect(r.stderr).toMatch(/run [0-9a-f-]+ CANCELED/);
    expect(ranLog(dir)).not.toContain('ran after 1');
    // Neither the command op's process nor the fn op's step process outlives the CLI.
    for (const op of ['long_cmd', 'long_fn']) {
      const pid = Number(readFileSync(path.join(dir, `${op}.pid`), 'utf8'));
      expect(pid).toBeGreaterThan(0);
      expect(await waitFor(() => !isAlive(pid), 2000), `${op} process ${pid} still alive`).toBe(true);
      expect(() => process.kill(pid, 0)).toThrow();
    }
  };

  it('SIGINT cancels running fn and command steps: exit 130, status CANCELED, no process left', async () => {
    const dir = tempDir();
    const r = await runCli(['run', job('interrupt.yaml'), '--json'], {
      env: { E2E_DIR: dir },
      interruptWhen: bothRunning,
      timeoutMs: 20_000,
    });
    await checkCanceled(r, dir);
  });

  it.each(['long_fn', 'long_cmd'])('in_process: SIGINT cancels the running %s step: exit 130, CANCELED, its process gone', async (op) => {
    const dir = tempDir();
    const r = await runCli(['run', job('interrupt.yaml'), '-s', op, '-c', config('in-process.yaml'), '--json'], {
      env: { E2E_DIR: dir },
      interruptWhen: new RegExp(`${op} │ .*sleeping`),
      timeoutMs: 20_000,
    });
    expect(r.code, why(r)).toBe(130);
    expect(parseSummary(r)).toMatchObject({ status: 'CANCELED', steps: { [op]: 'CANCELED' } });
    if (op === 'long_cmd') {
      const pid = Number(readFileSync(path.join(dir, 'long_cmd.pid'), 'utf8'));
      expect(await waitFor(() => !isAlive(pid), 2000), `command process ${pid} still alive`).toBe(true);
    }
  });

  // At a terminal, Ctrl-C sends SIGINT to the whole foreground process group: the step processes
  // get it as well as the CLI, and often react first. This runs that ordering deterministically:
  // SIGINT to long_fn's step process, then (once its step has ended) to the CLI.
  describe('SIGINT reaching a step process before the CLI (Ctrl-C at a terminal)', () => {
    let outcome: Promise<{ r: CliResult; dir: string }> | undefined;
    const scenario = (): Promise<{ r: CliResult; dir: string }> =>
      (outcome ??= (async () => {
        const dir = tempDir();
        let stepSignaled = false;
        const r = await runCli(['run', job('interrupt.yaml'), '--json'], {
          env: { E2E_DIR: dir },
          // The step process gets SIGINT first, the CLI right after, as from a terminal.
          interruptWhen: (stderr) => {
            if (!stepSignaled && bothRunning(stderr)) {
              stepSignaled = true;
              process.kill(Number(readFileSync(path.join(dir, 'long_fn.pid'), 'utf8')), 'SIGINT');
              return true;
            }
            return false;
          },
          timeoutMs: 20_000,
        });
        return { r, dir };
      })());

    it('exits 130 with status CANCELED, and no process is left', async () => {
      const { r, dir } = await scenario();
      expect(r.interrupts).toBe(1);
      expect(r.code, why(r)).toBe(130);
      expect(parseSummary(r)).toMatchObject({ status: 'CANCELED', steps: { long_cmd: 'CANCELED' } });
      expect(ranLog(dir)).not.toContain('ran after 1');
      for (const op of ['long_cmd', 'long_fn']) {
        const pid = Number(readFileSync(path.join(dir, `${op}.pid`), 'utf8'));
        expect(await waitFor(() => !isAlive(pid), 2000), `${op} process ${pid} still alive`).toBe(true);
      }
    });

    it('records the interrupted step as CANCELED, not FAILURE, and skips nothing', async () => {
      const { r } = await scenario();
      const summary = parseSummary(r);
      expect(summary.steps.long_fn).toBe('CANCELED');
      expect(summary.steps.after).not.toBe('SKIPPED');
    });
  });

  it('a second SIGINT leaves at once with exit 130; the step processes still go away', async () => {
    const dir = tempDir();
    const r = await runCli(['run', job('interrupt.yaml'), '--json'], {
      env: { E2E_DIR: dir },
      interruptWhen: bothRunning,
      interruptAgainWhen: /interrupt: canceling the run/,
      timeoutMs: 20_000,
    });
    expect(r.interrupts).toBe(2);
    expect(r.code, why(r)).toBe(130);
    for (const op of ['long_cmd', 'long_fn']) {
      const pid = Number(readFileSync(path.join(dir, `${op}.pid`), 'utf8'));
      expect(await waitFor(() => !isAlive(pid), 5000), `${op} process ${pid} still alive`).toBe(true);
    }
  });

  describe('in_process, a second SIGINT while a command op ignores SIGTERM', () => {
    // One run shared by the two tests below.
    let outcome: Promise<{ r: CliResult; pid: number }> | undefined;
    const scenario = (): Promise<{ r: CliResult; pid: number }> =>
      (outcome ??= (async () => {
        const dir = tempDir();
        const r = await runCli(['run', job('stubborn.yaml'), '-c', config('in-process.yaml'), '--json'], {
          env: { E2E_DIR: dir },
          interruptWhen: /stubborn_cmd │ command sleeping/,
          interruptAgainWhen: /stubborn_cmd │ ignoring SIGTERM/,
          timeoutMs: 20_000,
        });
        return { r, pid: Number(readFileSync(path.join(dir, 'stubborn_cmd.pid'), 'utf8')) };
      })());
    afterAll(async () => {
      const pid = outcome && (await outcome).pid;
      if (pid && isAlive(pid)) process.kill(pid, 'SIGKILL'); // the orphan the bug leaves
    });

    it('leaves at once with exit 130', async () => {
      const { r } = await scenario();
      expect(r.interrupts).toBe(2);
      expect(r.code, why(r)).toBe(130);
    });

    it('kills the command op rather than orphaning it', async () => {
      const { pid } = await scenario();
      expect(await waitFor(() => !isAlive(pid), 1000), `command process ${pid} orphaned`).toBe(true);
    });
  });
});
