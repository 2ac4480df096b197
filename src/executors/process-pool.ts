import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { OpImpl, OpLogRecord, StepOutcome, StepRequest } from '../core/types.js';

/** Parent -> step process. */
export type ParentMessage =
  | { type: 'step'; impl: OpImpl; baseDir: string; request: StepRequest; graceMs: number }
  | { type: 'abort' };

/** Step process -> parent. */
export type ChildMessage =
  | { type: 'ready' }
  | { type: 'start' }
  | { type: 'log'; record: OpLogRecord }
  | { type: 'result'; outcome: StepOutcome };

/** Names the modules a forkserver process imports before it reports ready. */
export const PRELOAD_ENV = 'BATON_PRELOAD';

const entries = new Map<string, { path: string; execArgv: string[] }>();

/**
 * The child entry `name` (e.g. `step-process`) next to this file. From compiled dist it is plain
 * JS and starts with no loader; from TypeScript source (tests, tsx) it needs tsx, resolved here so
 * the child's cwd is irrelevant.
 */
export function childEntry(name: string): { path: string; execArgv: string[] } {
  const known = entries.get(name);
  if (known) return known;
  const self = import.meta.url;
  let entry: { path: string; execArgv: string[] };
  if (self.endsWith('.ts')) {
    const tsx = pathToFileURL(createRequire(self).resolve('tsx')).href;
    entry = { path: fileURLToPath(new URL(`./${name}.ts`, self)), execArgv: ['--import', tsx] };
  } else {
    entry = { path: fileURLToPath(new URL(`./${name}.js`, self)), execArgv: [] };
  }
  entries.set(name, entry);
  return entry;
}

/** A fresh step process; with `preload` it imports those modules and sends `ready` first. */
export function forkStepProcess(preload?: string[]): ChildProcess {
  const { path, execArgv } = childEntry('step-process');
  const env = preload ? { ...process.env, [PRELOAD_ENV]: JSON.stringify(preload) } : process.env;
  // stdout/stderr are shared with this process, as an in-process op's console output would be.
  return fork(path, [], { execArgv, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

interface Waiter {
  resolve(child: ChildProcess): void;
  reject(err: Error): void;
}

/**
 * Forkserver: `size` warm step processes that have already started Node, loaded the runtime and
 * imported the preload modules, each waiting for one step. A process runs exactly one step and
 * exits; the pool starts a replacement in the background as soon as one is taken. At most
 * `maxStarting` start at once (a start is CPU-bound): the first is ready sooner than if all
 * competed for the cores.
 */
export class WarmPool {
  private readonly idle: ChildProcess[] = [];
  private readonly starting = new Set<ChildProcess>();
  private readonly waiters: Waiter[] = [];
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly preload: string[],
    private readonly maxStarting: number = availableParallelism(),
  ) {
    this.refill();
  }

  /** A ready process, now owned by the caller (it keeps the event loop alive again). */
  acquire(): Promise<ChildProcess> {
    if (this.closed) return Promise.reject(new Error('process pool is closed'));
    const child = this.idle.shift();
    if (child) {
      this.refill();
      return Promise.resolve(hold(child));
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      // Someone is waiting for these now: they must keep the event loop alive.
      for (const c of this.starting) hold(c);
      this.refill();
    });
  }

  /** Kills the idle and starting processes; processes running a step are the launcher's. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const w of this.waiters.splice(0)) w.reject(new Error('process pool is closed'));
    const victims = [...this.idle.splice(0), ...this.starting];
    this.starting.clear();
    await Promise.all(victims.map((c) => killAndWait(c)));
  }

  private refill(): void {
    while (
      !this.closed &&
      !this.retryTimer &&
      this.starting.size < this.maxStarting &&
      this.idle.length + this.starting.size < this.size + this.waiters.length
    ) {
      let child: ChildProcess;
      try {
        child = forkStepProcess(this.preload);
      } catch (err) {
        this.startFailed(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.track(child);
    }
  }

  private track(child: ChildProcess): void {
    this.starting.add(child);
    if (this.waiters.length === 0) release(child);
    const onMessage = (msg: ChildMessage): void => {
      if (msg.type !== 'ready' || !this.starting.delete(child)) return;
      child.off('message', onMessage);
      this.failures = 0;
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(hold(child));
      else this.idle.push(release(child));
      this.refill(); // a start slot is free
    };
    child.on('message', onMessage);
    child.on('error', () => {}); // a failed start also emits 'exit', handled below
    child.once('exit', (code, signal) => {
      const wasStarting = this.starting.delete(child);
      const i = this.idle.indexOf(child);
      if (i >= 0) this.idle.splice(i, 1);
      if (wasStarting) this.startFailed(new Error(`step process exited before it was ready (${signal ?? `code ${code}`})`));
      else if (i >= 0) this.refill();
    });
  }

  /** Fails the waiters and backs off, so a broken entry or preload does not fork in a loop. */
  private startFailed(err: Error): void {
    if (this.closed) return;
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.failures += 1;
    const delay = Math.min(200 * 2 ** (this.failures - 1), 10_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.refill();
    }, delay);
    this.retryTimer.unref();
  }
}

/** An idle warm process must not keep the parent alive if close() is forgotten. */
function release(child: ChildProcess): ChildProcess {
  child.unref();
  child.channel?.unref();
  return child;
}

function hold(child: ChildProcess): ChildProcess {
  child.ref();
  child.channel?.ref();
  return child;
}

/** SIGTERM (the step process cancels its op), then SIGKILL after graceMs. */
export function killAndWait(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
