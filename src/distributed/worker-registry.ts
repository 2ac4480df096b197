/**
 * The worker registry: each worker writes its registration (what it is, which jobs it loaded at
 * which hashes, what it runs now) every heartbeat, with a time-to-live of three heartbeats, so a
 * worker that stops heartbeating drops out within three. Readers (`coordinator workers`, a
 * coordinator explaining why a step waits) list the live ones. Keys: see keys.ts (`{workers}`).
 */
import type { Redis } from 'ioredis';
import type { WorkerInfo } from '../instance/types.js';
import type { StepObserver } from '../executors/observed-runner.js';
import { DEFAULT_PREFIX, workerKey, workersIndexKey } from './keys.js';
import { queueList } from './options.js';

export const DEFAULT_HEARTBEAT_MS = 2000;
/** A registration outlives its last heartbeat by this many heartbeats. */
const HEARTBEATS_TO_LIVE = 3;

/** What a worker says about itself; `running`, `runningSteps` and `lastSeen` are filled in at each beat. */
export interface WorkerIdentity {
  id: string;
  host: string;
  pid: number;
  queue: string;
  isolation: string;
  concurrency: number;
  jobs: Array<{ name: string; hash: string }>;
  loadErrors: Array<{ file: string; message: string }>;
  version: string;
}

/** As stored: WorkerInfo plus the heartbeat interval it promised. */
export interface WorkerRegistration extends WorkerInfo {
  heartbeatMs: number;
}

export interface WorkerHeartbeat {
  /** Keeps `runningSteps` current: give it to the worker's step runner. */
  readonly observer: StepObserver;
  /** Writes the first registration (awaited), then one every heartbeat. */
  start(): Promise<void>;
  /** Stops beating and removes the registration. */
  stop(): Promise<void>;
  /** Beats so far. */
  beats(): number;
  /** Epoch ms of the last beat written. */
  lastBeat(): number | undefined;
}

export interface HeartbeatOptions {
  prefix?: string;
  heartbeatMs?: number;
  onError?: (err: unknown) => void;
}

export function createWorkerHeartbeat(redis: Redis, identity: WorkerIdentity, o: HeartbeatOptions = {}): WorkerHeartbeat {
  const prefix = o.prefix ?? DEFAULT_PREFIX;
  const heartbeatMs = o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const startedAt = new Date().toISOString();
  const running = new Map<string, { runId: string; stepKey: string; since: string }>();
  let timer: NodeJS.Timeout | undefined;
  let count = 0;
  let last: number | undefined;
  const keyOf = (s: { runId: string; stepKey: string; attempt: number }): string => `${s.runId}\u0000${s.stepKey}\u0000${s.attempt}`;

  const beat = async (): Promise<void> => {
    const now = Date.now();
    const registration: WorkerRegistration = {
      ...identity,
      running: running.size,
      runningSteps: [...running.values()],
      startedAt,
      lastSeen: new Date(now).toISOString(),
      heartbeatMs,
    };
    await redis
      .multi()
      .set(workerKey(identity.id, prefix), JSON.stringify(registration), 'PX', heartbeatMs * HEARTBEATS_TO_LIVE)
      .zadd(workersIndexKey(prefix), now, identity.id)
      .exec();
    count += 1;
    last = now;
  };
  const loop = (): void => {
    timer = setTimeout(() => {
      beat().then(loop, (e: unknown) => {
        o.onError?.(e);
        loop();
      });
    }, heartbeatMs);
    timer.unref();
  };

  return {
    observer: {
      received: (s) => void running.set(keyOf(s), { runId: s.runId, stepKey: s.stepKey, since: new Date(s.since).toISOString() }),
      ended: (s) => void running.delete(keyOf(s)),
    },
    async start() {
      await beat();
      loop();
    },
    async stop() {
      clearTimeout(timer);
      timer = undefined;
      await redis.multi().del(workerKey(identity.id, prefix)).zrem(workersIndexKey(prefix), identity.id).exec();
    },
    beats: () => count,
    lastBeat: () => last,
  };
}

/** The live workers, newest heartbeat first; every queue unless `queue` is given. Prunes the dead from the index. */
export async function listWorkers(redis: Redis, options: { prefix?: string; queue?: string } = {}): Promise<WorkerRegistration[]> {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const ids = await redis.zrevrange(workersIndexKey(prefix), 0, -1);
  if (ids.length === 0) return [];
  const values = await redis.mget(ids.map((id) => workerKey(id, prefix)));
  const live: WorkerRegistration[] = [];
  const dead: string[] = [];
  values.forEach((raw, i) => {
    const parsed = raw === null ? undefined : parseRegistration(raw);
    if (!parsed) dead.push(ids[i] as string);
    else if (options.queue === undefined || servesAny(parsed.queue, options.queue)) live.push(parsed);
  });
  // Its key expired: it stopped heartbeating. Removing it again later is harmless.
  if (dead.length > 0) await redis.zrem(workersIndexKey(prefix), ...dead);
  return live;
}

/** Which live workers on `queue` loaded job `jobName`, grouped by the hash of their copy. */
export interface JobHashes {
  queue: string;
  job: string;
  /** Live workers on the queue, whatever they loaded. */
  workers: number;
  /** hash -> ids of the workers that have the job at that hash. */
  byHash: Map<string, string[]>;
}

export async function liveJobHashes(redis: Redis, queue: string, jobName: string, prefix?: string): Promise<JobHashes> {
  const workers = await listWorkers(redis, { queue, ...(prefix ? { prefix } : {}) });
  const byHash = new Map<string, string[]>();
  for (const w of workers) {
    const job = w.jobs.find((j) => j.name === jobName);
    if (job) byHash.set(job.hash, [...(byHash.get(job.hash) ?? []), w.id]);
  }
  return { queue, job: jobName, workers: workers.length, byHash };
}

/**
 * Why no live worker can take a step of `hash`, or undefined if one can: "no live worker on queue
 * `baton` has job `etl` at hash 58494eef; 2 workers have it at 79b74f0d".
 */
export function noLiveWorkerReason(found: JobHashes, hash: string): string | undefined {
  if (found.byHash.has(hash)) return undefined;
  const head = `no live worker on queue \`${found.queue}\` has job \`${found.job}\` at hash ${short(hash)}`;
  if (found.workers === 0) return `${head}; no worker is on the queue`;
  const others = [...found.byHash].map(([h, ids]) => `${ids.length} worker${ids.length === 1 ? ' has' : 's have'} it at ${short(h)}`);
  if (others.length === 0) return `${head}; ${found.workers} worker${found.workers === 1 ? ' is' : 's are'} on the queue without it`;
  return `${head}; ${others.join(', ')}`;
}

const short = (hash: string): string => hash.slice(0, 8);

function parseRegistration(raw: string): WorkerRegistration | undefined {
  try {
    const v = JSON.parse(raw) as WorkerRegistration;
    return typeof v === 'object' && v !== null && typeof v.id === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A worker on queues `served` (a spec: `q1,q2`) serves one of the queues of `wanted`. */
function servesAny(served: string, wanted: string): boolean {
  const mine = new Set(queueList(served));
  return queueList(wanted).some((q) => mine.has(q));
}
