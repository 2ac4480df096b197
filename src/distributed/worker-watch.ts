/**
 * Never silent: while a run has steps on the queue that no live worker can take (none on the
 * queue, or none that loaded the job at the run's hash), the coordinator says so — in its live
 * view, its event log and `status` — within a few seconds, and keeps saying it until one comes.
 *
 * The notice is a run-level LOG event whose `fields.waiting` is WAITING_FOR_WORKER and whose
 * `fields.steps` names (some of) the steps it holds back; the all-clear has `fields.waiting: null`.
 */
import type { Redis } from 'ioredis';
import { WAITING_FOR_WORKER } from '../core/status.js';
import type { LogLevel } from '../core/types.js';
import { liveJobHashes, noLiveWorkerReason } from './worker-registry.js';


/** At most this many step keys are named in one notice (`fields.stepCount` has them all). */
const STEPS_NAMED = 50;

export interface WorkerWatchOptions {
  redis: Redis;
  /** The worker registry's key prefix. */
  prefix: string;
  queue: string;
  jobName: string;
  jobHash: string;
  /** Steps queued for at least `afterMs` and not started. */
  queuedSteps: (afterMs: number) => string[];
  say: (notice: { level: LogLevel; message: string; fields: { waiting: string | null; steps?: string[]; stepCount?: number } }) => void;
  /** How often it looks; a step is reported once queued this long. Default 2 s. */
  intervalMs?: number;
  /** While nothing changes, the notice is repeated this often. Default 15 s. */
  repeatMs?: number;
}

export function watchForWorkers(o: WorkerWatchOptions): { stop(): void } {
  const intervalMs = o.intervalMs ?? 2000;
  const repeatMs = o.repeatMs ?? 15_000;
  let said: { reason: string; at: number } | undefined;
  let busy = false;

  const look = async (): Promise<void> => {
    const steps = o.queuedSteps(intervalMs);
    if (steps.length === 0) {
      said = undefined; // they started (or ended): their own events say so
      return;
    }
    const reason = noLiveWorkerReason(await liveJobHashes(o.redis, o.queue, o.jobName, o.prefix), o.jobHash);
    const now = Date.now();
    if (reason === undefined) {
      if (said) {
        o.say({
          level: 'info',
          message: `a live worker on queue \`${o.queue}\` has job \`${o.jobName}\` at hash ${o.jobHash.slice(0, 8)} now: ${steps.length} queued step(s) can start`,
          fields: { waiting: null },
        });
      }
      said = undefined;
      return;
    }
    if (said && said.reason === reason && now - said.at < repeatMs) return;
    said = { reason, at: now };
    o.say({
      level: 'warn',
      message: `waiting: ${reason}`,
      fields: { waiting: WAITING_FOR_WORKER, steps: steps.slice(0, STEPS_NAMED), stepCount: steps.length },
    });
  };

  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    look()
      .catch(() => {}) // Redis away: the next look tries again
      .finally(() => (busy = false));
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
