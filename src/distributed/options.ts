/**
 * One home for the distributed executor's settings: where Redis is, which queue, which key
 * prefix, and the timing knobs (tuning.ts). Library, CLI and worker read them from here.
 */
export { distributedTuning, SERVE_DEFAULTS, type DistributedTuning } from './tuning.js';

export const DISTRIBUTED_DEFAULTS = {
  /** Used when neither a flag, the run config nor $REDIS_URL names one. */
  redisUrl: 'redis://127.0.0.1:6379',
  /** The BullMQ queue steps travel on (`distributed.queue`, `worker --queue`). */
  queue: 'baton',
  /** Every Redis key baton writes starts with it (see keys.ts). */
  prefix: 'baton',
} as const;

/**
 * A queue spec names one queue or several, comma-separated (`q1,q2,q3`): `distributed.queue`
 * (a name or a list), `worker --queue` and the run record's `queue` field all carry it. Several
 * queues spread a run's steps over them (src/distributed/queues.ts).
 */
export function queueSpec(queue: string | readonly string[]): string {
  return typeof queue === 'string' ? queue : queueList(queue.join(',')).join(',');
}

/** The queue names of a spec, in order, without blanks or repeats. */
export function queueList(spec: string | readonly string[]): string[] {
  const names = (typeof spec === 'string' ? [spec] : spec).flatMap((s) => s.split(',')).map((s) => s.trim());
  return [...new Set(names.filter((s) => s.length > 0))];
}

/** The Redis URL: the one given, else $REDIS_URL, else the default. */
export function redisUrlFrom(given: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return given ?? (env.REDIS_URL || DISTRIBUTED_DEFAULTS.redisUrl);
}

/** The help text of every `--redis` flag. */
export const REDIS_URL_HELP = `Redis URL (default: $REDIS_URL, else ${DISTRIBUTED_DEFAULTS.redisUrl})`;
