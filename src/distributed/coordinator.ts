import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { ExecutionPlan, JobDefinition, RunConfig, RunEvent, StepStatus } from '../core/types.js';
import { executeRun, type RunResult } from '../run/execute-run.js';
import type { ExecuteOptions } from '../run/execute-job.js';
import { stepsFromEvents, type ResumedStep } from '../run/resume-state.js';
import { assertRedisReachable, createRedis } from './connection.js';
import { createDistributedLauncher } from './distributed-launcher.js';
import { DEFAULT_PREFIX, runKeys } from './keys.js';
import { BatonError, RunLeaseLostError } from '../errors.js';
import { createOutputStore } from './output-store.js';
import { takeRunLease } from './run-lease.js';
import { redactRunConfig } from './recorded-config.js';
import { createRunStore, requireRun, type RunStore } from './run-store.js';
import { createSemaphore } from './semaphore/semaphore.js';
import { openStepQueues } from './queues.js';
import { QUEUE_JOB_RETENTION, type StepJobData } from './step-message.js';
import { distributedTuning } from './tuning.js';
import { maxRuntimeOf } from '../run/max-runtime.js';
import { watchForWorkers } from './worker-watch.js';

export interface DriveOptions extends ExecuteOptions {
  /** Re-execution: the run this one was made from. */
  parentRunId?: string;
  /**
   * Resuming a run already recorded in Redis (its coordinator died): once this coordinator holds
   * the run's lease, the run's event stream is replayed to see where each step got to.
   */
  resume?: boolean;
  /** How long to wait for a dead coordinator's lease on the run to lapse (a live one's: RUN_BUSY at once). */
  leaseWaitMs?: number;
}

/**
 * The coordinator side of the distributed executor: records the run in Redis (or adopts a
 * recorded one), holds a lease on it while it drives it through BullMQ, and obeys a cancel that
 * arrives through the run's event stream from any machine.
 */
export async function executeDistributed(
  job: JobDefinition,
  plan: ExecutionPlan,
  runConfig: RunConfig,
  options: DriveOptions,
): Promise<RunResult> {
  const ex = runConfig.executor;
  if (ex.kind !== 'distributed') throw new Error('executeDistributed needs the distributed executor');
  await assertRedisReachable(ex.redisUrl);
  const prefix = DEFAULT_PREFIX;
  const tuning = distributedTuning();
  const runId = options.runId ?? randomUUID();
  const holder = `coordinator:${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const redis = createRedis(ex.redisUrl);
  redis.on('error', () => {}); // reconnection is automatic; commands wait in the offline queue
  const runStore = createRunStore(redis, prefix, { driver: holder });
  const runTags = { ...job.tags, ...(options.tags ?? {}) };
  if (!options.resume && (await redis.exists(runKeys(runId, prefix).record)) === 1) {
    await redis.quit().catch(() => {});
    throw new BatonError('RUN_BUSY', `run id "${runId}" is already taken by another run`);
  }

  const lease = await takeRunLease(redis, runId, holder, { ttlMs: tuning.runLeaseMs, waitMs: options.leaseWaitMs ?? 0, prefix }).catch(
    async (e: unknown) => {
      await redis.quit().catch(() => {});
      throw e;
    },
  );
  // Replayed only now that no other coordinator can write to the run: what it sees stays true.
  const resume = options.resume
    ? await replayRun(runStore, runId).catch(async (e: unknown) => {
        await lease.release();
        await redis.quit().catch(() => {});
        throw e;
      })
    : undefined;
  const queueConnection = createRedis(ex.redisUrl, { role: 'bullmq' });
  const queues = openStepQueues<StepJobData>(ex.queue, queueConnection, { defaultJobOptions: QUEUE_JOB_RETENTION });
  const semaphore = createSemaphore({
    redisUrl: ex.redisUrl,
    prefix,
    holder,
    leaseTtlMs: tuning.slotLeaseMs,
    waiterTtlMs: tuning.slotLeaseMs,
    sweepIntervalMs: tuning.slotSweepMs,
  });
  // Canceled by the caller (Ctrl-C) or by `coordinator cancel` from anywhere.
  const cancel = new AbortController();
  const onCallerAbort = (): void => cancel.abort();
  options.signal?.addEventListener('abort', onCallerAbort, { once: true });
  if (options.signal?.aborted) cancel.abort();

  const recorder = createRecorder(runStore, () => lease.forfeit());
  const launcher = createDistributedLauncher({
    runId,
    plan,
    queues,
    redis,
    runStore,
    semaphore,
    runLimits: ex.tagConcurrencyLimits,
    runTags,
    outputStorage: ex.outputStorage,
    prefix,
    ...(resume ? { resume } : {}),
    onCancelRequested: () => cancel.abort(),
    stillDriving: () => lease.check(),
  });
  const lastKnown = knownState(plan, resume?.steps);
  let finalEvent: RunEvent | undefined;
  // Lost the lease (this process stalled, or was cut off from Redis, past the lease): another
  // coordinator may drive the run now. Stop without writing anything to it, and say so.
  let lostLease = false;
  let onLeaseLost: () => void = () => {};
  const leaseLost = new Promise<void>((resolve) => (onLeaseLost = resolve));
  lease.onLost(() => {
    lostLease = true;
    onLeaseLost();
    recorder.mute();
    launcher.abandon();
    cancel.abort();
  });
  const onRunEvent = (e: RunEvent): void => {
    if (!lease.check()) return; // fires the lost-lease handling above: nothing more is written
    lastKnown.saw(e);
    // The run's last event is written once its final status is: whoever follows the stream
    // to its end finds the record (and the runs indexes) final too.
    if (FINAL_RUN_EVENTS.has(e.type)) finalEvent = e;
    else recorder.record(e);
    if (e.type === 'RUN_CANCELING') recorder.track(() => runStore.setRunStatus(runId, 'CANCELING'));
    options.onEvent?.(e);
  };
  // Queued steps that no live worker can take are said, and said again, until one comes.
  const watch = watchForWorkers({
    redis,
    prefix,
    queue: ex.queue,
    jobName: job.name,
    jobHash: job.hash,
    queuedSteps: (afterMs) => launcher.queuedSteps(afterMs),
    say: (n) => onRunEvent({ type: 'LOG', timestamp: new Date().toISOString(), runId, level: n.level, message: n.message, fields: n.fields }),
  });
  try {
    if (!resume) {
      await runStore.createRun(
        {
          runId,
          job: job.name,
          jobHash: job.hash,
          jobPath: job.sourcePath,
          status: 'STARTED',
          tags: runTags,
          startedAt: new Date().toISOString(),
          runConfig: redactRunConfig(runConfig.raw),
          queue: ex.queue,
          ...(options.parentRunId ? { parentRunId: options.parentRunId } : {}),
        },
        plan,
      );
    } else {
      await runStore.setRunStatus(runId, 'STARTED');
    }
    // Steps that no limit can match skip the semaphore, once it knows which limits exist.
    await semaphore.ready().catch(() => {});
    const restore = resume ? restoreStates(resume.steps) : undefined;
    const maxRuntimeSeconds = maxRuntimeOf(runConfig, runTags);
    const result = await executeRun({
      job,
      plan,
      launcher,
      runId,
      maxConcurrent: ex.maxConcurrent,
      // The run's own limits are enforced by the shared semaphores, scoped to the run.
      tagConcurrencyLimits: [],
      retriesEnabled: ex.retries,
      keepOutputs: false,
      signal: cancel.signal,
      ...(restore ? { restore } : {}),
      ...(maxRuntimeSeconds !== undefined ? { maxRuntimeSeconds } : {}),
      onEvent: onRunEvent,
    });
    watch.stop();
    // A coordinator that lost its lease does not wait for its writes: they may hang on a cut-off
    // connection, and any that lands is refused by the run's fence.
    await Promise.race([recorder.flushed(), leaseLost]);
    if (lostLease) {
      throw new RunLeaseLostError(
        `stopped driving run "${runId}": this coordinator lost its lease on it (it was stalled or cut off from Redis for longer than ${tuning.runLeaseMs} ms), so another coordinator may have adopted it; nothing was written to the run after that`,
        { runId, job: job.name, status: lastKnown.status, steps: lastKnown.steps },
      );
    }
    if (!(await runStore.setRunStatus(runId, result.status, new Date().toISOString(), ex.retentionSeconds))) {
      const final = (await runStore.getRun(runId))?.record.status ?? result.status;
      throw new BatonError('RUN_NOT_RESUMABLE', `run "${runId}" was already ended ${final} by another process; this coordinator left it so`);
    }
    if (finalEvent) await runStore.appendEvent(finalEvent);
    const succeeded = plan.steps.filter((s) => result.steps[s.key] === 'SUCCESS').map((s) => s.key);
    const outputs = succeeded.length > 0 ? await createOutputStore(redis, ex.outputStorage, prefix).getMany(runId, succeeded) : {};
    return { ...result, outputs };
  } finally {
    watch.stop();
    options.signal?.removeEventListener('abort', onCallerAbort);
    // Lost: nothing more goes to this Redis (it may be unreachable): drop the connections at once,
    // and do not wait long on the rest (a cut-off socket answers nothing until the OS gives up).
    if (lostLease) for (const conn of [redis, queueConnection]) conn.disconnect();
    const closing = (async () => {
      await lease.release();
      await runStore.close(); // ends the launcher's blocked read at once
      await launcher.close();
      await semaphore.close();
      await queues.close();
      // BullMQ leaves connections it was handed open.
      await Promise.all([redis.quit().catch(() => {}), queueConnection.quit().catch(() => {})]);
    })();
    await (lostLease ? Promise.race([closing, new Promise((r) => setTimeout(r, LOST_CLOSE_MS).unref())]) : closing);
  }
}

/** What this coordinator last knew of its run, from the events it wrote (for RUN_LEASE_LOST). */
function knownState(plan: ExecutionPlan, resumed?: Readonly<Record<string, ResumedStep>>) {
  const steps: Record<string, string> = Object.fromEntries(plan.steps.map((s) => [s.key, resumed?.[s.key]?.status ?? 'NOT_STARTED']));
  const known = {
    status: 'STARTED',
    steps,
    saw(e: RunEvent): void {
      if (e.type === 'RUN_CANCELING') known.status = 'CANCELING';
      const status = e.type === 'STEP_START' ? 'IN_PROGRESS' : STEP_STATUS_OF[e.type];
      if (e.stepKey !== undefined && status !== undefined) steps[e.stepKey] = status;
    },
  };
  return known;
}

/** Where each step of a run got to, from its record and its whole event stream; a finished run is not resumed. */
async function replayRun(store: RunStore, runId: string): Promise<{ afterId: string; steps: Record<string, ResumedStep> }> {
  const stored = await requireRun(store, runId);
  if (FINISHED_RUN.has(stored.record.status)) {
    throw new BatonError('RUN_NOT_RESUMABLE', `run "${runId}" already ended ${stored.record.status}; use reexecute to run it again`);
  }
  const events = await store.readEvents(runId);
  return { afterId: events.at(-1)?.id ?? '0-0', steps: stepsFromEvents(events.map((e) => e.event)) };
}

/** How long a coordinator that lost its lease waits for its connections to close before it gives up on them. */
const LOST_CLOSE_MS = 2000;

const FINISHED_RUN: ReadonlySet<string> = new Set(['SUCCESS', 'FAILURE', 'CANCELED']);
const FINAL_RUN_EVENTS: ReadonlySet<RunEvent['type']> = new Set(['RUN_SUCCESS', 'RUN_FAILURE', 'RUN_CANCELED']);

function restoreStates(steps: Readonly<Record<string, ResumedStep>>): Record<string, { status: StepStatus; attempt: number }> {
  return Object.fromEntries(Object.entries(steps).map(([k, s]) => [k, { status: s.status, attempt: s.attempt }]));
}

const STEP_STATUS_OF: Partial<Record<RunEvent['type'], StepStatus>> = {
  STEP_SUCCESS: 'SUCCESS',
  STEP_FAILURE: 'FAILURE',
  STEP_UP_FOR_RETRY: 'UP_FOR_RETRY',
  STEP_SKIPPED: 'SKIPPED',
  STEP_CANCELED: 'CANCELED',
};

/**
 * Persists the coordinator's decisions: step states and events (workers write their own
 * STEP_START and LOG). Writes are not awaited
 * one by one (ioredis keeps their order on the connection); `flushed` waits for all of them.
 */
function createRecorder(
  store: RunStore,
  /** Called when a write finds the run lease another's: it fires the lost-lease handling. */
  forfeit: () => void,
): {
  record(e: RunEvent): void;
  track(write: () => Promise<unknown>): void;
  /** Writes nothing from now on (the run is no longer ours). */
  mute(): void;
  flushed(): Promise<void>;
} {
  const pending = new Set<Promise<unknown>>();
  let muted = false;
  const track = (write: () => Promise<unknown>): void => {
    if (muted) return;
    const q = write()
      .catch((e: unknown) => {
        if (e instanceof BatonError && e.code === 'RUN_LEASE_LOST') {
          muted = true;
          forfeit();
        }
      })
      .finally(() => pending.delete(q));
    pending.add(q);
  };
  return {
    track,
    mute() {
      muted = true;
    },
    record(e) {
      // Workers write STEP_START (with the step's state) and op LOG lines themselves.
      if ((e.type === 'LOG' || e.type === 'STEP_START') && e.stepKey !== undefined) return;
      const status = STEP_STATUS_OF[e.type];
      if (e.stepKey === undefined || status === undefined) return track(() => store.appendEvent(e));
      const state = { status, attempt: e.attempt ?? 0, updatedAt: e.timestamp, ...(e.worker ? { worker: e.worker } : {}) };
      track(() => store.recordStepEvent(e, state));
    },
    async flushed() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}
