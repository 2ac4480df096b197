import type { JobDefinition, StepLauncher, StepOutcome } from '../core/types.js';
import { runOp } from './run-op.js';
import { failure, serializeError } from './serialize-error.js';

export interface InProcessOptions {
  /** How long a canceled op gets before it is abandoned (fn) or SIGKILLed (command). */
  graceMs?: number;
}

/**
 * Runs each attempt in this process: Dagster's in_process executor. An unhandled rejection or an
 * uncaught exception while a step runs (a forgotten await) fails that step instead of ending the
 * process; outside a step, Node's own behaviour applies. `process.exit` in an op still ends the process.
 */
export function createInProcessLauncher(job: JobDefinition, options: InProcessOptions = {}): StepLauncher {
  const breakers = new Set<(outcome: StepOutcome) => void>();
  const onBroken = (kind: string) => (err: unknown): void => {
    const error = serializeError(err);
    const outcome: StepOutcome = { ok: false, error: { ...error, message: `${kind} while the step ran: ${error.message}`, code: error.code ?? 'OP_FAILED' } };
    for (const fail of breakers) fail(outcome);
  };
  const onRejection = onBroken('unhandled rejection');
  const onException = onBroken('uncaught exception');
  const watch = (fail: (outcome: StepOutcome) => void): (() => void) => {
    if (breakers.size === 0) {
      process.on('unhandledRejection', onRejection);
      process.on('uncaughtException', onException);
    }
    breakers.add(fail);
    return () => {
      breakers.delete(fail);
      if (breakers.size === 0) {
        process.off('unhandledRejection', onRejection);
        process.off('uncaughtException', onException);
      }
    };
  };
  return {
    async launch(request, hooks) {
      const op = job.ops.get(request.op);
      if (!op) return failure('PLAN_INVALID', `job "${job.name}" has no op "${request.op}"`, { retryable: false });
      hooks.onStart?.({ pid: process.pid });
      // Copies: an op that mutates its inputs must not change what other steps see.
      const isolated = { ...request, inputs: structuredClone(request.inputs), config: structuredClone(request.config) };
      let unwatch = (): void => {};
      const broken = new Promise<StepOutcome>((resolve) => {
        unwatch = watch(resolve);
      });
      try {
        return await Promise.race([runOp(op.impl, job.baseDir, isolated, hooks, options), broken]);
      } finally {
        unwatch();
      }
    },
    async close() {},
  };
}
