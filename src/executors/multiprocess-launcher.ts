import type { ChildProcess } from 'node:child_process';
import type { JobDefinition, LaunchHooks, StartMethod, StepLauncher, StepOutcome } from '../core/types.js';
import { forkStepProcess, killAndWait, WarmPool, type ChildMessage, type ParentMessage } from './process-pool.js';
import { DEFAULT_GRACE_MS } from './run-op.js';
import { canceled, failure } from './serialize-error.js';

export interface MultiprocessOptions {
  startMethod: StartMethod;
  /** Steps at once; forkserver keeps this many warm processes. */
  maxConcurrent: number;
  /** Cancellation: SIGTERM to SIGKILL delay, for the step process and a command op's process. */
  graceMs?: number;
}

/** After a result, how long a step process may take to exit before it is killed. */
const EXIT_GRACE_MS = 5000;

/** Dagster's multiprocess executor: every attempt runs in a fresh child process. */
export function createMultiprocessLauncher(job: JobDefinition, options: MultiprocessOptions): StepLauncher {
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const method = options.startMethod;
  const pool = method.kind === 'forkserver' ? new WarmPool(Math.max(1, options.maxConcurrent), method.preloadModules) : undefined;
  const running = new Set<ChildProcess>();

  return {
    async launch(request, hooks) {
      if (hooks.signal.aborted) return canceled(request);
      const op = job.ops.get(request.op);
      if (!op) return failure('PLAN_INVALID', `job "${job.name}" has no op "${request.op}"`, { retryable: false });
      let child: ChildProcess;
      try {
        child = pool ? await pool.acquire() : forkStepProcess();
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        return failure('STEP_LOST', `could not start a step process: ${why}`);
      }
      running.add(child);
      child.once('exit', () => running.delete(child));
      if (hooks.signal.aborted) {
        child.kill('SIGKILL');
        return canceled(request);
      }
      const message: ParentMessage = { type: 'step', impl: op.impl, baseDir: job.baseDir, request, graceMs };
      return supervise(child, message, hooks, graceMs);
    },
    async close() {
      // Normally nothing is running by now; a straggler still gets to stop its command op cleanly.
      await Promise.all([pool?.close(), ...[...running].map((c) => killAndWait(c, graceMs))]);
    },
  };
}

/** Drives one step process: forwards logs, maps its death or cancellation to an outcome. */
function supervise(
  child: ChildProcess,
  message: Extract<ParentMessage, { type: 'step' }>,
  hooks: LaunchHooks,
  graceMs: number,
): Promise<StepOutcome> {
  const { request } = message;
  return new Promise((resolve) => {
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const killLater = (ms: number): void => {
      const t = setTimeout(() => child.kill('SIGKILL'), ms);
      t.unref();
      timers.push(t);
    };
    const settle = (outcome: StepOutcome): void => {
      if (settled) return;
      settled = true;
      hooks.signal.removeEventListener('abort', onAbort);
      if (child.exitCode === null && child.signalCode === null) killLater(EXIT_GRACE_MS);
      resolve(hooks.signal.aborted ? canceled(request) : outcome);
    };
    const onAbort = (): void => {
      // The child cancels the op itself and reports; the signals back that up.
      if (child.connected) child.send({ type: 'abort' } satisfies ParentMessage, () => {});
      child.kill('SIGTERM');
      // The child gives the op graceMs; past that (e.g. a busy loop ignoring signals) it is killed.
      killLater(graceMs + Math.min(graceMs, 1000));
    };
    child.on('message', (msg: ChildMessage) => {
      if (settled) return;
      try {
        if (msg.type === 'log') hooks.onLog(msg.record);
        else if (msg.type === 'start') hooks.onStart?.({ pid: child.pid });
      } catch {
        // a faulty listener must not lose the step
      }
      if (msg.type === 'result') settle(msg.outcome);
    });
    child.on('error', () => {}); // failures to start or to send all end in 'close'
    // 'close' (not 'exit') comes after the IPC channel has delivered every message.
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      for (const t of timers) clearTimeout(t);
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      settle(
        failure('STEP_LOST', `step process ${child.pid ?? '?'} for "${request.stepKey}" ${how} before reporting a result`, {
          exitCode: code,
          signal,
        }),
      );
    });
    if (hooks.signal.aborted) onAbort();
    else hooks.signal.addEventListener('abort', onAbort, { once: true });
    child.send(message, (err) => {
      if (err) child.kill('SIGKILL');
    });
  });
}
