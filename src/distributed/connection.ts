/**
 * ioredis connections for the distributed executor, and URL helpers safe to log.
 *
 * Redis Cluster is chosen by the URL alone — `redis+cluster://` (or `rediss+cluster://` for TLS)
 * naming any one node — so every process that is handed the URL (coordinator, worker, serve,
 * UI) agrees on it without another setting. Such a URL opens an ioredis `Cluster`: it speaks the
 * same commands as a single connection and is typed as one (`Redis`) so callers stay unchanged;
 * the few places that differ go through `duplicateRedis` and `isClusterConnection`.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { BatonError } from '../errors.js';
import { redactRedisUrl } from '../redact.js';

export type RedisRole = 'command' | 'blocking' | 'bullmq';

/** Longest pause between two reconnection attempts. */
const MAX_RECONNECT_DELAY_MS = 1000;
/**
 * Command connections give up on a pending command after this many reconnection attempts
 * (about a minute of outage at the capped delay) rather than hanging forever.
 */
const COMMAND_MAX_RETRIES = 60;

/** Reconnect forever: 50 ms, 100 ms, ... capped at 1 s. */
export function reconnectDelay(times: number): number {
  return Math.min(times * 50, MAX_RECONNECT_DELAY_MS);
}

const CLUSTER_SCHEME = /^(rediss?)\+cluster:/i;

/** True for a `redis+cluster://` or `rediss+cluster://` URL: Redis Cluster mode. */
export function isClusterUrl(url: string): boolean {
  return CLUSTER_SCHEME.test(url);
}

/** The URL of the one node a cluster URL names (`redis+cluster://` becomes `redis://`). */
export function nodeUrl(url: string): string {
  return url.replace(CLUSTER_SCHEME, '$1:');
}

/** True when `redis` is an ioredis Cluster client (see the module comment). */
export function isClusterConnection(redis: Redis): boolean {
  return (redis as unknown as { isCluster?: boolean }).isCluster === true;
}

function parseRedisUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(nodeUrl(url));
  } catch {
    throw new BatonError('REDIS_UNAVAILABLE', `invalid Redis URL "${redactRedisUrl(url)}"`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new BatonError(
      'REDIS_UNAVAILABLE',
      `invalid Redis URL "${redactRedisUrl(url)}": the scheme must be redis://, rediss://, redis+cluster:// or rediss+cluster://`,
    );
  }
  return parsed;
}

function baseOptions(url: string): RedisOptions {
  const parsed = parseRedisUrl(url);
  const options: RedisOptions = {
    retryStrategy: reconnectDelay,
    // After a failover the old primary answers READONLY: reconnect and resend the command.
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
  };
  // ioredis also infers TLS from rediss://; being explicit keeps SNI on the URL's host.
  if (parsed.protocol === 'rediss:') options.tls = tlsOptions(parsed.hostname);
  return options;
}

/**
 * TLS for rediss:// URLs: the system's CAs, or the PEM file named by BATON_REDIS_CA_FILE (a
 * private CA); BATON_REDIS_TLS_INSECURE=1 skips verification (never in production).
 */
function tlsOptions(servername: string): NonNullable<RedisOptions['tls']> {
  const caFile = process.env.BATON_REDIS_CA_FILE;
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (e) {
      throw new BatonError('REDIS_UNAVAILABLE', `cannot read BATON_REDIS_CA_FILE ${caFile}: ${(e as Error).message}`);
    }
  }
  return {
    // SNI carries host names only (RFC 6066), never an IP address.
    ...(isIP(servername) ? {} : { servername }),
    ...(ca ? { ca } : {}),
    ...(process.env.BATON_REDIS_TLS_INSECURE === '1' ? { rejectUnauthorized: false } : {}),
  };
}

/**
 * Opens an ioredis connection (`redis://[user:pass@]host:port[/db]` or `rediss://` for TLS).
 *
 * - `command`: ordinary commands. Queued while disconnected (offline queue), so a Redis restart
 *   is survived; a command fails after ~1 minute of outage instead of waiting forever.
 * - `blocking`: XREAD BLOCK and the like. Never gives up on a command (BullMQ's rule for
 *   blocking clients), so a long block is not cut short by a reconnection count.
 * - `bullmq`: handed to BullMQ Queue/Worker/QueueEvents, which require
 *   `maxRetriesPerRequest: null`.
 */
export function createRedis(url: string, options: CreateRedisOptions = {}): Redis {
  const role = options.role ?? 'command';
  const nodeOptions: RedisOptions = {
    ...baseOptions(url),
    enableOfflineQueue: true,
    maxRetriesPerRequest: role === 'command' ? COMMAND_MAX_RETRIES : null,
    // No auto-pipelining: with custom Lua commands it can lose replies after a script-cache miss
    // (ioredis), and it would let MULTI blocks overtake earlier commands. Commands go out in the
    // order they are issued, which the event log relies on.
    connectionName: `baton-${role}`,
  };
  const redis = isClusterUrl(url) ? createCluster(url, nodeOptions) : new Redis(url, nodeOptions);
  if (options.onError) redis.on('error', options.onError);
  return redis;
}

/**
 * A Cluster client seeded with the URL's one node (it learns the others from CLUSTER SLOTS).
 * Credentials, database and TLS of the URL go to every node's connection (`redisOptions`).
 */
function createCluster(url: string, nodeOptions: RedisOptions): Redis {
  const parsed = parseRedisUrl(url);
  if (!['', '/', '/0'].includes(parsed.pathname)) {
    throw new BatonError('REDIS_UNAVAILABLE', `invalid Redis URL "${redactRedisUrl(url)}": Redis Cluster has only database 0 (drop "${parsed.pathname}")`);
  }
  const redisOptions: RedisOptions = {
    ...nodeOptions,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
  };
  // The cluster's node connections reconnect through MOVED/slot refreshes, not READONLY.
  delete redisOptions.reconnectOnError;
  const clusterOptions: ClusterOptions = {
    redisOptions,
    enableOfflineQueue: true,
    clusterRetryStrategy: reconnectDelay,
    // TLS nodes are reached by the host name they announce; SNI follows the URL's host.
    ...(parsed.protocol === 'rediss:' ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
  };
  const seed = { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port || 6379) };
  return new Cluster([seed], clusterOptions) as unknown as Redis;
}

/**
 * Another connection like `redis` (a Cluster client for a cluster), with these node options —
 * e.g. `maxRetriesPerRequest: null` for a blocking read.
 */
export function duplicateRedis(redis: Redis, options: RedisOptions): Redis {
  if (!isClusterConnection(redis)) return redis.duplicate(options);
  const cluster = redis as unknown as Cluster;
  return cluster.duplicate([], { redisOptions: { ...cluster.options.redisOptions, ...options } }) as unknown as Redis;
}

export interface CreateRedisOptions {
  /** Default `command`. */
  role?: RedisRole;
  /**
   * Connection errors (each failed reconnection attempt too). Without any 'error' listener
   * ioredis prints them to the console itself.
   */
  onError?: (err: Error) => void;
}

export { redactRedisUrl } from '../redact.js';

/**
 * Throws BatonError('REDIS_UNAVAILABLE') within about `timeoutMs` unless Redis answers PING.
 * No reconnection attempts: meant for a quick check before starting a run.
 */
export async function assertRedisReachable(url: string, timeoutMs = 3000): Promise<void> {
  const fail = (reason: string): BatonError =>
    new BatonError('REDIS_UNAVAILABLE', `cannot reach Redis at ${redactRedisUrl(url)}: ${reason}`);
  let redis: Redis;
  try {
    // A cluster URL is checked at the node it names.
    redis = new Redis(nodeUrl(url), {
      ...baseOptions(url),
      lazyConnect: true,
      retryStrategy: () => null,
      reconnectOnError: () => false,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      connectTimeout: timeoutMs,
      // ioredis otherwise keeps a 2 s timer after disconnect(), holding a failing command open.
      disconnectTimeout: 0,
      connectionName: 'baton-check',
    });
  } catch (err) {
    throw err instanceof BatonError ? err : fail(reasonOf(err));
  }
  // The connection's own error (WRONGPASS, ECONNREFUSED) says more than the rejected connect.
  let cause: unknown;
  redis.on('error', (e: unknown) => {
    cause ??= e;
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([
      (async () => {
        await redis.connect();
        await redis.ping();
      })(),
      timeout,
    ]);
  } catch (err) {
    throw fail(reasonOf(cause ?? err));
  } finally {
    clearTimeout(timer);
    redis.disconnect();
  }
}

function reasonOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return reasonOf(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
  }
  return String(err);
}
