/**
 * `coordinator serve`: a long-running coordinator that adopts orphaned runs by itself. A run is
 * orphaned when it is STARTED (or CANCELING) and no coordinator holds its lease: the one that
 * drove it died, or stopped driving it. Serve finishes such runs with `resume` (or finishes their
 * cancel), for the jobs of its own code location only, like a worker. Several serve processes
 * may run: the run lease lets exactly one of them adopt each run.
 *
 * Serve also runs the schedules and sensors of its jobs (src/automation): one run per (schedule,
 * tick time), and one per sensor run key, across every serve process, submitted to the run queue;
 * and the run queue (run-queue.ts): it takes queued runs of its jobs in priority then FIFO order
 * under the run-level limits and starts them. Each serve heartbeats into Redis
 * (daemon-registry.ts) so its health can be seen.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { JobDefinition, RunStatus } from '../core/types.js';
import { BatonError } from '../errors.js';
import { cancelRun } from './cancel.js';
import { createRedis } from './connection.js';
import { findOrphans } from './orphans.js';
import { resumeRun } from './operate.js';
import { openInstance } from '../instance/open-instance.js';
import { hasAutomation, runAutomation, sleep } from '../automation/automation-loop.js';
import { redisAutomationStores } from './schedule-store.js';
import type { Instance } from '../instance/types.js';
import { createDaemonHeartbeat, listDaemons } from './daemon-registry.js';
import { claimQueuedRuns, reconcileQueue, releaseActive } from './run-queue.js';
import { SERVE_DEFAULTS } from './tuning.js';

export interface ServeOptions {
  redisUrl: string;
  /** The jobs this process may drive, by name (its `--jobs`). */
  jobs: ReadonlyMap<string, JobDefinition>;
  logger: Logger;
  /** How often runs are looked at. Default 5 s. */
  intervalMs?: number;
  /** How many of the newest runs each look covers. Default 1000. */
  scanLimit?: number;
  /** Runs driven at once; further orphans wait for a later look. Default 16. */
  maxRuns?: number;
  /** How often the schedules of `jobs` are evaluated. Default 1 s. */
  scheduleIntervalMs?: number;
  /** How often the run queue is looked at. Default 1 s. */
  queueIntervalMs?: number;
  /** Stops looking for orphans. Runs already adopted go on (see stop()). */
  signal?: AbortSignal;
}

export interface Server {
  /** This serve's id in the daemon registry (and as the claimer of queued runs). */
  readonly id: string;
  /** Removes its registration at once (a stopping serve), instead of letting it expire. */
  unregister(): Promise<void>;
  /**
   * Once the signal aborted: resolves when the schedule, sensor and queue loops have finished
   * what they were doing (a tick under way is recorded, a queued run taken is started).
   */
  loopsStopped(): Promise<void>;
  /** Runs this process drives now. */
  readonly driving: ReadonlySet<string>;
  /** Resolves when the signal stopped the scanning and every adopted run has ended. */
  readonly done: Promise<void>;
}

/** An orphan candidate as one look sees it. */
interface Seen {
  runId: string;
  status: RunStatus;
  job: string;
}

export function serveOrphans(o: ServeOptions): Server {
  const intervalMs = o.intervalMs ?? SERVE_DEFAULTS.intervalMs;
  const scanLimit = o.scanLimit ?? SERVE_DEFAULTS.scanLimit;
  const maxRuns = o.maxRuns ?? SERVE_DEFAULTS.maxRuns;
  const redis = createRedis(o.redisUrl);
  redis.on('error', () => {}); // a look that fails is retried at the next interval
  const id = `serve:${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const hasSchedules = [...o.jobs.values()].some((j) => (j.schedules?.size ?? 0) > 0);
  const hasSensors = [...o.jobs.values()].some((j) => (j.sensors?.size ?? 0) > 0);
  const heartbeat = createDaemonHeartbeat(redis, {
    id,
    host: hostname(),
    pid: process.pid,
    runs: ['orphans', 'queue', ...(hasSchedules ? ['schedules'] : []), ...(hasSensors ? ['sensors'] : [])],
    jobs: [...o.jobs.keys()],
  });
  // One instance for the schedules and the queue, opened on first use.
  let instance: Promise<Instance> | undefined;
  const theInstance = (): Promise<Instance> => (instance ??= openInstance({ redis: o.redisUrl }));
  const driving = new Map<string, Promise<void>>();
  // Runs this process cannot adopt (job not in its code location, changed job file): said once.
  const refused = new Set<string>();

  const refuse = (run: Seen, why: string): void => {
    if (refused.has(run.runId)) return;
    refused.add(run.runId);
    o.logger.warn({ runId: run.runId, job: run.job }, `not adopting orphaned run: ${why}`);
  };

  const track = (runId: string, work: Promise<void>): void => {
    driving.set(
      runId,
      work.finally(() => driving.delete(runId)),
    );
  };

  const adopt = (run: Seen, job: JobDefinition): void => {
    o.logger.info({ runId: run.runId, job: run.job }, 'adopting orphaned run');
    const work = resumeRun(run.runId, { redisUrl: o.redisUrl, jobPath: job.sourcePath, leaseWaitMs: 0 }).then(
      (result) => o.logger.info({ runId: run.runId, status: result.status }, `adopted run ended ${result.status}`),
      (e: unknown) => {
        if (e instanceof BatonError && e.code === 'RUN_BUSY') {
          o.logger.debug({ runId: run.runId }, 'another coordinator adopted the run first');
        } else if (e instanceof BatonError && e.code === 'RUN_NOT_RESUMABLE') {
          refuse(run, e.message);
        } else if (e instanceof BatonError && e.code === 'RUN_LEASE_LOST') {
          o.logger.warn({ runId: run.runId }, 'stopped driving an adopted run: lost its lease (adopted again later if orphaned)');
        } else {
          o.logger.error({ runId: run.runId, err: e instanceof Error ? e.message : String(e) }, 'could not finish an adopted run');
        }
      },
    );
    track(run.runId, work);
  };

  const finishCancel = (run: Seen): void => {
    o.logger.info({ runId: run.runId, job: run.job }, 'finishing the cancel of an orphaned run');
    const work = cancelRun(run.runId, { redisUrl: o.redisUrl }).then(
      (r) => o.logger.info({ runId: run.runId, status: r.status }, `orphaned run ${r.status}`),
      (e: unknown) => o.logger.error({ runId: run.runId, err: e instanceof Error ? e.message : String(e) }, 'could not cancel an orphaned run'),
    );
    track(run.runId, work);
  };

  /** The newest runs that are unfinished and have no driver. */
  const orphans = (): Promise<Seen[]> => findOrphans(redis, scanLimit);

  const look = async (): Promise<void> => {
    let seen: Seen[];
    try {
      seen = await orphans();
    } catch (e) {
      o.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not look for orphaned runs');
      return;
    }
    // Oldest first: they have waited longest.
    for (const run of seen.reverse()) {
      if (driving.has(run.runId) || refused.has(run.runId)) continue;
      if (driving.size >= maxRuns) break;
      const job = o.jobs.get(run.job);
      if (!job) {
        refuse(run, `its job "${run.job}" is not among this process's --jobs`);
        continue;
      }
      if (run.status === 'CANCELING') finishCancel(run);
      else adopt(run, job);
    }
  };

  const orphanLoop = (async () => {
    while (!o.signal?.aborted) {
      await look();
      await sleep(intervalMs, o.signal);
    }
    while (driving.size > 0) await Promise.all([...driving.values()]);
  })();

  let loops: Promise<unknown> = Promise.resolve();
  const done = (async () => {
    try {
      await heartbeat.start().catch((e: unknown) => o.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not write the first heartbeat'));
      loops = Promise.all([scheduleLoop(o, redis, theInstance), queueLoop(o, redis, id, theInstance)]);
      await Promise.all([orphanLoop, loops]);
    } finally {
      await heartbeat.stop().catch(() => {});
      if (instance) await (await instance).close().catch(() => {});
      await redis.quit().catch(() => {});
    }
  })();

  return {
    id,
    unregister: () => heartbeat.stop(),
    loopsStopped: async () => {
      await loops.catch(() => {});
    },
    get driving() {
      return new Set(driving.keys());
    },
    done,
  };
}

/** Evaluates the schedules and sensors of the serve's jobs every interval (nothing to do without them). */
async function scheduleLoop(o: ServeOptions, redis: Redis, instance: () => Promise<Instance>): Promise<void> {
  if (!hasAutomation(o.jobs)) return;
  const intervalMs = o.scheduleIntervalMs ?? SERVE_DEFAULTS.scheduleIntervalMs;
  await runAutomation({ instance: await instance(), stores: redisAutomationStores(redis), jobs: () => o.jobs, logger: o.logger, intervalMs, ...(o.signal ? { signal: o.signal } : {}) });
}

/**
 * Every interval: repairs the queue, then takes as many queued runs of its jobs as it may start
 * (under the run-level limits, atomically across serves, and its own --max-runs) and starts each.
 */
async function queueLoop(o: ServeOptions, redis: Redis, id: string, instance: () => Promise<Instance>): Promise<void> {
  const intervalMs = o.queueIntervalMs ?? SERVE_DEFAULTS.queueIntervalMs;
  const maxRuns = o.maxRuns ?? SERVE_DEFAULTS.maxRuns;
  const jobs = [...o.jobs.keys()];
  const pass = async (): Promise<void> => {
    const live = new Set((await listDaemons(redis)).map((d) => d.id));
    live.add(id);
    const active = await reconcileQueue(redis, { liveDaemons: live, staleMs: SERVE_DEFAULTS.queueStaleMs, lostMs: SERVE_DEFAULTS.queueLostMs });
    const mine = active.filter((a) => a.by === id).length;
    const taken = await claimQueuedRuns(redis, { holder: id, max: maxRuns - mine, jobs });
    for (const runId of taken) {
      o.logger.info({ runId }, 'starting a queued run');
      try {
        await (await instance()).startQueuedRun(runId);
      } catch (e) {
        o.logger.error({ runId, err: e instanceof Error ? e.message : String(e) }, 'could not start a queued run');
        await releaseActive(redis, runId).catch(() => {});
      }
    }
  };
  while (!o.signal?.aborted) {
    await pass().catch((e: unknown) => o.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not look at the run queue'));
    await sleep(intervalMs, o.signal);
  }
}
