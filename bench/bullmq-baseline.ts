/**
 * Bare BullMQ baselines, measured in the same run as baton so the overhead baton adds on top of
 * its queue is visible. Each call uses a fresh random queue and obliterates it afterwards.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Queue, QueueEvents, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedis } from '../src/distributed/connection.js';

export type ChainListener = 'queue-events' | 'worker';

/** A bare worker in a child process (bare-worker.ts). */
interface ChildWorker {
  /** Resolves at the child's next line equal to `line`. */
  next(line: string): Promise<void>;
  close(): Promise<void>;
}

async function startChildWorker(redisUrl: string, queue: string, concurrency: number, expected?: number): Promise<ChildWorker> {
  const script = fileURLToPath(new URL('./bare-worker.js', import.meta.url));
  const args = [script, redisUrl, queue, String(concurrency), ...(expected === undefined ? [] : [String(expected)])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waiting = new Map<string, Array<() => void>>();
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) waiting.get(line)?.shift()?.();
  });
  const next = (line: string): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const list = waiting.get(line) ?? [];
      list.push(resolve);
      waiting.set(line, list);
      void exited.then(() => reject(new Error(`bare worker exited before printing "${line}"`)));
    });
  await next('ready');
  return {
    next,
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

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
 * `workerIn: 'child-process'` runs the worker in its own process (with the queue-events
 * listener): the topology of a baton run, so the comparison is of executor overhead, not of how
 * many processes a hop crosses.
 */
export async function benchBareChain(
  redisUrl: string,
  hops: number,
  o: { listener?: ChainListener; workerIn?: 'this-process' | 'child-process' } = {},
): Promise<{ msPerHop: number }> {
  if (!(hops >= 1)) throw new RangeError(`hops must be at least 1 (got ${hops})`);
  const listener = o.listener ?? 'queue-events';
  if (listener === 'worker' && o.workerIn === 'child-process') throw new RangeError('a worker in a child process cannot be the listener');
  const h = harness(redisUrl);
  const events = new QueueEvents(h.queue.name, { connection: h.bullmq() });
  const worker =
    o.workerIn === 'child-process'
      ? await startChildWorker(redisUrl, h.queue.name, 1)
      : new Worker(h.queue.name, async () => null, { connection: h.bullmq(), concurrency: 1 });
  try {
    await Promise.all([h.queue.waitUntilReady(), events.waitUntilReady(), worker instanceof Worker ? worker.waitUntilReady() : null]);
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
      if (listener === 'worker' && worker instanceof Worker) worker.on('completed', onCompleted);
      else events.on('completed', onCompleted);
      events.on('failed', ({ failedReason }) => reject(new Error(failedReason)));
    });
    await h.queue.add('hop', {});
    const ended = await finished;
    return { msPerHop: (ended - started) / hops };
  } finally {
    await worker.close();
    await h.cleanup(events);
  }
}

/** The fan-out with the worker in a child process, which says when the last job completed. */
export async function benchBareFanOutCrossProcess(redisUrl: string, jobs: number, concurrency: number): Promise<{ jobsPerSecond: number }> {
  if (!(jobs >= 1)) throw new RangeError(`jobs must be at least 1 (got ${jobs})`);
  const h = harness(redisUrl);
  const worker = await startChildWorker(redisUrl, h.queue.name, concurrency, jobs);
  try {
    await h.queue.waitUntilReady();
    const done = worker.next('done');
    const started = performance.now();
    await h.queue.addBulk(Array.from({ length: jobs }, (_v, i) => ({ name: 'fan', data: { i } })));
    await done;
    return { jobsPerSecond: jobs / ((performance.now() - started) / 1000) };
  } finally {
    await worker.close();
    await h.cleanup();
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
