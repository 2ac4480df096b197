/**
 * A worker's Prometheus metrics (prom-client), served on `worker --metrics-port N` at /metrics:
 * steps running, step duration by job and op, steps failed and retried, its queue's depth, slot
 * waits and slots in use by global limit, its heartbeat, its step processes, and Node's process
 * metrics (RSS, CPU, event loop lag).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openStepQueues } from './queues.js';
import type { Redis } from 'ioredis';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { StepObserver } from '../executors/observed-runner.js';
import { listLimits, type LimitView } from './semaphore/limits-admin.js';

export interface WorkerMetricsSources {
  queue: string;
  /** A connection for the queue-depth and limit reads (not a blocking one). */
  redis: Redis;
  /** Key prefix of the shared semaphores (default baton). */
  prefix?: string;
  /** Epoch ms of the last heartbeat written, if any. */
  lastHeartbeat(): number | undefined;
  /** Step processes alive (undefined with --isolation none). */
  stepProcesses(): number | undefined;
}

export interface WorkerMetrics {
  readonly registry: Registry;
  readonly observer: StepObserver;
  /** Serves /metrics; resolves with the port it listens on (0 picks a free one). */
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

export function createWorkerMetrics(src: WorkerMetricsSources): WorkerMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ queue: src.queue });
  collectDefaultMetrics({ register: registry, prefix: 'baton_worker_' });
  // A scrape during an outage just misses the depth.
  const queues = openStepQueues(src.queue, src.redis);

  const running = new Gauge({ name: 'baton_worker_steps_running', help: 'Steps running on this worker now', registers: [registry] });
  const duration = new Histogram({
    name: 'baton_worker_step_duration_seconds',
    help: 'Step attempts run on this worker, from receipt to end, by job and op',
    labelNames: ['job', 'op', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  });
  const failed = new Counter({
    name: 'baton_worker_steps_failed_total',
    help: 'Step attempts that failed on this worker, by job, op and error code',
    labelNames: ['job', 'op', 'code'] as const,
    registers: [registry],
  });
  const retried = new Counter({
    name: 'baton_worker_steps_retried_total',
    help: 'Retry attempts (attempt > 1) this worker received, by job and op',
    labelNames: ['job', 'op'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'baton_worker_queue_depth',
    help: 'Steps waiting in this worker\'s queue (waiting, delayed or prioritized)',
    registers: [registry],
    async collect() {
      const all = await Promise.all(queues.names.map((n) => queues.named(n)?.getJobCounts('waiting', 'delayed', 'prioritized'))).catch(() => undefined);
      if (all) this.set(all.flatMap((counts) => Object.values(counts ?? {})).reduce((a, b) => a + b, 0));
    },
  });
  // Read at scrape time from the shared semaphores (one snapshot per scrape for both gauges): the
  // same figures on every worker of the Redis.
  let snapshot: { at: number; limits: Promise<LimitView[] | undefined> } | undefined;
  const limitsNow = (): Promise<LimitView[] | undefined> => {
    if (!snapshot || Date.now() - snapshot.at > 1000) snapshot = { at: Date.now(), limits: listLimits(src.redis, src.prefix).catch(() => undefined) };
    return snapshot.limits;
  };
  for (const [name, help, figure] of [
    ['baton_slot_waiters', 'Steps waiting for a slot, by global concurrency limit (a step waiting on two limits counts in both)', (l: LimitView) => l.waiting],
    ['baton_slots_in_use', 'Slots held, by global concurrency limit', (l: LimitView) => l.inUse],
  ] as const) {
    new Gauge({
      name,
      help,
      labelNames: ['limit'] as const,
      registers: [registry],
      async collect() {
        const limits = await limitsNow();
        if (!limits) return;
        this.reset();
        for (const l of limits) this.set({ limit: l.spec }, figure(l));
      },
    });
  }
  new Gauge({
    name: 'baton_worker_heartbeat_timestamp_seconds',
    help: 'When this worker last wrote its registration (epoch seconds)',
    registers: [registry],
    collect() {
      const at = src.lastHeartbeat();
      if (at !== undefined) this.set(at / 1000);
    },
  });
  new Gauge({
    name: 'baton_worker_step_processes',
    help: 'Step processes alive in this worker\'s pool',
    registers: [registry],
    collect() {
      const n = src.stepProcesses();
      if (n !== undefined) this.set(n);
    },
  });

  let server: Server | undefined;
  return {
    registry,
    observer: {
      received(s) {
        running.inc();
        if (s.attempt > 1) retried.inc({ job: s.jobName, op: s.op });
      },
      ended(s, outcome, seconds) {
        running.dec();
        duration.observe({ job: s.jobName, op: s.op, outcome: outcome.ok ? 'success' : 'failure' }, seconds);
        if (!outcome.ok) failed.inc({ job: s.jobName, op: s.op, code: outcome.error.code ?? 'OP_FAILED' });
      },
    },
    listen(port, host) {
      server = createServer((req, res) => {
        if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
          return;
        }
        registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
          (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(e)}\n`),
        );
      });
      const s = server;
      return new Promise((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, host, () => resolve((s.address() as AddressInfo).port));
      });
    },
    async close() {
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      await queues.close();
    },
  };
}
