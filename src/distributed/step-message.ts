import type { Queue } from 'bullmq';
import type { JsonObject, OutputStorage, StepInputSource, Tags } from '../core/types.js';

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

/** Adds step jobs: a lone one as one script call (addBulk wraps even one in MULTI), several in one addBulk. */
export async function addStepJobs(queue: Queue<StepJobData>, jobs: readonly StepQueueJob[]): Promise<void> {
  const only = jobs.length === 1 ? jobs[0] : undefined;
  if (only) await queue.add(only.name, only.data, { jobId: only.jobId });
  else if (jobs.length > 1) await queue.addBulk(jobs.map((j) => ({ name: j.name, data: j.data, opts: { jobId: j.jobId } })));
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
