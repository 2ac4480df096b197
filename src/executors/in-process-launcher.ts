import type { JobDefinition, StepLauncher } from '../core/types.js';
import { runOp } from './run-op.js';
import { failure } from './serialize-error.js';

export interface InProcessOptions {
  /** How long a canceled op gets before it is abandoned (fn) or SIGKILLed (command). */
  graceMs?: number;
}

/** Runs each attempt in this process: Dagster's in_process executor. */
export function createInProcessLauncher(job: JobDefinition, options: InProcessOptions = {}): StepLauncher {
  return {
    async launch(request, hooks) {
      const op = job.ops.get(request.op);
      if (!op) return failure('PLAN_INVALID', `job "${job.name}" has no op "${request.op}"`, { retryable: false });
      hooks.onStart?.({ pid: process.pid });
      // Copies: an op that mutates its inputs must not change what other steps see.
      const isolated = { ...request, inputs: structuredClone(request.inputs), config: structuredClone(request.config) };
      return runOp(op.impl, job.baseDir, isolated, hooks, options);
    },
    async close() {},
  };
}
