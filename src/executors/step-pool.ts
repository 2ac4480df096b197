/**
 * A pool of long-lived step processes for the distributed worker, like Celery's prefork pool or
 * BullMQ's sandboxed processors: each process runs one step at a time, the pool grows with demand
 * up to `max` (one spare is started ahead, never `max` at once), and a process is recycled after
 * `maxStepsPerProcess` steps. A process that exits, is killed, or breaks ends only its own step,
 * with a failure naming what happened, and is replaced by the next step that needs one.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { LaunchHooks, OpImpl, StepOutcome, StepRequest } from '../core/types.js';
import { childEntry, killAndWait } from './process-pool.js';
import { DEFAULT_GRACE_MS, runOp } from './run-op.js';
import { canceled, failure } from './serialize-error.js';
import type { PoolChildMessage, PoolParentMessage } from './step-pool-protocol.js';

/** Runs one attempt of an op somewhere; never rejects. */
export type StepRunner = (impl: OpImpl, baseDir: string, request: StepRequest, hooks: LaunchHooks) => Promise<StepOutcome>;

/** `none`: steps run inside the worker; `process`: in the worker's pool of step processes. */
export type Isolation = 'process' | 'none';
export const ISOLATIONS: readonly Isolation[] = ['process', 'none'];

/** What the pool tells its owner (the worker logs these). */
export type PoolEvent =
  | { type: 'started'; pid: number }
  | { type: 'died'; pid: number; how: string; stepKey?: string }
  | { type: 'recycled'; pid: number; steps: number };

export interface StepPoolOptions {
  /** Most step processes at once (the worker's concurrency). */
  max: number;
  /** Recycle a process after this many steps (Celery's max_tasks_per_child); unbounded if unset. */
  maxStepsPerProcess?: number;
  /** A canceled step's op gets this long to wind down before its process is killed. */
  graceMs?: number;
  onEvent?: (e: PoolEvent) => void;
}

export interface StepPool {
  run: StepRunner;
  /** Processes alive now (busy, idle or starting). */
  size(): number;
  /** Kills every process (a running step's op is canceled first). */
  close(): Promise<void>;
}

/** Set in every step process to the pid of the worker that owns it. */
export const WORKER_PID_ENV = 'BATON_WORKER_PID';

/** Bytes of a process's stderr kept to name what happened when it dies. */
const STDERR_TAIL = 2000;

interface Busy {
  id: number;
  stepKey: string;
  settle(outcome: StepOutcome): void;
}

interface Proc {
  child: ChildProcess;
  pid: number;
  ready: boolean;
  steps: number;
  busy?: Busy;
  /** Must not take another step: it was canceled mid-step, broke, or reached its step budget. */
  retiring: boolean;
  /** The pool asked it to exit: its end is no news (unless it `broke` first). */
  exitRequested: boolean;
  /** It reported an unhandled rejection or uncaught exception and is exiting. */
  broke: boolean;
  stderr: string;
}

/** Steps run inside this process: `--isolation none`. */
export const inlineRunner: StepRunner = (impl, baseDir, request, hooks) => {
  hooks.onStart?.({ pid: process.pid });
  return runOp(impl, baseDir, request, hooks);
};

export function createStepPool(o: StepPoolOptions): StepPool {
  const max = Math.max(1, o.max);
  const graceMs = o.graceMs ?? DEFAULT_GRACE_MS;
  const procs = new Set<Proc>();
  const idle: Proc[] = [];
  const waiters: Array<{ resolve(p: Proc): void; reject(e: Error): void }> = [];
  let nextId = 0;
  let closed = false;
  const emit = (e: PoolEvent): void => {
    try {
      o.onEvent?.(e);
    } catch {
      // a faulty listener must not break the pool
    }
  };
  const starting = (): number => [...procs].filter((p) => !p.ready).length;

  const spawn = (): void => {
    const { path, execArgv } = childEntry('pool-process');
    // BATON_WORKER_PID: an op can tell which worker it runs under (its own pid is the step process's).
    const env = { ...process.env, [WORKER_PID_ENV]: String(process.pid) };
    const child = fork(path, [], { execArgv, env, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    const proc: Proc = { child, pid: child.pid ?? 0, ready: false, steps: 0, retiring: false, exitRequested: false, broke: false, stderr: '' };
    procs.add(proc);
    child.stderr?.on('data', (d: Buffer) => {
      process.stderr.write(d);
      proc.stderr = (proc.stderr + d.toString('utf8')).slice(-STDERR_TAIL);
    });
    child.on('message', (msg: PoolChildMessage) => {
      if (msg.type === 'ready') {
        proc.ready = true;
        emit({ type: 'started', pid: proc.pid });
        offer(proc);
      } else if (msg.type === 'retiring') {
        proc.retiring = true;
        proc.broke = true;
        const i = idle.indexOf(proc);
        if (i >= 0) idle.splice(i, 1);
      } else if (proc.busy && msg.id === proc.busy.id) {
        if (msg.type === 'result') proc.busy.settle(msg.outcome);
      }
    });
    child.on('error', () => {}); // a failed start or send also ends in 'close'
    child.once('close', (code, signal) => {
      procs.delete(proc);
      const i = idle.indexOf(proc);
      if (i >= 0) idle.splice(i, 1);
      const how = describeExit(code, signal);
      if (!proc.ready) {
        // It never started: the step waiting for it fails rather than waits for ever.
        waiters.shift()?.reject(new Error(`step process ${proc.pid} ${how} before it was ready${tail(proc.stderr)}`));
      } else if (!proc.exitRequested || proc.broke) {
        emit({ type: 'died', pid: proc.pid, how, ...(proc.busy ? { stepKey: proc.busy.stepKey } : {}) });
      }
      const busy = proc.busy;
      if (busy) {
        busy.settle(
          failure('STEP_PROCESS_DIED', `step process ${proc.pid} running "${busy.stepKey}" ${how}${tail(proc.stderr)}`, {
            exitCode: code,
            signal,
            ...(proc.stderr ? { stderrTail: proc.stderr } : {}),
          }),
        );
      }
      grow();
    });
  };

  /** A ready process goes to the first waiting step, or waits idle. */
  const offer = (proc: Proc): void => {
    if (closed || proc.retiring) return retire(proc);
    const waiter = waiters.shift();
    if (waiter) waiter.resolve(proc);
    else idle.push(proc);
    grow();
  };

  /** Starts what the waiting steps need, plus one spare while there is room. */
  const grow = (): void => {
    if (closed) return;
    while (procs.size < max && starting() < waiters.length) spawn();
    if (procs.size < max && idle.length === 0 && starting() === 0) spawn();
  };

  const retire = (proc: Proc): void => {
    proc.retiring = true;
    proc.exitRequested = true;
    if (proc.child.connected) proc.child.send({ type: 'exit' } satisfies PoolParentMessage, () => {});
    const t = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
    t.unref();
    proc.child.once('close', () => clearTimeout(t));
  };

  const acquire = (): Promise<Proc> => {
    let proc = idle.shift();
    while (proc?.retiring) proc = idle.shift();
    if (proc) {
      grow();
      return Promise.resolve(proc);
    }
    return new Promise((resolve, reject) => {
      waiters.push({ resolve, reject });
      grow();
    });
  };

  const run: StepRunner = async (impl, baseDir, request, hooks) => {
    if (closed) return failure('STEP_LOST', 'the step pool is closed');
    if (hooks.signal.aborted) return canceled(request);
    let proc: Proc;
    try {
      proc = await acquire();
    } catch (err) {
      return failure('STEP_PROCESS_DIED', `could not start a step process: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (hooks.signal.aborted) {
      // Canceled while a process was starting for it: the process serves the next step.
      offer(proc);
      return canceled(request);
    }
    const id = ++nextId;
    proc.steps += 1;
    proc.stderr = '';
    return new Promise<StepOutcome>((resolve) => {
      let killTimer: NodeJS.Timeout | undefined;
      const onLog = (msg: PoolChildMessage): void => {
        if (msg.type !== 'log' || msg.id !== id) return;
        try {
          hooks.onLog(msg.record);
        } catch {
          // a faulty listener must not lose the step
        }
      };
      const onAbort = (): void => {
        // The op is told through its signal; a process whose op ignores it is killed after the grace.
        proc.retiring = true;
        if (proc.child.connected) proc.child.send({ type: 'abort', id } satisfies PoolParentMessage, () => {});
        killTimer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs + Math.min(graceMs, 1000));
        killTimer.unref();
      };
      proc.busy = {
        id,
        stepKey: request.stepKey,
        settle: (outcome) => {
          if (proc.busy?.id !== id) return;
          proc.busy = undefined;
          clearTimeout(killTimer);
          proc.child.off('message', onLog);
          hooks.signal.removeEventListener('abort', onAbort);
          if (o.maxStepsPerProcess && proc.steps >= o.maxStepsPerProcess && !proc.retiring) {
            emit({ type: 'recycled', pid: proc.pid, steps: proc.steps });
            proc.retiring = true;
          }
          if (procs.has(proc)) offer(proc);
          resolve(hooks.signal.aborted && outcome.ok ? canceled(request) : outcome);
        },
      };
      proc.child.on('message', onLog);
      hooks.signal.addEventListener('abort', onAbort, { once: true });
      try {
        hooks.onStart?.({ pid: proc.pid });
      } catch {
        // a faulty listener must not lose the step
      }
      const message: PoolParentMessage = { type: 'step', id, impl, baseDir, request, graceMs };
      proc.child.send(message, (err) => {
        if (err) proc.child.kill('SIGKILL'); // 'close' fails the step
      });
    });
  };

  return {
    run,
    size: () => procs.size,
    async close() {
      closed = true;
      for (const w of waiters.splice(0)) w.reject(new Error('the step pool is closed'));
      for (const p of procs) p.exitRequested = true;
      await Promise.all([...procs].map((p) => (p.busy ? killAndWait(p.child, graceMs) : exitIdle(p))));
    },
  };
}

function exitIdle(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return Promise.resolve();
  const gone = new Promise<void>((resolve) => p.child.once('close', () => resolve()));
  p.child.kill('SIGTERM');
  return gone;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal === 'SIGKILL') return 'was killed by SIGKILL (out of memory, or killed from outside)';
  if (signal) return `was killed by ${signal}`;
  return `exited with code ${code}`;
}

function tail(stderr: string): string {
  const t = stderr.trim();
  return t ? `; stderr: ${t.split('\n').slice(-10).join('\n')}` : '';
}
