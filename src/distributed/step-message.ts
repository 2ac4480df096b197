import type { Queue } from 'bullmq';
import type { JsonObject, OutputStorage, StepInputSource, Tags } from '../core/types.js';
import { DEFAULT_OUTPUT_MAX_BYTES } from '../job/run-config.js';
import type { PlacementNote } from './job-placement.js';

/**
 * What travels on the BullMQ queue for one attempt of one step: references, never code. A worker
 * runs it only if it loaded a job with this name and this definition hash itself.
 */
export interface StepJobData {
  runId: string;
  jobName: string;
  jobHash: string;
  stepKey: string;
  op: string;
  attempt: number;
  config: JsonObject;
  tags: Tags;
  /** Inputs by name: a literal value from run config, or the output of an upstream step of this run. */
  inputs: Record<string, StepInputSource>;
  outputStorage: OutputStorage;
  /** Redis key prefix of the run's records. */
  prefix: string;
  /** The semaphore lease the coordinator took for this step's tag limits; the worker claims it. */
  leaseId?: string;
  /**
   * How often this attempt was enqueued again under a fresh slot (its lease lapsed before a
   * worker claimed it). A re-queued delivery takes the attempt over from the earlier one.
   */
  requeue?: number;
  /** Noted by workers that left the step for another (a rolling deploy; see job-placement.ts). */
  placement?: PlacementNote;
}

/** Completed steps stay in BullMQ for an hour (so a repeated enqueue stays a no-op), failed ones a day. */
export const QUEUE_JOB_RETENTION = { removeOnComplete: { age: 3600 }, removeOnFail: { age: 24 * 3600 } };

/**
 * One attempt as a BullMQ job, ready to add. A waiting step's slot request carries it (as JSON)
 * so that the worker whose release admits the step can enqueue it at once; the coordinator's own
 * enqueue of the same deterministic id is then a no-op.
 */
export interface StepQueueJob {
  name: string;
  data: StepJobData;
  jobId: string;
}

/**
 * Jobs per addBulk. An addBulk is one MULTI, which Redis runs without serving anyone else: a fan-out
 * of 20,000 steps in one would stall every worker's fetch, and the coordinator's own lease
 * renewal, for seconds. In chunks the first steps start while the rest are being added.
 */
export const ADD_CHUNK = 500;

/** Adds step jobs: a lone one as one script call (addBulk wraps even one in MULTI), more in addBulks of ADD_CHUNK, one per event-loop turn. */
export async function addStepJobs(queue: Queue<StepJobData>, jobs: readonly StepQueueJob[]): Promise<void> {
  const only = jobs.length === 1 ? jobs[0] : undefined;
  if (only) {
    await queue.add(only.name, only.data, { jobId: only.jobId });
    return;
  }
  const chunks: Array<Promise<unknown>> = [];
  for (let i = 0; i < jobs.length; i += ADD_CHUNK) {
    // Building thousands of jobs takes seconds of CPU on a loaded machine: timers (the run
    // lease's renewal) get their turn between chunks.
    if (i > 0) await new Promise((resolve) => setImmediate(resolve));
    const chunk = jobs.slice(i, i + ADD_CHUNK);
    const added = queue.addBulk(chunk.map((j) => ({ name: j.name, data: j.data, opts: { jobId: j.jobId } })));
    added.catch(() => {}); // reported by the Promise.all below, once every chunk is sent
    chunks.push(added);
  }
  await Promise.all(chunks);
}

/** Deterministic BullMQ job id: enqueuing the same attempt twice is a no-op. (BullMQ ids may not contain ':'.) */
export function stepJobId(runId: string, stepKey: string, attempt: number, requeue = 0): string {
  return `${runId}.${stepKey}.${attempt}${requeue > 0 ? `.r${requeue}` : ''}`;
}

/** Priority of a step in slot queues: its own `priority` tag, else the run's, else 0. */
export function stepPriority(stepTags: Record<string, string>, runTags: Record<string, string>): number {
  const raw = stepTags.priority ?? runTags.priority;
  const n = raw === undefined ? 0 : Number.parseInt(raw, 10);
  return Number.isFinite(n) ? n : 0;
}

/** Pub/sub channel on which coordinators ask workers to abort running steps. */
export function cancelChannel(prefix: string): string {
  return `${prefix}:cancel`;
}

export interface CancelMessage {
  runId: string;
  /** Absent: every step of the run. */
  stepKey?: string;
}

/** A queue message checked before anything runs: a step, or why it is not one (and which run it names, if any). */
export type ParsedStepMessage =
  | { ok: true; data: StepJobData }
  | { ok: false; problem: string; runId?: string; stepKey?: string; attempt?: number };

const NAME = /^[A-Za-z0-9_.:-]{1,200}$/;

/**
 * Checks a message taken from the queue: anyone who can write to Redis can put anything there.
 * Required: runId, jobName, jobHash, stepKey, op (strings), attempt (a positive integer); the
 * rest defaults when absent and must have the right shape when present.
 */
export function parseStepMessage(raw: unknown): ParsedStepMessage {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, problem: `expected a step object, got ${raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw}` };
  }
  const m = raw as Record<string, unknown>;
  const str = (k: string): string | undefined => (typeof m[k] === 'string' && NAME.test(m[k]) ? m[k] : undefined);
  const runId = str('runId');
  const stepKey = str('stepKey');
  const attempt = Number.isSafeInteger(m.attempt) && (m.attempt as number) >= 1 ? (m.attempt as number) : undefined;
  const named = { ...(runId ? { runId } : {}), ...(stepKey ? { stepKey } : {}), ...(attempt ? { attempt } : {}) };
  const bad = (problem: string): ParsedStepMessage => ({ ok: false, problem, ...named });
  for (const k of ['runId', 'jobName', 'jobHash', 'stepKey', 'op'] as const) {
    if (str(k) === undefined) return bad(`"${k}" must be a name of letters, digits and _.:- (got ${JSON.stringify(m[k]) ?? 'nothing'})`);
  }
  if (attempt === undefined) return bad(`"attempt" must be an integer >= 1 (got ${JSON.stringify(m.attempt) ?? 'nothing'})`);
  const isObject = (v: unknown): boolean => v !== null && typeof v === 'object' && !Array.isArray(v);
  for (const k of ['config', 'tags', 'inputs', 'outputStorage'] as const) {
    if (m[k] !== undefined && !isObject(m[k])) return bad(`"${k}" must be an object`);
  }
  const storage = m.outputStorage as { kind?: unknown } | undefined;
  if (storage && storage.kind !== 'redis' && storage.kind !== 'filesystem') return bad('"outputStorage.kind" must be redis or filesystem');
  const inputs = (m.inputs ?? {}) as Record<string, unknown>;
  for (const [name, source] of Object.entries(inputs)) {
    const ok = isObject(source) && ('value' in (source as object) || typeof (source as { fromStep?: unknown }).fromStep === 'string');
    if (!ok) return bad(`"inputs.${name}" must be { value } or { fromStep }`);
  }
  if (m.leaseId !== undefined && typeof m.leaseId !== 'string') return bad('"leaseId" must be a string');
  if (m.prefix !== undefined && typeof m.prefix !== 'string') return bad('"prefix" must be a string');
  if (m.requeue !== undefined && !Number.isSafeInteger(m.requeue)) return bad('"requeue" must be an integer');
  const note = m.placement as { leaves?: unknown; unplacedSince?: unknown } | undefined;
  if (note !== undefined && (!isObject(note) || !Number.isSafeInteger(note.leaves) || (note.unplacedSince !== undefined && !Number.isSafeInteger(note.unplacedSince)))) {
    return bad('"placement" must be { leaves, unplacedSince? } with integers');
  }
  const data = m as unknown as StepJobData;
  return {
    ok: true,
    data: {
      ...data,
      config: data.config ?? {},
      tags: data.tags ?? {},
      inputs: data.inputs ?? {},
      outputStorage: data.outputStorage ?? { kind: 'redis', maxBytes: DEFAULT_OUTPUT_MAX_BYTES },
      prefix: data.prefix ?? 'baton',
    },
  };
}
