/** Messages between a step pool (step-pool.ts) and its long-lived step processes (pool-process.ts). */
import type { OpImpl, OpLogRecord, StepOutcome, StepRequest } from '../core/types.js';

/** Pool -> step process. `id` names one step sent to that process. */
export type PoolParentMessage =
  | { type: 'step'; id: number; impl: OpImpl; baseDir: string; request: StepRequest; graceMs: number }
  | { type: 'abort'; id: number }
  | { type: 'exit' };

/** Step process -> pool. `retiring`: the process is about to exit (it broke) and takes no more steps. */
export type PoolChildMessage =
  | { type: 'ready' }
  | { type: 'log'; id: number; record: OpLogRecord }
  | { type: 'result'; id: number; outcome: StepOutcome }
  | { type: 'retiring' };
