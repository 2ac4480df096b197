/** Stored rows as the public views of the runs API. */
import { isTerminalRunStatus, STEP_STATUS_OF_EVENT, WAITING_FOR_WORKER } from '../core/status.js';
import type { RunEvent, StepStatus } from '../core/types.js';
import type { RunStorage, RunRow, StoredRunView } from './storage.js';
import type { RunDetail, RunSummary, StepView } from './types.js';

export function toSummary(row: RunRow, stepCounts: Partial<Record<StepStatus, number>>): RunSummary {
  return {
    runId: row.runId,
    job: row.job,
    status: row.status,
    tags: row.tags,
    selection: row.selection,
    ...(row.parentRunId ? { parentRunId: row.parentRunId } : {}),
    createdAt: row.createdAt,
    ...(row.startedAt ? { startedAt: row.startedAt } : {}),
    ...(row.endedAt ? { endedAt: row.endedAt } : {}),
    stepCounts,
  };
}

export async function toDetail(view: StoredRunView, storage: RunStorage): Promise<RunDetail> {
  const counts: Partial<Record<StepStatus, number>> = {};
  const steps: Record<string, StepView> = {};
  for (const s of view.plan.steps) {
    const row = view.steps[s.key] ?? { status: 'NOT_STARTED' as const, attempt: 0, updatedAt: view.row.createdAt };
    counts[row.status] = (counts[row.status] ?? 0) + 1;
    steps[s.key] = { status: row.status, attempt: row.attempt, updatedAt: row.updatedAt, ...(row.worker ? { worker: row.worker } : {}) };
  }
  // The last attempt's error of a failed step, and what holds a step back, live in the event log.
  const failed = Object.values(steps).some((s) => s.status === 'FAILURE' || s.status === 'UP_FOR_RETRY');
  const mayWait = !isTerminalRunStatus(view.row.status) && Object.values(steps).some((s) => s.status === 'NOT_STARTED');
  if (failed || mayWait) {
    const waiting = new Map<string, string>();
    const forWorker = new Set<string>();
    for (const e of await storage.getEvents(view.row.runId, undefined, undefined)) {
      applyError(steps, e);
      if (e.stepKey === undefined) {
        // The coordinator's notice that queued steps have no live worker to take them, or its all-clear.
        if (e.type !== 'LOG' || e.fields === undefined || !('waiting' in e.fields)) continue;
        for (const key of forWorker) waiting.delete(key);
        forWorker.clear();
        if (e.fields.waiting !== WAITING_FOR_WORKER || !Array.isArray(e.fields.steps)) continue;
        for (const key of e.fields.steps) {
          if (typeof key !== 'string') continue;
          waiting.set(key, e.message ?? 'waiting for a live worker');
          forWorker.add(key);
        }
        continue;
      }
      if (e.type === 'LOG' && e.message?.startsWith(WAITING_NOTICE)) waiting.set(e.stepKey, e.message);
      else if (STEP_STATUS_OF_EVENT[e.type] !== undefined) waiting.delete(e.stepKey);
    }
    if (mayWait) {
      for (const [key, why] of waiting) {
        const step = steps[key];
        if (step?.status !== 'NOT_STARTED') continue;
        counts.NOT_STARTED = (counts.NOT_STARTED ?? 1) - 1;
        if (counts.NOT_STARTED === 0) delete counts.NOT_STARTED;
        counts.WAITING = (counts.WAITING ?? 0) + 1;
        Object.assign(step, { status: 'WAITING', waiting: why });
      }
    }
  }
  return {
    ...toSummary(view.row, counts),
    jobHash: view.row.jobHash,
    runConfig: view.row.runConfig,
    steps,
  };
}

/**
 * How the distributed launcher's log line for a step held back by a concurrency limit begins
 * (src/distributed/distributed-launcher.ts, sayWaiting): such a step shows WAITING.
 */
const WAITING_NOTICE = 'waiting for a concurrency slot';

function applyError(steps: Record<string, StepView>, e: RunEvent): void {
  if (e.stepKey === undefined || !e.error) return;
  const step = steps[e.stepKey];
  const status = STEP_STATUS_OF_EVENT[e.type];
  if (!step || (status !== 'FAILURE' && status !== 'UP_FOR_RETRY')) return;
  step.error = { message: e.error.message, ...(e.error.stack ? { stack: e.error.stack } : {}), ...(e.error.code ? { code: e.error.code } : {}) };
}
