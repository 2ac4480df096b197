/** Stored rows as the public views of the runs API. */
import { STEP_STATUS_OF_EVENT } from '../core/status.js';
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
  if (Object.values(steps).some((s) => s.status === 'FAILURE' || s.status === 'UP_FOR_RETRY')) {
    for (const e of await storage.getEvents(view.row.runId, undefined, undefined)) applyError(steps, e);
  }
  return {
    ...toSummary(view.row, counts),
    jobHash: view.row.jobHash,
    runConfig: view.row.runConfig,
    steps,
  };
}

function applyError(steps: Record<string, StepView>, e: RunEvent): void {
  if (e.stepKey === undefined || !e.error) return;
  const step = steps[e.stepKey];
  const status = STEP_STATUS_OF_EVENT[e.type];
  if (!step || (status !== 'FAILURE' && status !== 'UP_FOR_RETRY')) return;
  step.error = { message: e.error.message, ...(e.error.stack ? { stack: e.error.stack } : {}), ...(e.error.code ? { code: e.error.code } : {}) };
}
