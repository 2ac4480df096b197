/**
 * A worker process, assembled: its step pool (or inline runner), the step worker taking steps
 * from the queue, its heartbeat in the worker registry, its per-step log lines and (optionally)
 * its metrics endpoint. `worker/main.ts` turns flags into these options.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { JobDefinition } from '../src/core/types.js';
import { createRedis } from '../src/distributed/connection.js';
import { stepLogLines } from '../src/distributed/step-log.js';
import { startStepWorker } from '../src/distributed/step-worker.js';
import type { WorkerMetrics } from '../src/distributed/worker-metrics.js';
import { createWorkerHeartbeat } from '../src/distributed/worker-registry.js';
import { observedRunner } from '../src/executors/observed-runner.js';
import { createStepPool, inlineRunner, type Isolation, type StepPool } from '../src/executors/step-pool.js';
import { batonVersion } from '../src/version.js';

export interface WorkerProcessOptions {
  redisUrl: string;
  queue: string;
  jobs: ReadonlyMap<string, JobDefinition>;
  loadErrors: Array<{ file: string; message: string }>;
  logger: Logger;
  concurrency: number;
  isolation: Isolation;
  maxStepsPerProcess?: number;
  heartbeatMs?: number;
  maxDeliveries?: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  graceMs?: number;
  placementWaitMs?: number;
  id?: string;
  /** Serve Prometheus metrics on this port (0: any free port). */
  metricsPort?: number;
  metricsHost?: string;
}

export interface WorkerProcess {
  readonly id: string;
  readonly pool: StepPool | undefined;
  beats(): number;
  close(): Promise<void>;
}

export async function startWorkerProcess(o: WorkerProcessOptions): Promise<WorkerProcess> {
  const id = o.id ?? `${hostname()}:${process.pid}`;
  const log = o.logger;
  const pool =
    o.isolation === 'process'
      ? createStepPool({
          max: o.concurrency,
          ...(o.maxStepsPerProcess ? { maxStepsPerProcess: o.maxStepsPerProcess } : {}),
          onEvent: (e) => {
            if (e.type === 'died') log.warn({ pid: e.pid, step: e.stepKey }, `step process ${e.pid} ${e.how}: replacing it`);
            else if (e.type === 'recycled') log.info({ pid: e.pid }, `step process ${e.pid} recycled after ${e.steps} steps`);
            else log.debug({ pid: e.pid }, 'step process started');
          },
        })
      : undefined;
  const registryRedis = createRedis(o.redisUrl, { onError: () => {} });
  const heartbeat = createWorkerHeartbeat(
    registryRedis,
    {
      id,
      host: hostname(),
      pid: process.pid,
      queue: o.queue,
      isolation: o.isolation,
      concurrency: o.concurrency,
      jobs: [...o.jobs.values()].map((j) => ({ name: j.name, hash: j.hash })),
      loadErrors: o.loadErrors,
      version: batonVersion(),
    },
    {
      ...(o.heartbeatMs ? { heartbeatMs: o.heartbeatMs } : {}),
      onError: (e) => log.warn({ err: String(e) }, 'could not write the heartbeat'),
    },
  );
  let metrics: WorkerMetrics | undefined;
  if (o.metricsPort !== undefined) {
    // Loaded only when asked for: prom-client is not a worker's start-up cost otherwise.
    const { createWorkerMetrics } = await import('../src/distributed/worker-metrics.js');
    metrics = createWorkerMetrics({
      queue: o.queue,
      redis: registryRedis,
      lastHeartbeat: () => heartbeat.lastBeat(),
      stepProcesses: () => pool?.size(),
    });
    const port = await metrics.listen(o.metricsPort, o.metricsHost);
    log.info({ port }, `metrics on http://${o.metricsHost ?? '0.0.0.0'}:${port}/metrics`);
  }
  // Registered before it takes steps: a worker leaving a step for this one must see it live.
  await heartbeat.start();
  const worker = await startStepWorker({
    runner: observedRunner(pool?.run ?? inlineRunner, [stepLogLines(log), heartbeat.observer, ...(metrics ? [metrics.observer] : [])]),
    redisUrl: o.redisUrl,
    queue: o.queue,
    jobs: o.jobs,
    logger: log,
    concurrency: o.concurrency,
    id,
    ...(o.lockDurationMs ? { lockDurationMs: o.lockDurationMs } : {}),
    ...(o.stalledIntervalMs ? { stalledIntervalMs: o.stalledIntervalMs } : {}),
    ...(o.graceMs ? { graceMs: o.graceMs } : {}),
    ...(o.placementWaitMs ? { placementWaitMs: o.placementWaitMs } : {}),
    ...(o.maxDeliveries ? { maxDeliveries: o.maxDeliveries } : {}),
  }).catch(async (e: unknown) => {
    await heartbeat.stop().catch(() => {});
    throw e;
  });
  return {
    id,
    pool,
    beats: () => heartbeat.beats(),
    async close() {
      await worker.close();
      await pool?.close();
      await heartbeat.stop().catch(() => {});
      await metrics?.close();
      await registryRedis.quit().catch(() => registryRedis.disconnect());
    },
  };
}
