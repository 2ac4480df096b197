import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { Json, LaunchHooks, StepOutcome, StepRequest } from '../core/types.js';
import { canceled, failure } from './serialize-error.js';

export interface CommandOptions {
  /** SIGTERM to SIGKILL delay on cancellation. */
  graceMs: number;
}

const TAIL_LINES = 20;
const TAIL_CHARS = 4096;
/** A line longer than this is logged in pieces rather than buffered without bound. */
const MAX_LINE = 64 * 1024;
/** After exit, how long to wait for stdout/stderr held open by a leftover grandchild. */
const DRAIN_MS = 1000;
/** POSIX: the command leads its own process group so cancellation reaches its children too. */
const GROUP_KILL = process.platform !== 'win32';

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError?: NodeJS.ErrnoException;
  stderrTail: string;
}

/**
 * Runs an argv command op (no shell, cwd = baseDir). Inputs go in through a JSON file named by
 * BATON_INPUTS, the output comes back through BATON_OUTPUT; stdout/stderr lines become logs.
 */
export async function runCommand(
  argv: string[],
  baseDir: string,
  request: StepRequest,
  hooks: LaunchHooks,
  options: CommandOptions,
): Promise<StepOutcome> {
  const shown = argv.join(' ');
  if (argv.length === 0 || !argv[0]) return failure('COMMAND_FAILED', 'command op has an empty argv');
  const dir = await mkdtemp(join(tmpdir(), 'baton-step-'));
  try {
    const inputsPath = join(dir, 'inputs.json');
    const outputPath = join(dir, 'output.json');
    await writeFile(inputsPath, JSON.stringify(request.inputs));
    const env = {
      ...process.env,
      BATON_RUN_ID: request.runId,
      BATON_OP: request.op,
      BATON_ATTEMPT: String(request.attempt),
      BATON_CONFIG: JSON.stringify(request.config),
      BATON_INPUTS: inputsPath,
      BATON_OUTPUT: outputPath,
    };
    const exit = await execute(argv, baseDir, env, hooks, options.graceMs);
    if (hooks.signal.aborted) return canceled(request);
    if (exit.spawnError) {
      const e = exit.spawnError;
      const why = e.code === 'ENOENT' ? `executable "${argv[0]}" not found (ENOENT)` : `${e.message}`;
      return failure('COMMAND_FAILED', `command "${shown}" could not start: ${why}`, { exitCode: null, signal: null });
    }
    if (exit.code !== 0) {
      const how = exit.signal ? `was killed by signal ${exit.signal}` : `exited with code ${exit.code}`;
      return failure('COMMAND_FAILED', `command "${shown}" ${how}`, {
        exitCode: exit.code,
        signal: exit.signal,
        stderrTail: exit.stderrTail,
      });
    }
    return await readOutput(outputPath, shown);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function readOutput(path: string, shown: string): Promise<StepOutcome> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: true, output: null };
    throw err;
  }
  if (text.trim() === '') return { ok: true, output: null };
  try {
    return { ok: true, output: JSON.parse(text) as Json };
  } catch (err) {
    return failure('OP_OUTPUT_NOT_JSON', `command "${shown}" wrote invalid JSON to BATON_OUTPUT: ${(err as Error).message}`, {
      retryable: false,
    });
  }
}

function execute(
  argv: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  hooks: LaunchHooks,
  graceMs: number,
): Promise<Exit> {
  return new Promise((resolve) => {
    const [cmd = '', ...args] = argv;
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: GROUP_KILL });
    if (child.pid !== undefined) trackGroup(child.pid);
    const tail: string[] = [];
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    let done = false;
    const kill = (sig: NodeJS.Signals): void => {
      try {
        if (GROUP_KILL && child.pid !== undefined) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // already gone
      }
    };
    const onAbort = (): void => {
      kill('SIGTERM');
      killTimer = setTimeout(() => kill('SIGKILL'), graceMs);
    };
    const finish = (exit: Omit<Exit, 'stderrTail'>): void => {
      if (done) return;
      done = true;
      if (child.pid !== undefined) liveGroups.delete(child.pid);
      hooks.signal.removeEventListener('abort', onAbort);
      // Once canceled, the SIGKILL still goes out to grandchildren that outlived the leader.
      if (hooks.signal.aborted) killTimer?.unref();
      else {
        clearTimeout(killTimer);
        // The step is over: grandchildren the command left behind (`sleep 300 &`) end with it.
        if (GROUP_KILL) kill('SIGKILL');
      }
      clearTimeout(drainTimer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({ ...exit, stderrTail: tailText(tail) });
    };
    const log = (level: 'info' | 'warn', msg: string): void => {
      try {
        hooks.onLog({ level, msg, time: Date.now() });
      } catch {
        // a faulty listener must not break the step
      }
    };
    lines(child.stdout, (msg) => log('info', msg));
    lines(child.stderr, (msg) => {
      tail.push(msg);
      if (tail.length > TAIL_LINES) tail.shift();
      log('warn', msg);
    });
    child.once('error', (err) => {
      // Failing to start emits only 'error'; a failing kill() after start also lands here.
      if (child.pid === undefined) finish({ code: null, signal: null, spawnError: err });
    });
    child.once('exit', (code, signal) => {
      drainTimer = setTimeout(() => finish({ code, signal }), DRAIN_MS);
    });
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => finish({ code, signal }));
    if (hooks.signal.aborted) onAbort();
    else hooks.signal.addEventListener('abort', onAbort, { once: true });
  });
}

function lines(stream: Readable | null, onLine: (line: string) => void): void {
  if (!stream) return;
  const decoder = new StringDecoder('utf8');
  let buf = '';
  const emit = (line: string): void => {
    const clean = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (clean !== '') onLine(clean);
  };
  stream.on('data', (chunk: Buffer) => {
    buf += decoder.write(chunk);
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      emit(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    if (buf.length > MAX_LINE) {
      emit(buf);
      buf = '';
    }
  });
  stream.on('end', () => {
    emit(buf + decoder.end());
    buf = '';
  });
}

function tailText(tail: string[]): string {
  const text = tail.join('\n');
  return text.length > TAIL_CHARS ? text.slice(-TAIL_CHARS) : text;
}

/**
 * Command ops run in process groups of their own, which outlive this process unless killed: if
 * it exits with commands still running (a second Ctrl-C, process.exit), they are SIGKILLed.
 */
const liveGroups = new Set<number>();
let exitHook = false;

function trackGroup(pid: number): void {
  liveGroups.add(pid);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const group of liveGroups) {
      try {
        process.kill(GROUP_KILL ? -group : group, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}
