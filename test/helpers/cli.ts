/**
 * Runs the built CLI (`node dist/cli/main.js`, what `npx coordinator` runs) as a child process
 * and collects its exit code, stdout and stderr. `npm test` builds dist/ first.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ceiling } from './ceilings.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'dist/cli/main.js');
export const E2E = path.join(ROOT, 'test/fixtures/e2e');

export interface CliResult {
  /** Exit code; null when killed by a signal (then `signal` says which). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The child's pid. */
  pid: number;
  /** How many interrupts were sent (0: the trigger never fired). */
  interrupts: number;
}

export interface CliOptions {
  cwd?: string;
  /** Added to (over) the test process's environment. */
  env?: Record<string, string>;
  /** Kills the child (SIGKILL) and rejects after this many ms (at least CEILING_MS.cli). */
  timeoutMs?: number;
  /** Sends `interruptSignal` after this many ms. */
  interruptAfterMs?: number;
  /** Sends `interruptSignal` once the accumulated stderr matches (a RegExp or a predicate). */
  interruptWhen?: RegExp | ((stderr: string) => boolean);
  /** After the first interrupt, sends a second one once the accumulated stderr matches this. */
  interruptAgainWhen?: RegExp;
  /** Default SIGINT. */
  interruptSignal?: NodeJS.Signals;
  /**
   * Start the CLI as a process-group leader and send the interrupt to the whole group, as a
   * terminal does on Ctrl-C (step processes receive it too). Default: only the CLI's pid.
   */
  interruptGroup?: boolean;
}

/** Runs `node dist/cli/main.js ...args`. Rejects only on timeout or if the CLI cannot start. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does)`);
  const timeoutMs = ceiling('cli', options.timeoutMs);
  const group = options.interruptGroup === true;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: group,
    });
    let stdout = '';
    let stderr = '';
    let interrupts = 0;
    const timers: NodeJS.Timeout[] = [];
    const interrupt = (): void => {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      interrupts++;
      const sig = options.interruptSignal ?? 'SIGINT';
      try {
        if (group) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // already gone
      }
    };
    const firstDue = (): boolean => {
      const when = options.interruptWhen;
      if (!when || interrupts > 0) return false;
      return typeof when === 'function' ? when(stderr) : when.test(stderr);
    };
    const againDue = (): boolean => interrupts === 1 && options.interruptAgainWhen?.test(stderr) === true;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (stdout += c));
    child.stderr.on('data', (c: string) => {
      stderr += c;
      if (firstDue() || againDue()) interrupt();
    });
    if (options.interruptAfterMs !== undefined) {
      timers.push(setTimeout(() => interrupts === 0 && interrupt(), options.interruptAfterMs));
    }
    timers.push(
      setTimeout(() => {
        try {
          if (group && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
          else child.kill('SIGKILL');
        } catch {
          // already gone
        }
        reject(new Error(`coordinator ${args.join(' ')} timed out after ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      }, timeoutMs),
    );
    child.once('error', (err) => {
      for (const t of timers) clearTimeout(t);
      reject(err);
    });
    child.once('close', (code, signal) => {
      for (const t of timers) clearTimeout(t);
      resolve({ code, signal, stdout, stderr, pid: child.pid ?? -1, interrupts });
    });
  });
}

/** `--json` output: the whole stdout must be exactly one JSON object (and a newline). */
export interface RunSummary {
  runId: string;
  job: string;
  status: 'SUCCESS' | 'FAILURE' | 'CANCELED';
  steps: Record<string, string>;
}

export function parseSummary(r: CliResult): RunSummary {
  let value: unknown;
  try {
    value = JSON.parse(r.stdout);
  } catch (err) {
    throw new Error(`stdout is not one JSON value (${(err as Error).message}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`stdout is not a JSON object: ${r.stdout}`);
  }
  return value as RunSummary;
}

/** `run --json` on a refused input: `{"error":{"code","message","problems"}}`. */
export interface ErrorSummary {
  error: { code: string; message: string; problems: Array<{ file?: string; line?: number; column?: number; path?: string; message: string; hint?: string }> };
}

/** The one error object `run --json` prints when it exits 2 (nothing else on stdout). */
export function parseErrorSummary(r: CliResult): ErrorSummary {
  if (!r.stdout.endsWith('}\n') || r.stdout.trim().split('\n').length !== 1) throw new Error(`stdout is not one line of JSON:\n${r.stdout}\nstderr:\n${r.stderr}`);
  const value = parseSummary(r) as unknown as ErrorSummary;
  if (Object.keys(value).join() !== 'error' || Object.keys(value.error).sort().join() !== 'code,message,problems') {
    throw new Error(`stdout is not an error object: ${r.stdout}`);
  }
  return value;
}

const tempDirs: string[] = [];

/** A fresh temporary directory (the ops of test/fixtures/e2e write their markers in $E2E_DIR). */
export function tempDir(prefix = 'baton-e2e-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Removes every directory `tempDir` made: call it from `afterAll`. */
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed process whose parent is gone can linger as a zombie until PID 1 reaps it (some
  // sandboxes never do): it is dead all the same.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: trust the signal check
  }
}

/** Polls `check` every 20 ms until it is true or `ms` pass; returns its last value. */
export async function waitFor(check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ceiling('event', ms);
  for (;;) {
    if (check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}
