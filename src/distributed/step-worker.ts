import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { DelayedError, UnrecoverableError, Worker, WaitingError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Json, JobDefinition, RunEvent, RunStatus, SerializedError, StepOutcome } from '../core/types.js';
import { isTerminalRunStatus } from '../core/status.js';
import { BatonError } from '../errors.js';
import { runOp } from '../executors/run-op.js';
import type { StepRunner } from '../executors/step-pool.js';
import { serializeError } from '../executors/serialize-error.js';
import { createRedis } from './connection.js';
import { createPlacement, ownCopyProblem } from './job-placement.js';
import { queueList } from './options.js';
import { bullOptions, openStepQueues } from './queues.js';
import { createOutputStore, type OutputStore } from './output-store.js';
import { runKeys } from './keys.js';
import { DEFAULT_MAX_DELIVERIES, maxStalledCountFor } from './poison.js';
import { createRunStore, type AttemptRef, type StepState } from './run-store.js';
import { createSemaphore, type Semaphore } from './semaphore/semaphore.js';
import {
  addStepJobs,
  cancelChannel,
  parseStepMessage,
  QUEUE_JOB_RETENTION,
  type CancelMessage,
  type ParsedStepMessage,
  type StepJobData,
  type StepQueueJob,
} from './step-message.js';
import { distributedTuning } from './tuning.js';

export interface StepWorkerOptions {
  redisUrl: string;
  /** The queue to take steps from, or several comma-separated (`q1,q2`). */
  queue: string;
  jobs: ReadonlyMap<string, JobDefinition>;
  logger: Logger;
  /** Steps run at once in this process. */
  concurrency?: number;
  /** BullMQ lock: a killed worker's step is re-queued within about lockDuration + stalledInterval. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** On shutdown, how long running steps may take before they are aborted and re-queued. */
  graceMs?: number;
  prefix?: string;
  id?: string;
  /** Deliveries of one attempt whose workers all died before it fails (a poison step). Default 3. */
  maxDeliveries?: number;
  /** Where an attempt's op runs (a pool of step processes); in this process if unset. */
  runner?: StepRunner;
  /** How long a step no live worker can take (its job unknown, or at another hash) waits before it fails. Default 60 s. */
  placementWaitMs?: number;
}

/** What an attempt's event says; the run, step, attempt and time are filled in. */
type StepEventBody = Omit<RunEvent, 'timestamp' | 'runId' | 'stepKey' | 'attempt'>;

/** How long a first delivery's STEP_START may wait to be written with its end (see processor). */
const START_WRITE_DELAY_MS = 5;

export const WORKER_DEFAULTS = { concurrency: 10, lockDurationMs: 5000, stalledIntervalMs: 5000, graceMs: 30_000 };

export interface StepWorker {
  readonly id: string;
  /** Stops taking steps, lets running ones finish within the grace period, then re-queues the rest. */
  close(): Promise<void>;
}

interface Running {
  controller: AbortController;
  data: StepJobData;
  /** Aborted because this worker is shutting down (re-queue), not because the run was canceled. */
  requeue: boolean;
}

/** A worker process's engine: takes steps from the queue and runs the ops of jobs it loaded itself. */
export async function startStepWorker(o: StepWorkerOptions): Promise<StepWorker> {
  const id = o.id ?? `${hostname()}:${process.pid}`;
  const prefix = o.prefix ?? 'baton';
  const log = o.logger.child({ worker: id });
  const redis = createRedis(o.redisUrl);
  const subscriber = createRedis(o.redisUrl, { role: 'blocking' });
  for (const conn of [redis, subscriber]) conn.on('error', (e) => log.warn({ err: e.message }, 'redis connection error'));
  // One line per outage and one when it is over, not one per reconnection attempt.
  let lost = false;
  redis.on('reconnecting', () => {
    if (!lost) log.warn('redis connection lost: reconnecting');
    lost = true;
  });
  redis.on('ready', () => {
    if (lost) log.info('redis connection back');
    lost = false;
  });
  const runStore = createRunStore(redis, prefix);
  const tuning = distributedTuning();
  const semaphore = createSemaphore({
    redisUrl: o.redisUrl,
    prefix,
    holder: `worker:${id}`,
    leaseTtlMs: tuning.slotLeaseMs,
    waiterTtlMs: tuning.slotLeaseMs,
    sweepIntervalMs: tuning.slotSweepMs,
  });
  // Steps this worker's releases admit are enqueued from here, without waiting for their coordinator.
  const queueNames = queueList(o.queue);
  const handoffQueues = openStepQueues<StepJobData>(queueNames, redis, {
    defaultJobOptions: QUEUE_JOB_RETENTION,
    onError: (e) => log.warn({ err: e.message }, 'queue error'),
  });
  const outputStores = new Map<string, OutputStore>();
  const running = new Map<string, Running>();
  const placement = createPlacement({ redis, queue: o.queue, prefix, jobs: o.jobs, workerId: id, ...(o.placementWaitMs ? { waitMs: o.placementWaitMs } : {}) });

  const outputStoreFor = (d: StepJobData): OutputStore => {
    const key = JSON.stringify(d.outputStorage);
    let store = outputStores.get(key);
    if (!store) outputStores.set(key, (store = createOutputStore(redis, d.outputStorage, d.prefix)));
    return store;
  };

  const processor = async (job: Job<StepJobData>, token?: string): Promise<void> => {
    const parsed = parseStepMessage(job.data);
    if (!parsed.ok) return refuseMessage(job, parsed);
    const d = parsed.data;
    // A rolling deploy: a step of another copy of the job is left for a worker that has that copy.
    let placed = await placement(d);
    // A step of a run that does not exist (a stray message) or has ended is not left for anyone.
    if (placed.kind === 'leave' && !(await runIsLive(d))) placed = { kind: 'refuse', ...(ownCopyProblem(o.jobs, id, d) ?? { code: 'JOB_UNKNOWN', message: 'unknown job' }) };
    if (placed.kind === 'leave') {
      await job.updateData({ ...job.data, placement: placed.note });
      await job.moveToDelayed(Date.now() + placed.delayMs, token);
      if (placed.note.leaves === 1 || placed.note.leaves % 10 === 0) log.info({ runId: d.runId, step: d.stepKey, leaves: placed.note.leaves }, `step left on the queue: ${placed.why}`);
      throw new DelayedError();
    }
    const refusal = placed.kind === 'refuse' ? placed : undefined;
    const entry: Running = { controller: new AbortController(), data: d, requeue: false };
    running.set(job.id as string, entry);
    const quiet = (p: Promise<unknown>): void => {
      p.catch((e: unknown) => log.warn({ err: String(e) }, 'could not append an event'));
    };
    const event = (e: StepEventBody): RunEvent => ({
      timestamp: new Date().toISOString(),
      runId: d.runId,
      stepKey: d.stepKey,
      attempt: d.attempt,
      ...e,
    });
    // Every write of this attempt is fenced by its delivery's token: once another delivery takes
    // the step over (this one stalled past its lock), nothing of this one is written any more.
    const ref: AttemptRef = {
      runId: d.runId,
      stepKey: d.stepKey,
      attempt: d.attempt,
      token: token ?? `${job.id}:${randomUUID()}`,
      takeover: job.attemptsStarted > 1 || job.stalledCounter > 0 || (d.requeue ?? 0) > 0,
      // A re-queue is a new BullMQ job (its start count begins again): it comes after every delivery of the last.
      delivery: (d.requeue ?? 0) * 1_000_000 + job.attemptsStarted,
    };
    // The step's state goes with its start event, so the coordinator need not write it.
    const startedAt = new Date().toISOString();
    const start = {
      event: { type: 'STEP_START', timestamp: startedAt, runId: d.runId, stepKey: d.stepKey, attempt: d.attempt, worker: id, pid: process.pid } satisfies RunEvent,
      state: { status: 'IN_PROGRESS', attempt: d.attempt, worker: id, updatedAt: startedAt } satisfies StepState,
    };
    let starting: Promise<string | null> | undefined;
    const sendStart = (): Promise<string | null> => {
      starting ??= runStore.startAttempt(ref, start.event, start.state).then((startId) => {
        // Another delivery owns the attempt, or it ended: stop the op, report nothing.
        if (startId === null) entry.controller.abort(new BatonError('STEP_CANCELED', 'another delivery of this step owns it'));
        return startId;
      });
      return starting;
    };
    // Any other event of the attempt follows its start on the same connection, so in the stream.
    const emit = (e: StepEventBody): void => {
      if (!starting) quiet(sendStart());
      quiet(runStore.appendAttemptEvent(ref, event(e)));
    };
    let startTimer: NodeJS.Timeout | undefined;
    try {
      if (ref.takeover) {
        // A step handed out again (its worker died) may have ended meanwhile: then it must not run.
        if ((await sendStart()) === null) {
          log.info({ runId: d.runId, step: d.stepKey }, 'step already ended: not running it again');
          return;
        }
      } else {
        // A first delivery cannot have ended, so nothing waits for its start to be written. It is
        // written when the op logs, after START_WRITE_DELAY_MS, or with the end in one call: the
        // coordinator then reads a quick step's start and end together and wakes once for both.
        startTimer = setTimeout(() => quiet(sendStart()), START_WRITE_DELAY_MS);
      }
      const outputs = outputStoreFor(d);
      const { outcome, json } = await runAttempt(o.runner ?? runOp, o.jobs, id, d, entry.controller.signal, outputs, semaphore, emit, refusal);
      clearTimeout(startTimer);
      if (entry.requeue) {
        // Shutting down: hand the step back to the queue for another worker instead of failing it.
        await job.moveToWait(token);
        log.info({ runId: d.runId, step: d.stepKey }, 'step re-queued: worker shutting down');
        throw new WaitingError();
      }
      // The output, the step's state and its end event in one fenced call; the slot beside it.
      const output = json === undefined ? undefined : await outputs.prepare(d.runId, d.stepKey, json, ref.token);
      const end = event({ type: 'STEP_ATTEMPT_END', ok: outcome.ok, worker: id, ...(outcome.ok ? {} : { error: outcome.error }) });
      const done = { status: 'IN_PROGRESS', attempt: d.attempt, worker: id, updatedAt: end.timestamp } satisfies StepState;
      const [endId, admitted] = await Promise.all([
        runStore.finishAttempt(ref, {
          event: end,
          state: done,
          // A lost slot is not the attempt's end: it is enqueued again under a fresh slot.
          done: outcome.ok || outcome.error.code !== 'SLOT_LOST',
          ...(output === undefined ? {} : { output }),
          ...(starting ? {} : { start }),
        }),
        d.leaseId ? semaphore.releaseAndTake([d.leaseId], job.queueName).catch((e: unknown) => log.warn({ err: String(e) }, 'could not release a slot')) : null,
      ]);
      // Enqueued before this step completes in BullMQ, so this worker's fetch of its next job may take one.
      if (admitted && admitted.length > 0) await enqueueAdmitted(admitted, job.queueName);
      if (endId === null) {
        log.warn({ runId: d.runId, step: d.stepKey, attempt: d.attempt }, 'result not recorded: another delivery of this step owns it, or its run has ended');
        // A refusal for a run that does not exist is still this message's failure (BullMQ keeps the reason).
        if (!outcome.ok && outcome.error.retryable === false && (await redis.exists(runKeys(d.runId, d.prefix).record)) === 0) {
          throw new UnrecoverableError(outcome.error.message);
        }
      }
    } finally {
      clearTimeout(startTimer);
      running.delete(job.id as string);
    }
  };

  /** Whether the step's run exists and has not ended. */
  const runIsLive = async (d: StepJobData): Promise<boolean> => {
    const status = await redis.hget(runKeys(d.runId, d.prefix).record, 'status').catch(() => 'STARTED');
    return status !== null && !isTerminalRunStatus(status as RunStatus);
  };

  /** A message that is not a step: logged, said in its run's event log if it names a run that exists, and failed for good. */
  const refuseMessage = async (job: Job, parsed: Extract<ParsedStepMessage, { ok: false }>): Promise<never> => {
    const message = `worker ${id} refused queue message ${String(job.id)}: not a valid step (${parsed.problem})`;
    log.error({ jobId: job.id, queue: job.queueName, ...(parsed.runId ? { runId: parsed.runId } : {}) }, message);
    if (parsed.runId && (await redis.exists(runKeys(parsed.runId).record).catch(() => 0)) === 1) {
      const e: RunEvent = { type: 'LOG', level: 'error', timestamp: new Date().toISOString(), runId: parsed.runId, message };
      if (parsed.stepKey) Object.assign(e, { stepKey: parsed.stepKey, attempt: parsed.attempt ?? 1 });
      await runStore.appendEvent(e).catch(() => {});
    }
    throw new UnrecoverableError(message);
  };

  /** Steps a release of ours admitted (their coordinators enqueue them too: the same ids, no-ops). */
  const enqueueAdmitted = async (admitted: ReadonlyArray<{ leaseId: string; job: string }>, queueName: string): Promise<void> => {
    const jobs: StepQueueJob[] = [];
    for (const a of admitted) {
      try {
        const job = JSON.parse(a.job) as StepQueueJob;
        if (typeof job.name === 'string' && typeof job.jobId === 'string' && job.data?.leaseId === a.leaseId) jobs.push(job);
      } catch {
        // Malformed: its coordinator enqueues it.
      }
    }
    const handoffQueue = handoffQueues.named(queueName);
    if (!handoffQueue) return;
    await addStepJobs(handoffQueue, jobs).catch((e: unknown) => log.warn({ err: String(e) }, 'could not enqueue admitted steps (their coordinators will)'));
  };

  const workerConnection = createRedis(o.redisUrl, { role: 'bullmq' });
  // One BullMQ worker per queue served (`--concurrency` applies to each).
  const workers = queueNames.map((name) => {
    const worker = new Worker<StepJobData>(name, processor, {
      ...bullOptions(name, workerConnection),
      concurrency: o.concurrency ?? WORKER_DEFAULTS.concurrency,
      lockDuration: o.lockDurationMs ?? WORKER_DEFAULTS.lockDurationMs,
      stalledInterval: o.stalledIntervalMs ?? WORKER_DEFAULTS.stalledIntervalMs,
      // A step that keeps killing its worker fails after maxDeliveries; the coordinator's sweep notices.
      maxStalledCount: maxStalledCountFor(o.maxDeliveries ?? DEFAULT_MAX_DELIVERIES),
      autorun: false,
    });
    worker.on('error', (e) => log.warn({ err: e.message }, 'worker error'));
    worker.on('stalled', (jobId) => log.warn({ jobId }, 'step stalled (its worker died?): re-queued'));
    return worker;
  });

  await subscriber.subscribe(cancelChannel(prefix));
  subscriber.on('message', (_channel: string, raw: string) => {
    let msg: CancelMessage;
    try {
      msg = JSON.parse(raw) as CancelMessage;
    } catch {
      return;
    }
    for (const r of running.values()) {
      if (r.data.runId === msg.runId && (msg.stepKey === undefined || msg.stepKey === r.data.stepKey)) {
        log.info({ runId: r.data.runId, step: r.data.stepKey }, 'canceling step at the coordinator\'s request');
        r.controller.abort(new BatonError('STEP_CANCELED', 'run canceled'));
      }
    }
  });

  for (const worker of workers) void worker.run().catch((e: unknown) => log.error({ err: String(e) }, 'worker stopped'));
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  log.info({ queue: o.queue, jobs: [...o.jobs.keys()], concurrency: o.concurrency ?? WORKER_DEFAULTS.concurrency }, 'worker ready');

  return {
    id,
    async close() {
      const graceMs = o.graceMs ?? WORKER_DEFAULTS.graceMs;
      const closing = Promise.all(workers.map((w) => w.close()));
      const timer = setTimeout(() => {
        if (running.size > 0) log.warn({ steps: running.size }, 'grace period over: aborting running steps and re-queuing them');
        for (const r of running.values()) {
          r.requeue = true;
          r.controller.abort(new BatonError('STEP_CANCELED', 'worker shutting down'));
        }
      }, graceMs);
      await closing;
      clearTimeout(timer);
      await subscriber.quit().catch(() => {});
      await handoffQueues.close();
      await semaphore.close();
      await runStore.close();
      await Promise.all([redis.quit().catch(() => {}), workerConnection.quit().catch(() => {})]);
      log.info('worker stopped');
    },
  };
}

/** One attempt: check the job is ours and unchanged, gather inputs, run the op, store the output. */
async function runAttempt(
  runner: StepRunner,
  jobs: ReadonlyMap<string, JobDefinition>,
  workerId: string,
  d: StepJobData,
  signal: AbortSignal,
  outputs: OutputStore,
  semaphore: Semaphore,
  emit: (e: StepEventBody) => void,
  /** No live worker could take the step for the placement wait: it fails with this. */
  refusal?: { code: 'JOB_UNKNOWN' | 'JOB_HASH_MISMATCH'; message: string },
): Promise<{ outcome: StepOutcome; json?: string }> {
  const problem = refusal ?? ownCopyProblem(jobs, workerId, d);
  const job = jobs.get(d.jobName);
  const op = job?.ops.get(d.op);
  if (problem || !job || !op) return refuse(problem?.code ?? 'JOB_UNKNOWN', problem?.message ?? `worker ${workerId} cannot run "${d.jobName}"`);
  try {
    // Claim the step's slots (renewed by this worker from now on) while its inputs are fetched.
    const [claimed, inputs] = await Promise.all([d.leaseId ? semaphore.claim(d.leaseId) : true, resolveInputs(d, outputs)]);
    if (!claimed) {
      const message = "the step's concurrency slot expired before this worker took it; the coordinator takes a fresh one";
      return { outcome: { ok: false, error: { name: 'BatonError', code: 'SLOT_LOST', message } } };
    }
    const request = {
      runId: d.runId,
      jobName: d.jobName,
      jobHash: d.jobHash,
      jobPath: job.sourcePath,
      stepKey: d.stepKey,
      op: d.op,
      attempt: d.attempt,
      config: d.config,
      tags: d.tags,
      inputs,
    };
    const outcome = await runner(op.impl, job.baseDir, request, {
      signal,
      onLog: (r) => emit({ type: 'LOG', level: r.level, message: r.msg, ...(r.fields ? { fields: r.fields } : {}) }),
    });
    return outcome.ok ? { outcome, json: outputs.serialize(d.stepKey, outcome.output) } : { outcome };
  } catch (e) {
    const error = serializeError(e);
    // An output over the size limit fails the same way every time: do not retry it.
    return { outcome: { ok: false, error: error.code === 'OP_OUTPUT_TOO_LARGE' ? { ...error, retryable: false } : error } };
  }
}

async function resolveInputs(d: StepJobData, outputs: OutputStore): Promise<Record<string, Json>> {
  const inputs: Record<string, Json> = {};
  const fromSteps = new Map<string, string>();
  for (const [name, source] of Object.entries(d.inputs)) {
    if ('value' in source) inputs[name] = source.value;
    else fromSteps.set(name, source.fromStep);
  }
  if (fromSteps.size > 0) {
    const values = await outputs.getMany(d.runId, [...new Set(fromSteps.values())]);
    for (const [name, step] of fromSteps) inputs[name] = values[step] ?? null;
  }
  return inputs;
}

function refuse(code: 'JOB_UNKNOWN' | 'JOB_HASH_MISMATCH', message: string): { outcome: StepOutcome } {
  const error: SerializedError = { name: 'BatonError', code, message, retryable: false };
  return { outcome: { ok: false, error } };
}

