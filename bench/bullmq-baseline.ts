/**
 * Bare BullMQ baselines, measured in the same run as baton so the overhead baton adds on top of
 * its queue is visible. Each call uses a fresh random queue and obliterates it afterwards.
 */
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedis } from '../src/distributed/connection.js';

export type ChainListener = 'queue-events' | 'worker';

interface Harness {
  queue: Queue;
  bullmq: () => Redis;
  cleanup: (...closables: Array<{ close(): Promise<void> }>) => Promise<void>;
}

function harness(redisUrl: string): Harness {
  const connections: Redis[] = [];
  const bullmq = (): Redis => {
    const conn = createRedis(redisUrl, { role: 'bullmq' });
    connections.push(conn);
    return conn;
  };
  const queue = new Queue(`bench-${randomUUID()}`, { connection: bullmq() });
  return {
    queue,
    bullmq,
    cleanup: async (...closables) => {
      await Promise.all(closables.map((c) => c.close()));
      await queue.obliterate({ force: true });
      await queue.close();
      await Promise.all(connections.map((c) => c.quit()));
    },
  };
}

/**
 * A chain of `hops` jobs where each job is added only once the previous one completed.
 * `listener` picks who sees the completion and adds the next job:
 * - `queue-events` (default): a QueueEvents 'completed' listener (XREAD on the queue's event
 *   stream) — what a coordinator in another process than the workers does, as baton's does.
 * - `worker`: the worker's own in-process 'completed' event — faster, but only possible when
 *   the orchestrator lives in the worker process.
 */
export async function benchBareChain(
  redisUrl: string,
  hops: number,
  listener: ChainListener = 'queue-events',
): Promise<{ msPerHop: number }> {
  if (!(hops >= 1)) throw new RangeError(`hops must be at least 1 (got ${hops})`);
  const h = harness(redisUrl);
  const worker = new Worker(h.queue.name, async () => null, { connection: h.bullmq(), concurrency: 1 });
  const events = new QueueEvents(h.queue.name, { connection: h.bullmq() });
  try {
    await Promise.all([h.queue.waitUntilReady(), worker.waitUntilReady(), events.waitUntilReady()]);
    // Untimed first hops: connections and Lua scripts warm up.
    const warmup = 20;
    let remaining = warmup + hops;
    let started = 0;
    const finished = new Promise<number>((resolve, reject) => {
      const onCompleted = (): void => {
        remaining -= 1;
        if (remaining === hops) started = performance.now();
        if (remaining === 0) return resolve(performance.now());
        h.queue.add('hop', {}).catch(reject);
      };
      if (listener === 'worker') worker.on('completed', onCompleted);
      else events.on('completed', onCompleted);
      worker.on('failed', (_job, err) => reject(err));
    });
    await h.queue.add('hop', {});
    const ended = await finished;
    return { msPerHop: (ended - started) / hops };
  } finally {
    await h.cleanup(worker, events);
  }
}

/** `jobs` no-op jobs added with one addBulk to one worker at `concurrency`; timed from the addBulk to the last completion. */
export async function benchBareFanOut(
  redisUrl: string,
  jobs: number,
  concurrency: number,
): Promise<{ jobsPerSecond: number }> {
  const h = harness(redisUrl);
  const worker = new Worker(h.queue.name, async () => null, { connection: h.bullmq(), concurrency });
  try {
    await Promise.all([h.queue.waitUntilReady(), worker.waitUntilReady()]);
    let done = 0;
    const finished = new Promise<number>((resolve, reject) => {
      worker.on('completed', () => {
        done += 1;
        if (done === jobs) resolve(performance.now());
      });
      worker.on('failed', (_job, err) => reject(err));
    });
    const started = performance.now();
    await h.queue.addBulk(Array.from({ length: jobs }, (_v, i) => ({ name: 'fan', data: { i } })));
    const ended = jobs === 0 ? started : await finished;
    return { jobsPerSecond: jobs / ((ended - started) / 1000) };
  } finally {
    await h.cleanup(worker);
  }
}
