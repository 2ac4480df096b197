import { randomUUID } from 'node:crypto';
import { ActiveExecution } from '../core/active-execution.js';
import type {
  ExecutionPlan,
  Json,
  JobDefinition,
  PlanStep,
  RunEvent,
  StartInfo,
  SerializedError,
  StepLauncher,
  StepOutcome,
  StepStatus,
  TagConcurrencyLimit,
} from '../core/types.js';
import { toError } from '../errors.js';

export interface RunOptions {
  job: JobDefinition;
  plan: ExecutionPlan;
  launcher: StepLauncher;
  runId?: string;
  /** 0 = no cap. */
  maxConcurrent: number;
  tagConcurrencyLimits: readonly TagConcurrencyLimit[];
  retriesEnabled: boolean;
  /** Aborting it cancels the run: running steps are stopped, nothing new starts. */
  signal?: AbortSignal;
  onEvent?: (event: RunEvent) => void;
  /**
   * false: outputs stay wherever the launcher put them (Redis) and requests carry no inputs —
   * the launcher resolves them from the plan. Default true: outputs are kept in memory.
   */
  keepOutputs?: boolean;
  /** Cancel the run once it has run this long (run config `max_runtime_seconds`, tag `baton/max_runtime`). */
  maxRuntimeSeconds?: number;
  /** Resuming: each step's state when its previous coordinator stopped (see ActiveExecution). */
  restore?: Readonly<Record<string, { status: StepStatus; attempt: number }>>;
}

export interface RunResult {
  runId: string;
  job: string;
  status: 'SUCCESS' | 'FAILURE' | 'CANCELED';
  steps: Record<string, StepStatus>;
  outputs: Record<string, Json>;
  events: RunEvent[];
}

/**
 * Drives one run: asks the pure state machine what may start, hands those steps to the launcher,
 * and feeds back what ended. Every executor shares this loop; only the launcher differs.
 */
export async function executeRun(options: RunOptions): Promise<RunResult> {
  const { job, plan, launcher, signal } = options;
  const runId = options.runId ?? randomUUID();
  const keepOutputs = options.keepOutputs ?? true;
  const steps = new Map(plan.steps.map((s) => [s.key, s]));
  const exec = new ActiveExecution(plan, {
    maxConcurrent: options.maxConcurrent,
    tagConcurrencyLimits: options.tagConcurrencyLimits,
    retriesEnabled: options.retriesEnabled,
    ...(options.restore ? { restore: options.restore } : {}),
  });
  const events: RunEvent[] = [];
  const outputs: Record<string, Json> = {};
  const running = new Map<string, AbortController>();

  const emit = (e: Omit<RunEvent, 'timestamp' | 'runId'> & { timestamp?: string }): void => {
    const event: RunEvent = { timestamp: new Date().toISOString(), runId, ...e };
    events.push(event);
    options.onEvent?.(event);
  };

  let wake: () => void = () => {};
  const onAbort = (): void => wake();
  signal?.addEventListener('abort', onAbort);
  // max_runtime_seconds: past it, the run is canceled as if asked to, with that reason.
  let overRuntime = false;
  const runtimeTimer =
    options.maxRuntimeSeconds === undefined
      ? undefined
      : setTimeout(() => {
          overRuntime = true;
          wake();
        }, options.maxRuntimeSeconds * 1000);
  const cancelRequested = (): boolean => signal?.aborted === true || overRuntime;

  const settle = (step: PlanStep, attempt: number, outcome: StepOutcome): void => {
    running.delete(step.key);
    if (outcome.ok) {
      if (keepOutputs) outputs[step.key] = outcome.output;
      exec.succeed(step.key);
      emit({ type: 'STEP_SUCCESS', stepKey: step.key, attempt });
    } else if (exec.isCanceled) {
      exec.cancelStep(step.key);
      emit({ type: 'STEP_CANCELED', stepKey: step.key, attempt, error: outcome.error });
    } else {
      const result = exec.fail(step.key, outcome.error, Date.now());
      if (result.kind === 'retry') {
        emit({
          type: 'STEP_UP_FOR_RETRY',
          stepKey: step.key,
          attempt,
          error: outcome.error,
          retryDelaySeconds: result.delayMs / 1000,
          message: `attempt ${attempt} failed: ${outcome.error.message}; retrying in ${(result.delayMs / 1000).toFixed(2)}s`,
        });
      } else {
        emit({ type: 'STEP_FAILURE', stepKey: step.key, attempt, error: outcome.error, message: outcome.error.message });
        for (const skipped of result.skipped) {
          emit({ type: 'STEP_SKIPPED', stepKey: skipped, message: `skipped: upstream step "${step.key}" failed` });
        }
      }
    }
    wake();
  };

  const launch = (step: PlanStep, attempt: number): void => {
    const controller = new AbortController();
    running.set(step.key, controller);
    const inputs: Record<string, Json> = {};
    if (keepOutputs) {
      for (const [name, source] of Object.entries(step.inputs)) {
        inputs[name] = 'value' in source ? source.value : (outputs[source.fromStep] ?? null);
      }
    }
    const request = {
      runId,
      jobName: job.name,
      jobHash: job.hash,
      jobPath: job.sourcePath,
      stepKey: step.key,
      op: step.op,
      attempt,
      config: step.config,
      tags: step.tags,
      inputs,
    };
    let started: StartInfo | undefined;
    let ended = false;
    // The op's timeout_seconds counts from the step's start (not from its wait in a queue).
    const timeout = stepTimeout(job, step, controller);
    const start = (info: StartInfo = {}): void => {
      const where = { ...(info.worker ? { worker: info.worker } : {}), ...(info.pid ? { pid: info.pid } : {}) };
      if (started) {
        // Another worker took the attempt over: the live view says where it runs now.
        if (info.worker && info.worker !== started.worker) emit({ type: 'STEP_START', stepKey: step.key, attempt, ...where, startKind: 'takeover' });
        started = info;
        return;
      }
      started = info;
      emit({ type: 'STEP_START', stepKey: step.key, attempt, ...where, ...(info.startedAt ? { timestamp: info.startedAt, startKind: 'resumed' as const } : {}) });
      if (!ended) timeout.arm();
    };
    launcher
      .launch(request, {
        signal: controller.signal,
        onStart: start,
        onLog: (r) =>
          emit({ type: 'LOG', stepKey: step.key, attempt, level: r.level, message: r.msg, ...(r.fields ? { fields: r.fields } : {}) }),
      })
      .catch((e: unknown): StepOutcome => ({ ok: false, error: launcherError(e) }))
      .then((outcome) => {
        ended = true;
        timeout.disarm();
        // A success began somewhere even if its start was not reported; a step canceled or lost before it began did not.
        if (outcome.ok) start();
        settle(step, attempt, timeout.fired && !cancelRequested() ? timeout.outcome() : outcome);
      })
      .catch((e: unknown) => emit({ type: 'LOG', level: 'error', message: `internal error: ${toError(e).message}` }));
  };

  const stepCount = plan.steps.length;
  if (options.restore) {
    const doneCount = Object.values(exec.statuses()).filter((st) => st !== 'NOT_STARTED' && st !== 'UP_FOR_RETRY').length;
    emit({ type: 'RUN_RESUMED', stepCount, doneCount, message: `job "${job.name}": ${stepCount} steps, ${doneCount} already ended` });
  } else {
    emit({ type: 'RUN_START', stepCount, message: `run of job "${job.name}": ${stepCount} steps` });
  }
  try {
    while (!exec.isComplete) {
      if (cancelRequested() && !exec.isCanceled) {
        const why = signal?.aborted ? 'cancel requested' : `the run exceeded its max_runtime_seconds (${options.maxRuntimeSeconds} s)`;
        emit({ type: 'RUN_CANCELING', message: `${why}: stopping running steps` });
        for (const key of exec.cancel()) emit({ type: 'STEP_CANCELED', stepKey: key });
        for (const c of running.values()) c.abort();
      }
      for (const { key, attempt } of exec.takeLaunchable(Date.now())) launch(steps.get(key) as PlanStep, attempt);
      if (exec.isComplete) break;
      // Sleep until a step ends, a retry comes due, or a cancel arrives.
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        const next = exec.nextRetryAt;
        if (next !== undefined) timer = setTimeout(resolve, Math.max(0, next - Date.now()));
        if (cancelRequested() && !exec.isCanceled) resolve();
      });
      clearTimeout(timer);
    }
  } finally {
    clearTimeout(runtimeTimer);
    signal?.removeEventListener('abort', onAbort);
  }
  const status = exec.runStatus();
  const runtimeMessage = overRuntime && status === 'CANCELED' ? { message: `canceled: the run exceeded its max_runtime_seconds (${options.maxRuntimeSeconds} s)` } : {};
  emit({ type: status === 'SUCCESS' ? 'RUN_SUCCESS' : status === 'FAILURE' ? 'RUN_FAILURE' : 'RUN_CANCELED', ...runtimeMessage });
  return { runId, job: job.name, status, steps: exec.statuses(), outputs, events };
}

/** An op's `timeout_seconds`: once armed, aborts the step when it runs longer. */
function stepTimeout(job: JobDefinition, step: PlanStep, controller: AbortController) {
  const seconds = job.ops.get(step.op)?.timeoutSeconds;
  let timer: NodeJS.Timeout | undefined;
  const state = {
    fired: false,
    arm(): void {
      if (seconds === undefined || timer) return;
      timer = setTimeout(() => {
        state.fired = true;
        controller.abort();
      }, seconds * 1000);
    },
    disarm(): void {
      clearTimeout(timer);
    },
    outcome(): StepOutcome {
      const message = `step "${step.key}" timed out after ${seconds} s (its op's timeout_seconds)`;
      return { ok: false, error: { name: 'BatonError', code: 'STEP_TIMEOUT', message } };
    },
  };
  return state;
}

function launcherError(e: unknown): SerializedError {
  const err = toError(e);
  return { name: err.name, message: `launcher failed: ${err.message}`, ...(err.stack ? { stack: err.stack } : {}) };
}
