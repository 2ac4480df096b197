/**
 * Many live readers of Redis streams over ONE blocking connection: each `follow` registers a
 * reader at its own position; one loop XREADs every followed stream from the lowest position of
 * its readers and hands each reader the entries past its own. A new reader interrupts the blocked
 * read (CLIENT UNBLOCK from the command connection) so it is served at once.
 */
import type { Redis } from 'ioredis';
import { duplicateRedis, isClusterConnection } from './connection.js';

export type StreamEntry = [id: string, fields: string[]];

export interface StreamHub {
  /** Entries of `key` after `after` (exclusive), live, until the consumer stops or `signal` aborts. */
  follow(key: string, after: string, signal?: AbortSignal): AsyncIterable<StreamEntry>;
  /** The id of the stream's last entry, or '0-0' (to follow only what comes next). */
  lastId(key: string): Promise<string>;
  /** How many readers are following (for tests and metrics). */
  readonly readers: number;
  close(): Promise<void>;
}

interface Reader {
  key: string;
  pos: string;
  queue: StreamEntry[];
  wake: () => void;
}

/** How long one XREAD blocks before the loop looks again (a reader that left is dropped then). */
const BLOCK_MS = 5000;
const BATCH = 500;

/** Stream ids compare as (ms, seq) pairs. */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const byMs = BigInt(am) - BigInt(bm);
  if (byMs !== 0n) return byMs < 0n ? -1 : 1;
  const bySeq = BigInt(as) - BigInt(bs);
  return bySeq === 0n ? 0 : bySeq < 0n ? -1 : 1;
}

/**
 * The hub for `redis`. On Redis Cluster one XREAD cannot name streams of different runs (their
 * hash tags differ), so each followed stream gets a hub (and a blocking connection) of its own,
 * closed when its last reader leaves.
 */
export function createStreamHub(redis: Redis): StreamHub {
  return isClusterConnection(redis) ? createHubPerStream(redis) : createSharedHub(redis);
}

function createHubPerStream(redis: Redis): StreamHub {
  const hubs = new Map<string, StreamHub>();
  return {
    get readers() {
      let n = 0;
      for (const hub of hubs.values()) n += hub.readers;
      return n;
    },
    lastId: async (key) => (await redis.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0',
    async *follow(key, after, signal) {
      let hub = hubs.get(key);
      if (!hub) hubs.set(key, (hub = createSharedHub(redis)));
      try {
        yield* hub.follow(key, after, signal);
      } finally {
        if (hub.readers === 0 && hubs.get(key) === hub) {
          hubs.delete(key);
          await hub.close();
        }
      }
    },
    async close() {
      const all = [...hubs.values()];
      hubs.clear();
      await Promise.all(all.map((h) => h.close()));
    },
  };
}

function createSharedHub(redis: Redis): StreamHub {
  const cluster = isClusterConnection(redis);
  const readers = new Map<string, Set<Reader>>();
  let conn: Redis | undefined;
  let connId: number | undefined;
  let loop: Promise<void> | undefined;
  /** An XREAD is being prepared or is blocked; `iteration` counts them. */
  let inFlight = false;
  let iteration = 0;
  let closed = false;

  const blocking = async (): Promise<Redis> => {
    if (!conn) {
      // A blocked read must not be cut short by ioredis' per-command retry count.
      conn = duplicateRedis(redis, { maxRetriesPerRequest: null, connectionName: 'baton-watch' });
      conn.on('error', () => {}); // reconnects by itself; the loop retries
    }
    // On a cluster CLIENT ID/UNBLOCK would reach any node: no kick there (see kick).
    if (!cluster) connId ??= Number(await conn.client('ID'));
    return conn;
  };

  /** Ends the XREAD in flight (its key list is stale), retrying until the server has it blocked. */
  const kick = (): void => {
    // Cluster (one stream per hub): a second reader of the stream waits for the next XREAD (at most BLOCK_MS).
    if (cluster) return;
    const target = iteration;
    void (async () => {
      while (!closed && inFlight && iteration === target) {
        if (connId !== undefined && Number(await redis.client('UNBLOCK', connId)) === 1) return;
        await new Promise((r) => setTimeout(r, 5));
      }
    })().catch(() => {});
  };

  const deliver = (key: string, entries: StreamEntry[]): void => {
    for (const r of readers.get(key) ?? []) {
      const fresh = entries.filter(([id]) => compareStreamIds(id, r.pos) > 0);
      if (fresh.length === 0) continue;
      r.pos = (fresh.at(-1) as StreamEntry)[0];
      r.queue.push(...fresh);
      r.wake();
    }
  };

  const run = async (): Promise<void> => {
    while (!closed && readers.size > 0) {
      inFlight = true;
      iteration++;
      const keys = [...readers.keys()];
      const ids = keys.map((k) => {
        let low: string | undefined;
        for (const r of readers.get(k) ?? []) if (low === undefined || compareStreamIds(r.pos, low) < 0) low = r.pos;
        return low ?? '0-0';
      });
      try {
        const c = await blocking();
        const reply = (await c.xread('COUNT', BATCH, 'BLOCK', BLOCK_MS, 'STREAMS', ...keys, ...ids)) as Array<[string, StreamEntry[]]> | null;
        inFlight = false;
        for (const [key, entries] of reply ?? []) deliver(key, entries);
      } catch {
        inFlight = false;
        if (closed) return;
        await new Promise((r) => setTimeout(r, 200)); // connection trouble: ioredis reconnects
      }
    }
  };

  const ensureLoop = (): void => {
    if (loop) return kick();
    loop = run().finally(() => {
      loop = undefined;
      if (!closed && readers.size > 0) ensureLoop();
    });
  };

  return {
    get readers() {
      let n = 0;
      for (const set of readers.values()) n += set.size;
      return n;
    },

    async lastId(key) {
      const last = await redis.xrevrange(key, '+', '-', 'COUNT', 1);
      return last[0]?.[0] ?? '0-0';
    },

    async *follow(key, after, signal) {
      const reader: Reader = { key, pos: after, queue: [], wake: () => {} };
      let set = readers.get(key);
      if (!set) readers.set(key, (set = new Set()));
      set.add(reader);
      ensureLoop();
      const onAbort = (): void => reader.wake();
      signal?.addEventListener('abort', onAbort);
      try {
        while (!signal?.aborted && !closed) {
          const entry = reader.queue.shift();
          if (entry) {
            yield entry;
            continue;
          }
          await new Promise<void>((resolve) => {
            reader.wake = resolve;
            if (signal?.aborted || closed) resolve();
          });
          reader.wake = () => {};
        }
      } finally {
        signal?.removeEventListener('abort', onAbort);
        set.delete(reader);
        if (set.size === 0 && readers.get(key) === set) readers.delete(key);
      }
    },

    async close() {
      closed = true;
      for (const set of readers.values()) for (const r of set) r.wake();
      // disconnect, not QUIT: a QUIT would wait behind the blocked XREAD.
      conn?.disconnect();
      await loop?.catch(() => {});
    },
  };
}
