import type { Logger } from 'pino';
import type { LaunchHooks, OpImpl, OpLogRecord, StepOutcome, StepRequest } from '../core/types.js';
import { importOpFunction, type OpContext, type OpFunction } from './op-module.js';
import { createOpLogger } from './op-logger.js';
import { canceled, failure, serializeError, toJson } from './serialize-error.js';

export interface RunOpOptions {
  /** How long a canceled op gets to wind down before it is abandoned (fn) or SIGKILLed (command). */
  graceMs?: number;
}

export const DEFAULT_GRACE_MS = 5000;

/** Runs one attempt of an op in this process. Never rejects. */
export async function runOp(
  impl: OpImpl,
  baseDir: string,
  request: StepRequest,
  hooks: LaunchHooks,
  options: RunOpOptions = {},
): Promise<StepOutcome> {
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  try {
    if (hooks.signal.aborted) return canceled(request);
    if (impl.kind === 'command') {
      // Lazy: fn steps (the common case in a child process) never load the command runner.
      const { runCommand } = await import('./run-command.js');
      return await runCommand(impl.argv, baseDir, request, hooks, { graceMs });
    }
    return await runFn(impl, request, hooks, graceMs);
  } catch (err) {
    const error = serializeError(err);
    return { ok: false, error: { ...error, code: error.code ?? 'OP_FAILED' } };
  }
}

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

async function runFn(
  impl: { module: string; exportName: string },
  request: StepRequest,
  hooks: LaunchHooks,
  graceMs: number,
): Promise<StepOutcome> {
  let fn: OpFunction;
  try {
    fn = await importOpFunction(impl);
  } catch (err) {
    return { ok: false, error: serializeError(err) };
  }
  // Records logged after the outcome (an abandoned op still running) are dropped.
  let open = true;
  const onLog = (record: OpLogRecord): void => {
    if (open) hooks.onLog(record);
  };
  const { runId, op, attempt } = request;
  let logger: Logger | undefined;
  const context: OpContext = {
    runId,
    op,
    config: request.config,
    tags: request.tags,
    attempt,
    signal: hooks.signal,
    get log(): Logger {
      logger ??= createOpLogger({ runId, op, attempt }, onLog);
      return logger;
    },
  };
  const call = fn;
  const settled: Promise<Settled> = Promise.resolve()
    .then(() => call(context, request.inputs))
    .then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
  const result = await untilAborted(settled, hooks.signal, graceMs);
  open = false;
  if (!result || hooks.signal.aborted) return canceled(request);
  if (!result.ok) {
    const error = serializeError(result.error);
    return { ok: false, error: { ...error, code: error.code ?? 'OP_FAILED' } };
  }
  if (result.value === undefined) return { ok: true, output: null };
  try {
    return { ok: true, output: toJson(result.value) };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return failure('OP_OUTPUT_NOT_JSON', `op "${op}" returned a value that is not JSON: ${why}`, { retryable: false });
  }
}

/**
 * The op's settlement; on abort, waits up to graceMs for the op to notice its signal, then gives
 * up (undefined). An in-process op cannot be killed, only abandoned.
 */
function untilAborted(settled: Promise<Settled>, signal: AbortSignal, graceMs: number): Promise<Settled | undefined> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      timer = setTimeout(() => resolve(undefined), graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    void settled.then((r) => {
      signal.removeEventListener('abort', onAbort);
      clearTimeout(timer);
      resolve(r);
    });
  });
}
