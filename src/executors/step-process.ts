/**
 * Child entry of the multiprocess executor: runs exactly one step, then exits. Its startup is
 * per-step overhead, so it imports nothing up front; the runtime is loaded on the first message
 * (spawn) or ahead of time together with the preload modules (forkserver).
 */
import * as nodeModule from 'node:module';
import type { OpLogRecord, StepOutcome } from '../core/types.js';
import type { ChildMessage, ParentMessage } from './process-pool.js';

// Node >= 22.1 caches compiled code on disk, cutting every later step process's startup; no-op on 20.
(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const controller = new AbortController();
let started = false;
let done = false;

function send(msg: ChildMessage, then?: () => void): void {
  if (!process.connected) {
    then?.();
    return;
  }
  process.send?.(msg, undefined, undefined, () => then?.());
}

function finish(outcome: StepOutcome, exitCode = 0): void {
  if (done) return;
  done = true;
  // Exit explicitly: an op may leave timers or sockets open that would keep this process alive.
  send({ type: 'result', outcome }, () => process.exit(exitCode));
}

function abort(): void {
  if (!started) process.exit(0); // an idle warm process: nothing to wind down
  controller.abort();
}

/** What the op prints on stdout (console.log) becomes log lines of its step, never the coordinator's stdout. */
function captureStdout(): void {
  let pending = '';
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    pending += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    let nl = pending.indexOf('\n');
    while (nl !== -1) {
      const msg = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!done) send({ type: 'log', record: { level: 'info', msg, time: Date.now() } });
      nl = pending.indexOf('\n');
    }
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }) as typeof process.stdout.write;
}

async function runStep(msg: Extract<ParentMessage, { type: 'step' }>, warm: Promise<void>): Promise<void> {
  await warm;
  captureStdout();
  send({ type: 'start' });
  const { runOp } = await import('./run-op.js');
  const hooks = {
    signal: controller.signal,
    onLog: (record: OpLogRecord): void => {
      if (!done) send({ type: 'log', record });
    },
  };
  finish(await runOp(msg.impl, msg.baseDir, msg.request, hooks, { graceMs: msg.graceMs }));
}

async function crashed(err: unknown): Promise<void> {
  const { serializeError } = await import('./serialize-error.js');
  const error = serializeError(err);
  finish({ ok: false, error: { ...error, code: error.code ?? 'OP_FAILED' } }, 1);
}

/** Forkserver: load the runtime and the preload modules before reporting ready. */
async function warmUp(preload: string[]): Promise<void> {
  const [{ importModule }] = await Promise.all([
    import('./op-module.js'),
    import('./run-op.js'),
    import('./run-command.js'),
  ]);
  for (const path of preload) {
    // A broken preload module is not fatal: the op that imports it reports the real error.
    await importModule(path).catch(() => undefined);
  }
}

const preloadJson = process.env.BATON_PRELOAD;
delete process.env.BATON_PRELOAD; // not for the op's own child processes
let warm: Promise<void> = Promise.resolve();

process.on('message', (msg: ParentMessage) => {
  if (msg.type === 'abort') abort();
  else if (msg.type === 'step' && !started) {
    started = true;
    runStep(msg, warm).catch(crashed);
  }
});
process.on('SIGTERM', abort);
// Ctrl-C at a terminal reaches the whole process group: the coordinator decides what a cancel
// means (and tells us through IPC and SIGTERM); a step process must not fail its op on its own.
process.on('SIGINT', () => {});
// The parent is gone: nobody will read the result, so cancel the op and leave.
process.on('disconnect', abort);
process.on('uncaughtException', (err) => void crashed(err));
process.on('unhandledRejection', (err) => void crashed(err));

if (preloadJson !== undefined) {
  warm = warmUp(JSON.parse(preloadJson) as string[]);
  const ready = (): void => {
    send({ type: 'ready' });
    // pino (~30 ms) only once idle: a step taken at once by a waiting run skips it unless it logs.
    setTimeout(() => started || nodeModule.createRequire(import.meta.url)('pino'), 10).unref();
  };
  warm.then(ready, ready);
}
