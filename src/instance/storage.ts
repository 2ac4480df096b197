/**
 * What an instance keeps runs in: Dagster's run storage and event-log storage as one seam. The
 * local instance keeps them as files; the Redis instance in the shared Redis every coordinator
 * and worker writes. The instance (launching, views, re-execution) is written once over this.
 */
import { BatonError } from '../errors.js';
import type { ExecutionPlan, Json, JsonObject, RunEvent, RunStatus, StepStatus, Tags } from '../core/types.js';
import type { InstanceEvent, RunChange, RunsFilter } from './types.js';

export interface RunRow {
  runId: string;
  job: string;
  jobHash: string;
  /** Absolute path of the job file the run was planned from. */
  jobPath: string;
  status: RunStatus;
  tags: Tags;
  selection: string[] | null;
  parentRunId?: string;
  /** ISO-8601 */
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  runConfig: JsonObject;
}

export interface StepRow {
  status: StepStatus;
  attempt: number;
  worker?: string;
  /** ISO-8601 */
  updatedAt: string;
}

export interface StoredRunView {
  row: RunRow;
  plan: ExecutionPlan;
  steps: Record<string, StepRow>;
}

export interface RunStorage {
  /** Records a new run: its row, plan and every step NOT_STARTED. */
  createRun(row: RunRow, plan: ExecutionPlan): Promise<void>;
  /** Appends the event; a step event also moves its step's state. Returns the event's cursor. */
  recordEvent(event: RunEvent): Promise<string>;
  setRunStatus(runId: string, status: RunStatus, endedAt?: string): Promise<void>;
  /** Adds fields the run's recorder did not know (e.g. its selection, when another module created it). */
  annotateRun(runId: string, fields: Pick<RunRow, 'selection'>): Promise<void>;
  saveOutputs(runId: string, outputs: Record<string, Json>): Promise<void>;
  /** Outputs of these steps (a step without a stored output is absent). */
  getOutputs(runId: string, stepKeys: readonly string[]): Promise<Record<string, Json>>;
  getRun(runId: string): Promise<StoredRunView | null>;
  /** Newest first by createdAt, filtered in storage. */
  getRuns(filter: RunsFilter): Promise<{ rows: RunRow[]; cursor: string | null }>;
  stepCounts(runIds: readonly string[]): Promise<Array<Partial<Record<StepStatus, number>>>>;
  getEvents(runId: string, after: string | undefined, limit: number | undefined): Promise<InstanceEvent[]>;
  /** The run's events after `after`, live, until the final one (or `signal`). */
  watchEvents(runId: string, after: string | undefined, signal: AbortSignal | undefined): AsyncIterable<InstanceEvent>;
  watchRuns(signal: AbortSignal | undefined): AsyncIterable<RunChange>;
  deleteRun(runId: string): Promise<void>;
  close(): Promise<void>;
}

/** `createdAfter` / `createdBefore` as epoch ms. */
export function boundMs(bound: string | number | undefined): number | undefined {
  if (bound === undefined) return undefined;
  const ms = typeof bound === 'number' ? bound : Date.parse(bound);
  return Number.isNaN(ms) ? undefined : ms;
}

/** A page cursor: the last run's createdAt (ms) and id; runs with the same ms are ordered by id, descending. */
export function encodeRunCursor(createdMs: number, runId: string): string {
  return Buffer.from(JSON.stringify([createdMs, runId])).toString('base64url');
}

export function decodeRunCursor(cursor: string | undefined): { createdMs: number; runId: string } | undefined {
  if (!cursor) return undefined;
  try {
    const [createdMs, runId] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof createdMs === 'number' && typeof runId === 'string') return { createdMs, runId };
  } catch {
    // reported below
  }
  throw new BatonError('USAGE', `invalid runs cursor "${cursor}": pass the cursor a previous getRuns page returned`);
}

export const DEFAULT_PAGE = 50;
