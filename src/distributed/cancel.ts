import { hostname } from 'node:os';
import { RUN_STATUS_OF_EVENT, TERMINAL_RUN_STATUSES, TERMINAL_STEP_STATUSES } from '../core/status.js';
import type { RunEvent, RunStatus } from '../core/types.js';
import { BatonError } from '../errors.js';
import { assertRedisReachable, createRedis, duplicateRedis } from './connection.js';
import { DISTRIBUTED_DEFAULTS } from './options.js';
import { openStepQueues } from './queues.js';
import { DEFAULT_PREFIX, runKeys } from './keys.js';
import { retentionSeconds } from '../job/run-config.js';
import { distributedSection } from './recorded-config.js';
import { takeRunLease } from './run-lease.js';
import { createRunStore, requireRun, type RunStore, type StoredRun } from './run-store.js';
import { releaseRunSlots } from './semaphore/limits-admin.js';
import { cancelChannel, stepJobId } from './step-message.js';
import { distributedTuning } from './tuning.js';


export interface CancelResult {
  status: RunStatus;
  /** Who did the cancel: the run's own coordinator, or this call because the run had none. */
  by: 'coordinator' | 'this-call' | 'nobody (already ended)';
}

/**
 * Cancels a distributed run from any machine. A coordinator driving it is asked through the run's
 * event stream and does the work (removes queued steps, aborts running ones on their workers,
 * releases every slot); this waits for it to confirm. A run with no live coordinator is canceled
 * here, holding the run's lease meanwhile.
 */
export async function cancelRun(runId: string, o: { redisUrl: string; timeoutMs?: number }): Promise<CancelResult> {
  await assertRedisReachable(o.redisUrl);
  const redis = createRedis(o.redisUrl);
  redis.on('error', () => {});
  const store = createRunStore(redis);
  try {
    const run = await requireRun(store, runId);
    if (TERMINAL_RUN_STATUSES.has(run.record.status)) return { status: run.record.status, by: 'nobody (already ended)' };
    const requested: RunEvent = {
      type: 'RUN_CANCELING',
      timestamp: new Date().toISOString(),
      runId,
      message: `cancel requested from ${hostname()}`,
    };
    // Ask whoever drives the run; if its lease lapses meanwhile (it died), do the work here.
    const deadline = Date.now() + (o.timeoutMs ?? 60_000);
    let asked: string | undefined;
    while (Date.now() < deadline) {
      if (await redis.exists(runKeys(runId).driver)) {
        if (!asked) {
          asked = await store.appendEvent(requested);
          await store.setRunStatus(runId, 'CANCELING');
        }
        const end = await waitForEnd(store, runId, asked, 500);
        if (end) return { status: end, by: 'coordinator' };
        continue;
      }
      const lease = await takeRunLease(redis, runId, `cancel:${hostname()}:${process.pid}`, { ttlMs: distributedTuning().runLeaseMs }).catch(
        () => undefined, // a coordinator (resume?) took it just now: ask it instead
      );
      if (!lease) continue;
      try {
        if (!asked) await store.appendEvent(requested);
        // Written under the lease just taken: fenced, like a coordinator's writes.
        const fenced = createRunStore(redis, DEFAULT_PREFIX, { driver: lease.holder });
        await cancelOrphan(redis, fenced, (await store.getRun(runId)) ?? run);
        return { status: 'CANCELED', by: 'this-call' };
      } finally {
        await lease.release();
      }
    }
    throw new BatonError('RUN_BUSY', `asked the coordinator of run "${runId}" to cancel it; it has not confirmed within ${(o.timeoutMs ?? 60_000) / 1000}s`);
  } finally {
    await store.close();
    await redis.quit().catch(() => {});
  }
}

/** Does what the dead coordinator would have done on cancel. */
async function cancelOrphan(redis: ReturnType<typeof createRedis>, store: RunStore, run: StoredRun): Promise<void> {
  const { runId, queue: queueName } = run.record;
  // BullMQ wants a connection of its own that never gives up on a command.
  const connection = duplicateRedis(redis, { maxRetriesPerRequest: null });
  const queues = openStepQueues(queueName || DISTRIBUTED_DEFAULTS.queue, connection);
  try {
    const open = run.plan.steps.filter((s) => !TERMINAL_STEP_STATUSES.has(run.steps[s.key]?.status ?? 'NOT_STARTED'));
    for (const s of open) {
      const attempt = Math.max(1, run.steps[s.key]?.attempt ?? 1);
      for (const a of [attempt, attempt + 1]) {
        for (let r = 0; r <= 3; r++) await queues.forStep(s.key).remove(stepJobId(runId, s.key, a, r)).catch(() => 0);
      }
    }
    await redis.publish(cancelChannel(DEFAULT_PREFIX), JSON.stringify({ runId }));
    await releaseRunSlots(redis, runId);
    const now = new Date().toISOString();
    for (const s of open) {
      const state = run.steps[s.key];
      if (state?.status === 'IN_PROGRESS' || state?.status === 'UP_FOR_RETRY') {
        await store.recordStepEvent(
          { type: 'STEP_CANCELED', timestamp: now, runId, stepKey: s.key, attempt: state.attempt, message: 'run canceled (no coordinator)' },
          { status: 'CANCELED', attempt: state.attempt, updatedAt: now },
        );
      }
    }
    await store.appendEvent({ type: 'RUN_CANCELED', timestamp: now, runId });
    const retention = retentionOf(run);
    await store.setRunStatus(runId, 'CANCELED', now, retention);
  } finally {
    await queues.close();
    await connection.quit().catch(() => {});
  }
}


function retentionOf(run: StoredRun): number {
  return retentionSeconds(distributedSection(run.record.runConfig)?.retention_days);
}

/** The run's final status if it ends within `ms`, else undefined. */
async function waitForEnd(store: RunStore, runId: string, after: string, ms: number): Promise<RunStatus | undefined> {
  const deadline = Date.now() + ms;
  let last = after;
  while (Date.now() < deadline) {
    for (const { id, event } of await store.readEvents(runId, last, { blockMs: Math.max(1, deadline - Date.now()) })) {
      last = id;
      const status = RUN_STATUS_OF_EVENT[event.type];
      if (status !== undefined && TERMINAL_RUN_STATUSES.has(status)) return status;
    }
  }
  return undefined;
}
