/**
 * The BullMQ queues steps travel on: where their keys live, and which queue a step takes.
 *
 * Keys. On a single Redis, BullMQ's default prefix: `bull:<queue>:...`, as always. On Redis
 * Cluster (a `redis+cluster://` URL, see connection.ts) the prefix is `bull:{<queue>}`, so every
 * key of one queue shares the hash tag `{<queue>}` (BullMQ's scripts touch several keys of a
 * queue at once) and different queues hash to different slots, so to different masters.
 *
 * Routing. A queue spec may name several queues (`q1,q2,q3`, options.ts). Each step of a run
 * goes to the queue picked by a stable hash (FNV-1a, 32 bits) of its step key, modulo the number
 * of queues: every attempt of a step, its re-queues and a resumed coordinator's look-ups find it
 * on the same queue, and a cancel from another machine finds it without asking anyone. One queue
 * (the default) routes everything to it.
 */
import { Queue, type DefaultJobOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { isClusterConnection } from './connection.js';
import { queueList } from './options.js';

/** BullMQ's `prefix` for `queue` on this connection (undefined: BullMQ's default, `bull`). */
export function bullPrefix(queue: string, connection: Redis): string | undefined {
  return isClusterConnection(connection) ? `bull:{${queue}}` : undefined;
}

/** The connection and key prefix for a BullMQ Queue, Worker or QueueEvents of `queue`. */
export function bullOptions(queue: string, connection: Redis): { connection: Redis; prefix?: string } {
  const prefix = bullPrefix(queue, connection);
  return prefix === undefined ? { connection } : { connection, prefix };
}

/** FNV-1a over the UTF-16 code units of `text`: stable across processes and versions. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The queue of `names` that step `stepKey` goes to. */
export function stepQueueName(names: readonly string[], stepKey: string): string {
  if (names.length === 0) throw new Error('stepQueueName needs at least one queue');
  return names[names.length === 1 ? 0 : fnv1a(stepKey) % names.length] as string;
}

/** The queues of one spec, opened on one connection. */
export interface StepQueues<T> {
  readonly names: readonly string[];
  /** The queue step `stepKey` goes to. */
  forStep(stepKey: string): Queue<T>;
  /** The queue named `name` (one of `names`), or undefined. */
  named(name: string): Queue<T> | undefined;
  close(): Promise<void>;
}

export function openStepQueues<T>(
  spec: string | readonly string[],
  connection: Redis,
  options: { defaultJobOptions?: DefaultJobOptions; onError?: (err: Error) => void } = {},
): StepQueues<T> {
  const names = queueList(spec);
  if (names.length === 0) throw new Error(`no queue named in "${String(spec)}"`);
  const queues = new Map<string, Queue<T>>();
  for (const name of names) {
    const queue = new Queue<T>(name, {
      ...bullOptions(name, connection),
      ...(options.defaultJobOptions ? { defaultJobOptions: options.defaultJobOptions } : {}),
    });
    queue.on('error', options.onError ?? (() => {}));
    queues.set(name, queue);
  }
  return {
    names,
    forStep: (stepKey) => queues.get(stepQueueName(names, stepKey)) as Queue<T>,
    named: (name) => queues.get(name),
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close().catch(() => {})));
    },
  };
}
