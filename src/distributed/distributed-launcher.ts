import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { bucketsFor } from '../core/tag-limits.js';
import type {
  ExecutionPlan,
  LaunchHooks,
  OutputStorage,
  PlanStep,
  RunEvent,
  SerializedError,
  StepLauncher,
  StepOutcome,
  StepRequest,
  TagConcurrencyLimit,
  Tags,
} from '../core/types.js';
import type { ResumedStep } from '../run/resume-state.js';
import { failedQueueJobReason } from './poison.js';
import type { StepQueues } from './queues.js';
import type { RunStore } from './run-store.js';
import type { Semaphore, SlotRequest } from './semaphore/semaphore.js';
import { describeLimitsFor, globalLimitDefs } from './semaphore/limits-admin.js';
import { addStepJobs, cancelChannel, stepJobId, stepPriority, type StepJobData, type StepQueueJob } from './step-message.js';

export interface DistributedLauncherOptions {
  runId: string;
  plan: ExecutionPlan;
  /** The run's queues: each step goes to its own (queues.ts). */
  queues: StepQueues<StepJobData>;
  /** Ordinary commands and PUBLISH. */
  redis: Redis;
  runStore: RunStore;
  semaphore: Semaphore;
  /** The run's own tag limits: enforced through the shared semaphores, scoped to this run. */
  runLimits: readonly TagConcurrencyLimit[];
  runTags: Tags;
  outputStorage: OutputStorage;
  prefix: string;
  /** How often in-flight steps are checked against BullMQ for a step lost without a result. */
  sweepIntervalMs?: number;
  /** Resuming: where each step got to, and the stream id the replay stopped at. */
  resume?: { afterId: string; steps: Readonly<Record<string, ResumedStep>> };
  /** Someone asked, through the run's event stream, for the run to be canceled. */
  onCancelRequested?: () => void;
  /**
   * Asked before each write to the queue: false means this coordinator may no longer drive the
   * run (its lease lapsed), and it will call `abandon`.
   */
  stillDriving?: () => boolean;
}

/** A step still waiting for a slot after this long gets a log line saying so. */
const WAITING_NOTICE_MS = 250;

export interface DistributedLauncher extends StepLauncher {
  /**
   * This coordinator lost its lease on the run: another drives it now. Every step in flight ends
   * here as canceled, touching nothing in Redis (no removal, no cancel message, no release), and
   * nothing more is enqueued.
   */
  abandon(): void;
  /** Steps on the queue for at least `afterMs` that no worker has started (for the worker watch). */
  queuedSteps(afterMs: number): string[];
}

interface InFlight {
  data: StepJobData;
  jobId: string;
  requeues: number;
  hooks: LaunchHooks;
  resolve: (o: StepOutcome) => void;
  since: number;
  /** A worker wrote the attempt's STEP_START. */
  started?: boolean;
}

/**
 * Moves steps through BullMQ. Each attempt first takes a slot in every tag limit it matches
 * (global and the run's own, one atomic semaphore call), then is enqueued (batched per tick);
 * how it went is learnt from the run's event stream, where workers append STEP_START, LOG and
 * STEP_ATTEMPT_END. It never decides anything: the run loop does.
 */
export function createDistributedLauncher(o: DistributedLauncherOptions): DistributedLauncher {
  const steps = new Map<string, PlanStep>(o.plan.steps.map((s) => [s.key, s]));
  const inFlight = new Map<string, InFlight>();
  let batch: StepQueueJob[] = [];
  let closed = false;
  let abandoned = false;
  let lastId = o.resume?.afterId ?? '0-0';
  /** Ends the stream reported for steps not in flight here (yet): a resumed run's launch takes them. */
  const pendingEnds = new Map<string, { attempt: number; outcome: StepOutcome }>();
  let defsCache: { at: number; defs: Promise<TagConcurrencyLimit[]> } | undefined;
  /** Resolved once the pump has read past a stream id. */
  let catchUps: Array<{ id: string; resolve: () => void }> = [];

  const enqueue = (f: InFlight): void => {
    if (abandoned) return void settle(f.data.stepKey, canceledOutcome('this coordinator lost its lease on the run'));
    f.jobId = stepJobId(o.runId, f.data.stepKey, f.data.attempt, f.requeues);
    f.since = Date.now();
    if (f.requeues > 0) f.data = { ...f.data, requeue: f.requeues };
    if (batch.length === 0) setImmediate(flush);
    batch.push({ name: f.data.op, data: f.data, jobId: f.jobId });
  };

  const driving = (): boolean => !abandoned && (o.stillDriving?.() ?? true);

  const flush = (): void => {
    const jobs = batch;
    batch = [];
    if (jobs.length === 0 || !driving()) return;
    const byQueue = new Map<Queue<StepJobData>, StepQueueJob[]>();
    for (const j of jobs) {
      const q = o.queues.forStep(j.data.stepKey);
      byQueue.set(q, [...(byQueue.get(q) ?? []), j]);
    }
    for (const [q, some] of byQueue) {
      addStepJobs(q, some).catch((e: unknown) => {
        for (const j of some) settle(j.data.stepKey, { ok: false, error: lost(`could not enqueue: ${String(e)}`) });
      });
    }
  };

  /**
   * `reportedByWorker`: the worker released the step's slot itself, together with its end event.
   * Otherwise (lost, canceled, never sent) the coordinator releases it; a release costs a grant
   * pass over every waiter, so it is not repeated needlessly.
   */
  const settle = (stepKey: string, outcome: StepOutcome, reportedByWorker = false): void => {
    const f = inFlight.get(stepKey);
    if (!f) return;
    inFlight.delete(stepKey);
    if (f.data.leaseId && !reportedByWorker && !abandoned) o.semaphore.release([f.data.leaseId]).catch(() => {});
    f.resolve(outcome);
  };

  /** The worker found the step's lease expired (the step was re-queued after its worker died): take a fresh one. */
  const retakeSlot = async (f: InFlight): Promise<void> => {
    try {
      const requeues = f.requeues + 1;
      const lease = await o.semaphore.acquire(slotRequest(f.data, requeues), f.hooks.signal);
      if (inFlight.get(f.data.stepKey) !== f) return; // a worker enqueued and ran it on the grant
      f.data = { ...f.data, leaseId: lease.buckets.length > 0 ? lease.id : undefined };
      f.requeues = requeues;
      enqueue(f);
    } catch {
      settle(f.data.stepKey, canceledOutcome('canceled while waiting for a concurrency slot'));
    }
  };

  /** The lease id is chosen here so the queue job a freeing worker may enqueue already names it. */
  const slotRequest = (d: StepJobData, requeues: number): SlotRequest => {
    const id = randomUUID();
    const data = { ...d, leaseId: id, ...(requeues > 0 ? { requeue: requeues } : {}) };
    const job: StepQueueJob = { name: d.op, data, jobId: stepJobId(o.runId, d.stepKey, d.attempt, requeues) };
    return {
      id,
      runId: o.runId,
      stepKey: d.stepKey,
      attempt: d.attempt,
      tags: d.tags,
      priority: stepPriority(d.tags, o.runTags),
      runLimits: o.runLimits,
      handoff: { queue: o.queues.forStep(d.stepKey).name, job: JSON.stringify(job) },
    };
  };

  // Follows the run's event stream; the only blocking connection the coordinator holds per run.
  const pump = (async () => {
    while (!closed) {
      let events;
      try {
        events = await o.runStore.readEvents(o.runId, lastId, { blockMs: 1000, count: 1000 });
      } catch {
        if (closed) break;
        await new Promise((r) => setTimeout(r, 200)); // Redis restarting: try again
        continue;
      }
      for (const { id, event: e } of events) {
        lastId = id;
        if (e.type === 'RUN_CANCELING') o.onCancelRequested?.();
        const f = e.stepKey === undefined ? undefined : inFlight.get(e.stepKey);
        if (!f || e.attempt !== f.data.attempt) {
          if (e.type === 'STEP_ATTEMPT_END' && e.stepKey !== undefined && e.error?.code !== 'SLOT_LOST') {
            pendingEnds.set(e.stepKey, { attempt: e.attempt ?? 0, outcome: outcomeOf(e) });
          }
          continue;
        }
        if (e.type === 'STEP_START') f.started = true;
        if (e.type === 'STEP_START') f.hooks.onStart?.({ ...(e.worker ? { worker: e.worker } : {}), ...(e.pid ? { pid: e.pid } : {}) });
        else if (e.type === 'LOG') f.hooks.onLog({ level: e.level ?? 'info', msg: e.message ?? '', time: Date.parse(e.timestamp), ...(e.fields ? { fields: e.fields } : {}) });
        else if (e.type === 'STEP_ATTEMPT_END') {
          if (!e.ok && e.error?.code === 'SLOT_LOST') void retakeSlot(f);
          else settle(e.stepKey as string, outcomeOf(e), true);
        }
      }
      catchUps = catchUps.filter((c) => (compareStreamIds(lastId, c.id) >= 0 ? void c.resolve() : true));
    }
    for (const c of catchUps) c.resolve();
  })();

  /** Resolves once the pump has read every event in the stream now. */
  const caughtUp = async (): Promise<void> => {
    const last = await o.runStore.lastEventId(o.runId);
    if (last === null || compareStreamIds(lastId, last) >= 0 || closed) return;
    await new Promise<void>((resolve) => catchUps.push({ id: last, resolve }));
  };

  const takePendingEnd = (stepKey: string, attempt: number): StepOutcome | undefined => {
    const end = pendingEnds.get(stepKey);
    if (end?.attempt !== attempt) return undefined;
    pendingEnds.delete(stepKey);
    return end.outcome;
  };

  /** Joins an attempt already queued or running under job id `jobId`: its end arrives through the stream. */
  const attach = (data: StepJobData, jobId: string, requeues: number, hooks: LaunchHooks): Promise<StepOutcome> =>
    new Promise<StepOutcome>((resolve) => {
      inFlight.set(data.stepKey, { data, jobId, requeues, hooks, resolve, since: Date.now() });
      hooks.signal.addEventListener('abort', () => void cancel(data.stepKey), { once: true });
    });

  /**
   * A resumed run's launch of an attempt its previous coordinator may have handled: take the
   * result a worker left (in the replay, or since), join the attempt where it is still queued or
   * running (a worker may have enqueued it on a slot grant), or clear its leftovers so that a
   * fresh enqueue is not a no-op. Undefined: run it afresh.
   */
  const resumeAttempt = async (data: StepJobData, hooks: LaunchHooks): Promise<StepOutcome | undefined> => {
    const { stepKey, attempt } = data;
    const resumed = o.resume?.steps[stepKey];
    if (resumed?.attempt === attempt && resumed.unhandledEnd) return resumed.unhandledEnd;
    const ids = [0, 1, 2, 3].map((r) => stepJobId(o.runId, stepKey, attempt, r));
    const queue = o.queues.forStep(stepKey);
    const states = await Promise.all(ids.map((id) => queue.getJobState(id).catch(() => 'unknown')));
    // Checked after BullMQ answered: the pump may have read the end meanwhile.
    const ended = takePendingEnd(stepKey, attempt);
    if (ended) return ended;
    const live = states.findLastIndex((st) => LIVE_JOB_STATES.has(st));
    if (live >= 0) {
      const joined = attach(data, ids[live] as string, live, hooks);
      // It began before this coordinator: the live view gets its real start, not a new one.
      if (resumed?.attempt === attempt && resumed.startedAt !== undefined) {
        const f = inFlight.get(stepKey);
        if (f) f.started = true;
        hooks.onStart?.({ startedAt: resumed.startedAt, ...(resumed.worker ? { worker: resumed.worker } : {}) });
      }
      return joined;
    }
    // Queued nowhere: a worker that finished it wrote its end before BullMQ completed the job.
    await caughtUp();
    const since = takePendingEnd(stepKey, attempt);
    if (since) return since;
    await Promise.all(ids.map((id, r) => (states[r] === 'unknown' ? 0 : queue.remove(id).catch(() => 0))));
    return undefined;
  };

  // Safety net: a step BullMQ gave up on (stalled too often) or that vanished never reports back.
  const sweepMs = o.sweepIntervalMs ?? 5000;
  const sweep = setInterval(() => {
    const now = Date.now();
    const suspects = [...inFlight.values()].filter((f) => f.jobId && now - f.since > sweepMs).slice(0, 200);
    for (const f of suspects) {
      const { jobId } = f;
      o.queues
        .forStep(f.data.stepKey)
        .getJob(jobId)
        .then(async (job) => {
          if (inFlight.get(f.data.stepKey) !== f || f.jobId !== jobId) return;
          if (!job) return settle(f.data.stepKey, { ok: false, error: lost('its queue entry disappeared') });
          if ((await job.getState()) === 'failed') {
            settle(f.data.stepKey, { ok: false, error: { name: 'BatonError', code: 'STEP_LOST', message: failedQueueJobReason(job), retryable: false } });
          }
        })
        .catch(() => {});
    }
  }, sweepMs);
  sweep.unref();

  return {
    async launch(request: StepRequest, hooks: LaunchHooks): Promise<StepOutcome> {
      if (abandoned) return canceledOutcome('this coordinator lost its lease on the run');
      const step = steps.get(request.stepKey) as PlanStep;
      const data: StepJobData = {
        runId: o.runId,
        jobName: request.jobName,
        jobHash: request.jobHash,
        stepKey: step.key,
        op: step.op,
        attempt: request.attempt,
        config: step.config,
        tags: step.tags,
        inputs: step.inputs,
        outputStorage: o.outputStorage,
        prefix: o.prefix,
      };
      if (o.resume) {
        const resumed = await resumeAttempt(data, hooks);
        if (resumed) return resumed;
      }
      return new Promise<StepOutcome>((resolve) => {
        // In flight from now, before any slot is granted: the worker whose release admits the
        // step may enqueue it, and a worker run it, before this coordinator hears of the grant.
        const f: InFlight = { data, jobId: '', requeues: 0, hooks, resolve, since: Date.now() };
        inFlight.set(step.key, f);
        void slotThenEnqueue(f);
      });
    },
    async close() {
      closed = true;
      clearInterval(sweep);
      await pump;
    },
    queuedSteps(afterMs) {
      const before = Date.now() - afterMs;
      return [...inFlight.values()].filter((f) => f.jobId !== '' && !f.started && f.since <= before).map((f) => f.data.stepKey);
    },
    abandon() {
      abandoned = true;
      closed = true;
      clearInterval(sweep);
      batch = [];
      for (const key of [...inFlight.keys()]) settle(key, canceledOutcome('this coordinator lost its lease on the run'));
    },
  };

  /** Takes the step's slots (if any limit can match it), then enqueues it, unless it ended meanwhile. */
  async function slotThenEnqueue(f: InFlight): Promise<void> {
    const key = f.data.stepKey;
    // Steps no limit can match skip the semaphore entirely.
    if (o.semaphore.hasGlobalLimits() || bucketsFor(f.data.tags, o.runLimits).length > 0) {
      let leaseId: string | undefined;
      const waiting = setTimeout(() => sayWaiting(f), WAITING_NOTICE_MS);
      try {
        const lease = await o.semaphore.acquire(slotRequest(f.data, 0), f.hooks.signal);
        leaseId = lease.buckets.length > 0 ? lease.id : undefined;
      } catch {
        clearTimeout(waiting);
        // Canceled while waiting (the semaphore returned a slot granted meanwhile). A worker may
        // have enqueued the step on the grant: take it back, or stop it where it runs.
        if (inFlight.get(key) !== f) return;
        await o.queues.forStep(key).remove(stepJobId(o.runId, key, f.data.attempt, f.requeues)).catch(() => 0);
        await abortOnWorkers(key).catch(() => {});
        settle(key, canceledOutcome('canceled while waiting for a concurrency slot'));
        return;
      }
      clearTimeout(waiting);
      // Ended already (run by a worker that enqueued it on the grant), or its slot retaken since.
      if (inFlight.get(key) !== f || f.requeues !== 0) return;
      if (leaseId) f.data = { ...f.data, leaseId };
    }
    enqueue(f);
    f.hooks.signal.addEventListener('abort', () => void cancel(key), { once: true });
    if (f.hooks.signal.aborted) void cancel(key);
  }

  /**
   * A step held back by a limit says so in the run's event log (so the live view and `logs` show
   * why it has not started); the stream delivers it back here like a worker's log line.
   */
  function sayWaiting(f: InFlight): void {
    if (inFlight.get(f.data.stepKey) !== f || !driving()) return;
    void limitDefs()
      .then((global) => {
        if (inFlight.get(f.data.stepKey) !== f || !driving() || f.jobId !== '') return; // admitted meanwhile
        const which = describeLimitsFor(f.data.tags, global, o.runLimits);
        const tags = Object.entries(f.data.tags).map(([k, v]) => `${k}=${v}`).join(', ');
        const event: RunEvent = {
          type: 'LOG',
          timestamp: new Date().toISOString(),
          runId: o.runId,
          stepKey: f.data.stepKey,
          attempt: f.data.attempt,
          level: 'info',
          message: `waiting for a concurrency slot: ${which || `tags ${tags}`} (see coordinator limits list)`,
        };
        return o.runStore.appendEvent(event);
      })
      .catch(() => {});
  }

  /** The global limits' definitions, read at most every 2 s (many steps may start waiting at once). */
  function limitDefs(): Promise<TagConcurrencyLimit[]> {
    if (!defsCache || Date.now() - defsCache.at > 2000) defsCache = { at: Date.now(), defs: globalLimitDefs(o.redis, o.prefix).catch(() => []) };
    return defsCache.defs;
  }

  /** A queued step is removed; a running one is aborted by its worker, which then reports back. */
  async function cancel(stepKey: string): Promise<void> {
    const f = inFlight.get(stepKey);
    if (!f || !driving()) return;
    // Not sent yet: a worker whose release admitted the step may have enqueued it all the same.
    const unsent = batch.findIndex((j) => j.jobId === f.jobId);
    if (unsent >= 0) batch.splice(unsent, 1);
    const queue = o.queues.forStep(stepKey);
    const removed = await queue.remove(f.jobId).catch(() => 0);
    // Settling releases the slot, so a copy enqueued after this check fails its claim and never runs.
    const neverQueued = unsent >= 0 && removed !== 1 && (await queue.getJobState(f.jobId).catch(() => 'unknown')) === 'unknown';
    if (removed === 1 || neverQueued) {
      settle(stepKey, canceledOutcome('canceled before it started'));
      return;
    }
    await abortOnWorkers(stepKey);
  }

  /** Asks whichever worker runs the step to abort it (it then reports back). */
  async function abortOnWorkers(stepKey: string): Promise<void> {
    await o.redis.publish(cancelChannel(o.prefix), JSON.stringify({ runId: o.runId, stepKey }));
  }
}

const LIVE_JOB_STATES: ReadonlySet<string> = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

function outcomeOf(e: RunEvent): StepOutcome {
  return e.ok ? { ok: true, output: null } : { ok: false, error: e.error ?? lost('no error given') };
}

/** Orders Redis stream ids (`<ms>-<seq>`). */
function compareStreamIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am !== bm ? am - bm : as - bs;
}

function canceledOutcome(message: string): StepOutcome {
  return { ok: false, error: { name: 'BatonError', code: 'STEP_CANCELED', message } };
}

function lost(why: string): SerializedError {
  return { name: 'BatonError', code: 'STEP_LOST', message: `step lost: ${why}` };
}
