/**
 * The Redis instance: runs recorded in the shared Redis every coordinator and worker uses.
 * A run whose config names no executor runs on the distributed executor on this Redis, driven
 * from this process; one that names in_process or multiprocess runs here and is recorded in Redis
 * all the same (decisions.md). Cancel, resume and re-execute of distributed runs go through the
 * distributed executor's own operations, so a run behaves the same whoever operates it.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { isTerminalRunStatus } from '../../core/status.js';
import type { JsonObject } from '../../core/types.js';
import { BatonError, InputError } from '../../errors.js';
import { assertRedisReachable, createRedis, redactRedisUrl } from '../../distributed/connection.js';
import { runKeys } from '../../distributed/keys.js';
import { distributedSection, withDistributed } from '../../distributed/recorded-config.js';
import { takeRunLease } from '../../distributed/run-lease.js';
import { deleteLimit, setLimit } from '../../distributed/semaphore/limits-admin.js';
import { distributedTuning } from '../../distributed/tuning.js';
import type { RunResult } from '../../run/execute-run.js';
import { createInstance, type DriveHandle, type InstanceBackend } from '../create-instance.js';
import type { StoredRunView } from '../storage.js';
import type { Instance } from '../types.js';
import { limitInfos } from './limits-view.js';
import { createRedisStorage } from './redis-storage.js';
import { listWorkers } from '../../distributed/worker-registry.js';
import { listDaemons } from '../../distributed/daemon-registry.js';
import { enqueueRun, readQueue } from '../../distributed/run-queue.js';
import { waitReason } from '../../core/run-queue.js';

const EXECUTORS = ['in_process', 'multiprocess', 'distributed'];

export async function openRedisInstance(url: string): Promise<Instance> {
  await assertRedisReachable(url);
  const redis = createRedis(url);
  redis.on('error', () => {}); // reconnection is automatic; commands wait in the offline queue
  const storage = createRedisStorage(redis);
  const holder = `instance:${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  /** Resolves with the run id once the driver's first event shows the run recorded; `done` settles when it ends. */
  const handOff = (drive: (onEvent: (e: { runId: string }) => void, signal: AbortSignal) => Promise<RunResult>): Promise<DriveHandle> => {
    const controller = new AbortController();
    return new Promise((resolveHandle, reject) => {
      let recorded = false;
      const done = drive((e) => {
        if (recorded) return;
        recorded = true;
        resolveHandle({ runId: e.runId, done, controller });
      }, controller.signal);
      done.catch((err: unknown) => {
        if (!recorded) reject(err);
      });
    });
  };

  const backend: InstanceBackend = {
    kind: 'redis',
    storage,
    where: 'this Redis (check --redis and the run id)',

    runConfigFor(raw: JsonObject) {
      const config = (raw.execution as { config?: JsonObject } | undefined)?.config ?? {};
      const named = Object.keys(config).filter((k) => EXECUTORS.includes(k));
      if (named.length > 0 && !named.includes('distributed')) return raw; // a local executor: runs here, recorded in Redis
      const given = distributedSection(raw)?.redis;
      if (typeof given === 'string' && !sameRedis(given, url)) {
        throw new InputError('RUN_CONFIG_INVALID', [
          {
            path: 'execution.config.distributed.redis',
            message: `${redactRedisUrl(given)} differs from this instance's Redis (${redactRedisUrl(url)}): a run recorded in one Redis cannot be driven in another`,
            hint: "leave redis out to use the instance's",
          },
        ]);
      }
      return withDistributed(raw, (d) => ({ ...d, redis: url }));
    },

    async launchDistributed(job, prepared, meta) {
      const { executeJob } = await import('../../run/execute-job.js');
      const handle = await handOff((onEvent, signal) =>
        executeJob(job, { prepared, runId: meta.runId, tags: meta.tags, signal, onEvent }),
      );
      if (meta.selection) await storage.annotateRun(handle.runId, { selection: meta.selection });
      return handle;
    },

    async driveHere(runId, onCancel) {
      // A lease, like a coordinator's: `cancel` from anywhere then asks this process through the run's events.
      const lease = await takeRunLease(redis, runId, holder, { ttlMs: distributedTuning().runLeaseMs });
      const stop = new AbortController();
      void (async () => {
        for await (const e of storage.watchEvents(runId, undefined, stop.signal)) if (e.type === 'RUN_CANCELING') onCancel();
      })().catch(() => {});
      return async () => {
        stop.abort();
        await lease.release();
      };
    },

    async cancelElsewhere(run) {
      // Loaded when needed: BullMQ is heavy, and views (runs, status, logs) never need it.
      const { cancelRun } = await import('../../distributed/cancel.js');
      return cancelRun(run.row.runId, { redisUrl: url });
    },

    async resume(run, options) {
      if (!isDistributed(run)) {
        throw new BatonError('RUN_NOT_RESUMABLE', `run "${run.row.runId}" ran on a local executor and ended with its process; re-execute it instead`);
      }
      const { resumeRun } = await import('../../distributed/operate.js');
      return handOff((onEvent, signal) =>
        resumeRun(run.row.runId, { redisUrl: url, signal, onEvent, ...(options.jobPath ? { jobPath: options.jobPath } : {}) }),
      );
    },

    reexecuteDistributed(run, options) {
      if (!isDistributed(run)) return undefined;
      return (async () => {
        const { reexecuteRun } = await import('../../distributed/operate.js');
        const handle = await handOff((onEvent, signal) =>
          reexecuteRun(run.row.runId, {
            redisUrl: url,
            signal,
            onEvent,
            ...(options.selection?.length ? { select: options.selection } : {}),
            ...(options.fromFailure ? { fromFailure: true } : {}),
          }),
        );
        const child = await storage.getRun(handle.runId);
        const selection = options.selection?.length ? options.selection : child?.plan.steps.map((s) => s.key);
        if (selection) await storage.annotateRun(handle.runId, { selection });
        return handle;
      })();
    },

    async deleteRunData(run) {
      // An ended run may still show its driver for a moment (it lets go of the lease last).
      if (!isTerminalRunStatus(run.row.status) && (await redis.exists(runKeys(run.row.runId).driver)) === 1) {
        throw new BatonError('RUN_BUSY', `run "${run.row.runId}" is being driven; cancel it before deleting it`);
      }
      const base = distributedSection(run.row.runConfig)?.output_storage?.filesystem?.base_dir;
      if (base) await rm(join(resolve(dirname(run.row.jobPath), base), run.row.runId), { recursive: true, force: true });
    },

    async enqueue(row) {
      await enqueueRun(redis, { runId: row.runId, job: row.job, tags: row.tags, submittedMs: Date.parse(row.createdAt) });
    },

    async queueReasons(runIds) {
      const [queue, daemons] = await Promise.all([readQueue(redis), listDaemons(redis)]);
      const noServe = daemons.some((d) => d.runs.includes('queue')) ? '' : '; no live serve runs the queue (start `coordinator serve`)';
      const reasons = new Map<string, string>();
      for (const runId of runIds) {
        const taken = queue.active.find((a) => a.runId === runId);
        if (taken) reasons.set(runId, `starting: taken from the queue by ${taken.by}`);
        else if (queue.queued.some((q) => q.runId === runId)) reasons.set(runId, waitReason(queue.config, queue.active, queue.queued, runId) + noServe);
        else reasons.set(runId, `not in the run queue yet (a serve enters it at its next pass)${noServe}`);
      }
      return reasons;
    },

    limits: {
      list: () => limitInfos(redis),
      set: (spec, n) => setLimit(redis, spec, n),
      delete: (spec) => deleteLimit(redis, spec),
    },

    // The live workers, from their heartbeats (src/distributed/worker-registry.ts).
    workers: { list: async () => (await listWorkers(redis)).map(({ heartbeatMs: _heartbeatMs, ...w }) => w) },
    daemons: { list: () => listDaemons(redis) },

    async close() {
      await redis.quit().catch(() => {});
    },
  };
  return createInstance(backend);
}

function isDistributed(run: StoredRunView): boolean {
  return distributedSection(run.row.runConfig) !== undefined;
}

/** Same server and database (credentials aside: a recorded URL has its password redacted). */
function sameRedis(a: string, b: string): boolean {
  try {
    const x = new URL(a);
    const y = new URL(b);
    const db = (u: URL): string => u.pathname.replace(/^\//, '') || '0';
    const port = (u: URL): string => u.port || '6379';
    return x.protocol === y.protocol && x.hostname === y.hostname && port(x) === port(y) && db(x) === db(y);
  } catch {
    return false;
  }
}
