/**
 * The one place Redis key names are built.
 *
 * Every key of a run shares the hash tag `{run:<runId>}`, so in Redis Cluster they all live
 * in one slot and a MULTI over them is legal.
 *
 *   <prefix>:{run:<runId>}:record   hash    RunRecord fields (objects JSON-encoded)
 *   <prefix>:{run:<runId>}:plan     string  ExecutionPlan as JSON
 *   <prefix>:{run:<runId>}:steps    hash    stepKey -> StepState JSON {status, attempt, worker?, updatedAt}
 *   <prefix>:{run:<runId>}:events   stream  append-only RunEvents, field `e` holds the event JSON
 *   <prefix>:{run:<runId>}:outputs  hash    stepKey -> output JSON, or {"$file": path} for filesystem storage
 *   <prefix>:{run:<runId>}:driver   string  id of the coordinator driving the run (a lease: PX TTL, renewed)
 *   <prefix>:runs                   zset    runId scored by start time (epoch ms); no tag: only ever
 *                                           written by a command of its own, after the run's keys
 *
 * Indexes across runs share the hash tag `{runs}` (written by a second, idempotent call after the
 * run's own keys; `src/distributed/run-index.ts` repairs them from `<prefix>:runs`):
 *
 *   <prefix>:{runs}:created         zset    runId scored by createdAt (epoch ms)
 *   <prefix>:{runs}:status:<STATUS> zset    the runs in that status, scored by createdAt
 *   <prefix>:{runs}:job:<job>       zset    the runs of that job, scored by createdAt
 *   <prefix>:{runs}:tag:<k>=<v>     zset    the runs with that tag, scored by createdAt
 *   <prefix>:{runs}:meta            hash    runId -> JSON {job, tags, status, createdMs}
 *   <prefix>:{runs}:changes         stream  run status changes {runId, job, status, at} (capped)
 *
 * Schedules share the hash tag `{schedules}` (`<id>` is `<job>/<schedule>`):
 *
 *   <prefix>:{schedules}:status          hash    id -> running | stopped (absent: the file's status)
 *   <prefix>:{schedules}:cursor          hash    id -> epoch ms up to which ticks were evaluated
 *   <prefix>:{schedules}:lock:<id>       string  the serve evaluating it now (PX TTL)
 *   <prefix>:{schedules}:tick:<id>:<ms>  string  the tick's record (JSON); SET NX claims the tick
 *   <prefix>:{schedules}:ticks:<id>      zset    tick times (ms) with a record, for history
 *
 * Sensors keep the same keys under the hash tag `{sensors}` (the cursor is the sensor's own
 * string), and two more:
 *
 *   <prefix>:{sensors}:runkeys:<id>      hash    run_key -> JSON {runId, launched}; HSETNX claims a key
 *   <prefix>:{sensors}:lastkey           hash    id -> the last run_key launched
 *
 * BullMQ's keys (the queues steps travel on) are named by BullMQ; on Redis Cluster each queue gets
 * its own hash tag through BullMQ's prefix, `bull:{<queue>}` (queues.ts).
 *
 * The default prefix is `baton` (options.ts).
 */
import { DISTRIBUTED_DEFAULTS } from './options.js';

export const DEFAULT_PREFIX = DISTRIBUTED_DEFAULTS.prefix;

export interface RunKeys {
  record: string;
  plan: string;
  steps: string;
  events: string;
  outputs: string;
  driver: string;
}

/** `<prefix>:{run:<runId>}` — the shared part of every per-run key. */
export function runKeyBase(runId: string, prefix: string = DEFAULT_PREFIX): string {
  return `${prefix}:{run:${runId}}`;
}

/** All keys of one run. */
export function runKeys(runId: string, prefix: string = DEFAULT_PREFIX): RunKeys {
  const base = runKeyBase(runId, prefix);
  return {
    record: `${base}:record`,
    plan: `${base}:plan`,
    steps: `${base}:steps`,
    events: `${base}:events`,
    outputs: `${base}:outputs`,
    driver: `${base}:driver`,
  };
}

/** The keys of a run as a list, e.g. for DEL or EXISTS. */
export function allRunKeys(runId: string, prefix: string = DEFAULT_PREFIX): string[] {
  return Object.values(runKeys(runId, prefix));
}

export const recordKey = (runId: string, prefix?: string): string => runKeys(runId, prefix).record;
export const planKey = (runId: string, prefix?: string): string => runKeys(runId, prefix).plan;
export const stepsKey = (runId: string, prefix?: string): string => runKeys(runId, prefix).steps;
export const eventsKey = (runId: string, prefix?: string): string => runKeys(runId, prefix).events;
export const outputsKey = (runId: string, prefix?: string): string => runKeys(runId, prefix).outputs;

/** Global sorted set of run ids scored by start time in ms. */
export function runsIndexKey(prefix: string = DEFAULT_PREFIX): string {
  return `${prefix}:runs`;
}

export interface RunIndexKeys {
  created: string;
  meta: string;
  changes: string;
  status(status: string): string;
  job(job: string): string;
  tag(key: string, value: string): string;
}

/** The keys of the indexes across runs (one hash tag, `{runs}`). */
export function runIndexKeys(prefix: string = DEFAULT_PREFIX): RunIndexKeys {
  const base = `${prefix}:{runs}`;
  return {
    created: `${base}:created`,
    meta: `${base}:meta`,
    changes: `${base}:changes`,
    status: (status) => `${base}:status:${status}`,
    job: (job) => `${base}:job:${job}`,
    tag: (key, value) => `${base}:tag:${key}=${value}`,
  };
}

/**
 * The worker registry (src/distributed/worker-registry.ts), all under the hash tag `{workers}`:
 *
 *   <prefix>:{workers}:index        zset    worker id scored by its last heartbeat (epoch ms)
 *   <prefix>:{workers}:w:<id>       string  the worker's registration JSON, PX = 3 heartbeats
 */
export function workersIndexKey(prefix: string = DEFAULT_PREFIX): string {
  return `${prefix}:{workers}:index`;
}

export function workerKey(id: string, prefix: string = DEFAULT_PREFIX): string {
  return `${prefix}:{workers}:w:${id}`;
}

export interface ScheduleKeys {
  status: string;
  cursor: string;
  lock(id: string): string;
  tick(id: string, tickMs: number): string;
  ticks(id: string): string;
  runKeys(id: string): string;
  lastKey: string;
}

/** The keys of schedules (one hash tag, `{schedules}`), or of sensors (`{sensors}`). */
export function scheduleKeys(prefix: string = DEFAULT_PREFIX, tag: 'schedules' | 'sensors' = 'schedules'): ScheduleKeys {
  const base = `${prefix}:{${tag}}`;
  return {
    runKeys: (id) => `${base}:runkeys:${id}`,
    lastKey: `${base}:lastkey`,
    status: `${base}:status`,
    cursor: `${base}:cursor`,
    lock: (id) => `${base}:lock:${id}`,
    tick: (id, tickMs) => `${base}:tick:${id}:${tickMs}`,
    ticks: (id) => `${base}:ticks:${id}`,
  };
}

export interface RunQueueKeys {
  queued: string;
  entries: string;
  active: string;
  config: string;
}

/**
 * The run queue (src/distributed/run-queue.ts), all under the hash tag `{runqueue}`:
 *
 *   <prefix>:{runqueue}:queued    zset    queued runs: score -priority, member "<ms, 15 digits>|<runId>"
 *   <prefix>:{runqueue}:entries   hash    runId -> JSON {job, tags, member, submittedAt}
 *   <prefix>:{runqueue}:active    hash    runId -> JSON {job, tags, by, claimedAt}: started, not ended
 *   <prefix>:{runqueue}:config    hash    max_concurrent_runs -> n; tag:<spec> -> n
 */
export function runQueueKeys(prefix: string = DEFAULT_PREFIX): RunQueueKeys {
  const base = `${prefix}:{runqueue}`;
  return { queued: `${base}:queued`, entries: `${base}:entries`, active: `${base}:active`, config: `${base}:config` };
}

/**
 * The daemon registry (src/distributed/daemon-registry.ts), under the hash tag `{daemons}`:
 *
 *   <prefix>:{daemons}:index        zset    daemon id scored by its last heartbeat (epoch ms)
 *   <prefix>:{daemons}:d:<id>       string  the daemon's registration JSON, PX = 3 heartbeats
 */
export function daemonKeys(prefix: string = DEFAULT_PREFIX): { index: string; daemon(id: string): string } {
  const base = `${prefix}:{daemons}`;
  return { index: `${base}:index`, daemon: (id) => `${base}:d:${id}` };
}
