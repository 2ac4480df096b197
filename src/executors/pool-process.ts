/**
 * Child entry of the step pool (src/executors/step-pool.ts): a long-lived step process that runs
 * one step at a time, as many as its parent sends, like a Celery prefork child. It reports `ready`
 * once the runtime is loaded. An unhandled rejection or uncaught exception fails the step it
 * happened in and ends the process (its state can no longer be trusted); the parent replaces it.
 */
import * as nodeModule from 'node:module';
import type { OpLogRecord, StepOutcome } from '../core/types.js';
import type { PoolChildMessage, PoolParentMessage } from './step-pool-protocol.js';

(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();

interface Current {
  id: number;
  controller: AbortController;
  done: boolean;
}

let current: Current | undefined;
let dying = false;

function send(msg: PoolChildMessage, then?: () => void): void {
  if (!process.connected) {
    then?.();
    return;
  }
  process.send?.(msg, undefined, undefined, () => then?.());
}

function finish(step: Current, outcome: StepOutcome, then?: () => void): void {
  if (step.done) return then?.();
  step.done = true;
  if (current === step) current = undefined;
  send({ type: 'result', id: step.id, outcome }, then);
}

/** What an op prints on stdout becomes log lines of its step; between steps it goes to stderr. */
function captureStdout(): void {
  let pending = '';
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    pending += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    let nl = pending.indexOf('\n');
    while (nl !== -1) {
      const msg = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const step = current;
      if (step && !step.done) send({ type: 'log', id: step.id, record: { level: 'info', msg, time: Date.now() } });
      else process.stderr.write(`${msg}\n`);
      nl = pending.indexOf('\n');
    }
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }) as typeof process.stdout.write;
}

async function runStep(msg: Extract<PoolParentMessage, { type: 'step' }>): Promise<void> {
  const step: Current = { id: msg.id, controller: new AbortController(), done: false };
  current = step;
  const { runOp } = await import('./run-op.js');
  const hooks = {
    signal: step.controller.signal,
    onLog: (record: OpLogRecord): void => {
      if (!step.done) send({ type: 'log', id: step.id, record });
    },
  };
  finish(step, await runOp(msg.impl, msg.baseDir, msg.request, hooks, { graceMs: msg.graceMs }));
}

/** The op broke the process: fail its step (if any) with what happened, then exit. */
async function crashed(kind: string, err: unknown): Promise<void> {
  if (dying) return;
  dying = true;
  const { serializeError } = await import('./serialize-error.js');
  const error = serializeError(err);
  const step = current;
  const message = `${kind} in the step process: ${error.message}`;
  const outcome: StepOutcome = { ok: false, error: { ...error, message, code: error.code ?? 'OP_FAILED' } };
  // Retiring first, so the parent does not hand this process another step after the result.
  send({ type: 'retiring' });
  if (!step) process.stderr.write(`baton step process ${process.pid}: ${message}\n`);
  // The result crosses the channel before the process goes; the parent starts a fresh one.
  if (step) finish(step, outcome, () => process.exit(1));
  else process.exit(1);
}

process.on('message', (msg: PoolParentMessage) => {
  if (msg.type === 'abort') {
    if (current?.id === msg.id) current.controller.abort();
  } else if (msg.type === 'step') {
    if (current || dying) {
      const outcome: StepOutcome = { ok: false, error: { name: 'BatonError', code: 'STEP_LOST', message: 'step process is busy' } };
      send({ type: 'result', id: msg.id, outcome });
      return;
    }
    runStep(msg).catch((e: unknown) => crashed('failure', e));
  } else if (msg.type === 'exit') {
    process.exit(0);
  }
});
// SIGTERM: cancel the running step, which reports; the parent then retires this process.
process.on('SIGTERM', () => {
  if (current) current.controller.abort();
  else process.exit(0);
});
// Ctrl-C reaches the whole process group: the worker decides what it means.
process.on('SIGINT', () => {});
process.on('disconnect', () => {
  current?.controller.abort();
  setTimeout(() => process.exit(0), 100).unref();
  if (!current) process.exit(0);
});
process.on('uncaughtException', (err) => void crashed('uncaught exception', err));
process.on('unhandledRejection', (err) => void crashed('unhandled rejection', err));

captureStdout();
Promise.all([import('./op-module.js'), import('./run-op.js'), import('./serialize-error.js')]).then(
  () => send({ type: 'ready' }),
  () => send({ type: 'ready' }),
);
