/**
 * The live view a person watches: a compact block on a terminal (not two lines per step), plain
 * lines when piped, failures with their stack (last lines; all with --verbose), and the right
 * start of a step a resumed coordinator re-attached to.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createReporter } from '../cli/reporter.js';
import { render } from '../cli/progress-block.js';
import type { RunEvent } from '../src/core/types.js';
import { CLI, ROOT, removeTempDirs, runCli, tempDir } from './helpers/cli.js';
import { ceiling } from './helpers/ceilings.js';

afterAll(removeTempDirs);

/** Text as a person reads it: terminal control sequences taken out. */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');
const visible = (s: string): string => s.replace(ANSI, '');

/** A stream that records what was written, looking like a terminal (or not). */
function screen(tty: boolean): { out: NodeJS.WriteStream; text: () => string } {
  const s = new PassThrough();
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString()));
  Object.assign(s, { isTTY: tty, columns: 80 });
  return { out: s as unknown as NodeJS.WriteStream, text: () => text };
}

const at = (ms: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms)).toISOString();
const ev = (type: RunEvent['type'], extra: Partial<RunEvent> = {}, ms = 0): RunEvent => ({ type, runId: 'r1', timestamp: at(ms), ...extra });

describe('the progress block', () => {
  it('counts steps by state and lists running and waiting steps within the terminal width', () => {
    const lines = render(
      {
        done: 7,
        totalSteps: 20,
        counts: { SUCCESS: 5, FAILURE: 1, SKIPPED: 1 },
        running: new Set(['extract_1', 'extract_2']),
        started: new Map([
          ['extract_1', Date.now() - 2000],
          ['extract_2', Date.now()],
        ]),
        waiting: new Map([['load', 'a concurrency limit']]),
      },
      65_000,
      80,
    );
    expect(lines[0]).toMatch(/^▸ 7\/20 steps · 01:05 · ✔ 5 {2}✖ 1 {2}○ 1 · ▶ 2 running · ⏸ 1 waiting$/);
    expect(lines[1]).toMatch(/^ {2}running: extract_1 \(2\.\ds\), extract_2 \(0\.\ds\)$/);
    expect(lines[2]).toBe('  waiting: load (a concurrency limit)');
    for (const l of lines) expect([...l].length).toBeLessThanOrEqual(80);
    // A narrow terminal cuts lines rather than wrap them (a wrapped line breaks the redraw).
    const narrow = render({ done: 7, totalSteps: 20, counts: {}, running: new Set(), started: new Map(), waiting: new Map() }, 0, 25);
    expect(narrow[0]).toMatch(/…$/);
    expect([...(narrow[0] as string)].length).toBe(25);
  });

  it('cuts a long list with a count of the rest', () => {
    const running = new Set(Array.from({ length: 40 }, (_, i) => `step_number_${i}`));
    const [, list] = render({ done: 0, totalSteps: 40, counts: {}, running, started: new Map(), waiting: new Map() }, 0, 80);
    expect(list).toMatch(/… \+\d+$/);
    expect([...(list as string)].length).toBeLessThanOrEqual(80);
  });
});

describe('the reporter', () => {
  const many = (n: number): RunEvent[] => {
    const events: RunEvent[] = [ev('RUN_START', { stepCount: n, message: `${n} steps` })];
    for (let i = 0; i < n; i++) {
      events.push(ev('STEP_START', { stepKey: `s${i}`, attempt: 1 }, i), ev('STEP_SUCCESS', { stepKey: `s${i}`, attempt: 1 }, i + 5));
    }
    events.push(ev('RUN_SUCCESS'));
    return events;
  };

  it('on a terminal, a 2,000-step run draws a block instead of 4,000 lines', async () => {
    const { out, text } = screen(true);
    const report = createReporter(2000, { out, mode: 'compact' });
    for (const e of many(2000)) report(e);
    report.close();
    await new Promise((r) => setImmediate(r));
    const plain = visible(text());
    expect(plain.split('\n').length).toBeLessThan(20);
    expect(plain).toContain('▸ 2000/2000 steps');
    expect(plain).toContain('run r1 SUCCESS');
    expect(plain).not.toContain('s17 succeeded');
  });

  it('piped, it prints a line per transition as before', () => {
    const { out, text } = screen(false);
    const report = createReporter(3, { out, mode: 'lines' });
    for (const e of many(3)) report(e);
    expect(text()).toMatch(/\[0\/3\] ▶ s0 started\n/);
    expect(text()).toMatch(/\[1\/3\] ✔ s0 succeeded in 0\.01s\n/);
  });

  it("a failure shows its message and the stack's last lines; --verbose (stack: full) all of it", () => {
    const frames = Array.from({ length: 12 }, (_, i) => `    at frame${i} (file:///ops.mjs:${i + 1}:1)`);
    const failure = ev('STEP_FAILURE', { stepKey: 'boom', attempt: 1, error: { name: 'Error', message: 'kaboom', stack: `Error: kaboom\n${frames.join('\n')}` } });
    for (const mode of ['lines', 'compact'] as const) {
      const short = screen(false);
      const r1 = createReporter(1, { out: short.out, mode });
      r1(failure);
      r1.close();
      expect(short.text()).toContain('✖ boom failed: kaboom');
      expect(short.text()).toContain('at frame0 (file:///ops.mjs:1:1)');
      expect(short.text()).toContain('at frame5 ');
      expect(short.text()).not.toContain('at frame6 ');
      expect(short.text()).toContain('… 6 more (--verbose shows the whole stack)');
    }
    const full = screen(false);
    createReporter(1, { out: full.out, mode: 'lines', stack: 'full' })(failure);
    expect(full.text()).toContain('at frame11 ');
    expect(full.text()).not.toContain('more (--verbose');
  });

  it('a step a resumed coordinator re-attached to shows its real start and duration; a takeover names the new worker', () => {
    const { out, text } = screen(false);
    const report = createReporter(1, { out, mode: 'lines' });
    report(ev('STEP_START', { stepKey: 'slow', attempt: 1, worker: 'w1', startKind: 'resumed' }, 0));
    report(ev('STEP_START', { stepKey: 'slow', attempt: 1, worker: 'w2', startKind: 'takeover' }, 5000));
    report(ev('STEP_SUCCESS', { stepKey: 'slow', attempt: 1 }, 20_000));
    expect(text()).toContain(`▶ slow running since ${at(0)} on w1 (began before this resume)`);
    expect(text()).toContain('▶ slow taken over on w2');
    expect(text()).toContain('✔ slow succeeded in 20.00s');
    expect(text()).not.toContain('slow started');
  });
});

describe('coordinator run on a terminal', () => {
  it('shows the compact view (under a pseudo-terminal), and plain lines when piped', async () => {
    const dir = tempDir();
    const ops = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`n${i}`, { fn: `${path.join(ROOT, 'test/fixtures/ops/basic.mjs')}#nothing` }]));
    const job = path.join(dir, 'wide.yaml');
    writeFileSync(job, JSON.stringify({ name: 'wide', ops }));
    const config = path.join(dir, 'in-process.yaml');
    writeFileSync(config, 'execution:\n  config:\n    in_process: {}\n');

    // `script` gives the coordinator a terminal; its output is the terminal's.
    const onTty = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} run ${JSON.stringify(job)} -c ${JSON.stringify(config)}`;
      const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: ROOT, env: { ...process.env, COLUMNS: '100', LINES: '40' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`timed out:\n${out}`));
      }, ceiling('cli'));
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
    expect(onTty.code, onTty.out).toBe(0);
    const shown = visible(onTty.out);
    expect(shown).toContain('▸ 150/150 steps');
    expect(shown).not.toMatch(/✔ n\d+ succeeded/);
    expect(shown).toContain('SUCCESS');

    const piped = await runCli(['run', job, '-c', config]);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stderr).toMatch(/✔ n149 succeeded/);
    expect(piped.stderr).not.toContain('▸ ');
  });
});
