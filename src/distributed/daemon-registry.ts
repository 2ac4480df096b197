/**
 * Daemon health: each `coordinator serve` writes its registration (who it is, what it runs) every
 * heartbeat with a time-to-live of three heartbeats, so one that dies drops out within three.
 * `coordinator serve --status`, `schedules list` and the instance (`daemons.list()`) read the live
 * ones. Keys: keys.ts (`{daemons}`).
 */
import type { Redis } from 'ioredis';
import type { DaemonInfo } from '../instance/types.js';
import { DEFAULT_PREFIX, daemonKeys } from './keys.js';

export const DAEMON_HEARTBEAT_MS = 2000;
const HEARTBEATS_TO_LIVE = 3;

export type DaemonIdentity = Omit<DaemonInfo, 'lastSeen' | 'startedAt'>;

export interface DaemonHeartbeat {
  /** Writes the first registration (awaited), then one every heartbeat. */
  start(): Promise<void>;
  /** Stops beating and removes the registration. */
  stop(): Promise<void>;
}

export function createDaemonHeartbeat(
  redis: Redis,
  identity: DaemonIdentity,
  o: { prefix?: string; heartbeatMs?: number; onError?: (e: unknown) => void } = {},
): DaemonHeartbeat {
  const k = daemonKeys(o.prefix ?? DEFAULT_PREFIX);
  const heartbeatMs = o.heartbeatMs ?? DAEMON_HEARTBEAT_MS;
  const startedAt = new Date().toISOString();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const beat = async (): Promise<void> => {
    const now = Date.now();
    const info: DaemonInfo & { heartbeatMs: number } = { ...identity, startedAt, lastSeen: new Date(now).toISOString(), heartbeatMs };
    await redis.multi().set(k.daemon(identity.id), JSON.stringify(info), 'PX', heartbeatMs * HEARTBEATS_TO_LIVE).zadd(k.index, now, identity.id).exec();
  };
  const loop = (): void => {
    timer = setTimeout(() => {
      beat().then(loop, (e: unknown) => {
        o.onError?.(e);
        if (!stopped) loop();
      });
    }, heartbeatMs);
    timer.unref();
  };

  return {
    async start() {
      await beat();
      if (!stopped) loop();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await redis.multi().del(k.daemon(identity.id)).zrem(k.index, identity.id).exec();
    },
  };
}

/** The live daemons, newest heartbeat first. Prunes the dead from the index. */
export async function listDaemons(redis: Redis, prefix: string = DEFAULT_PREFIX): Promise<DaemonInfo[]> {
  const k = daemonKeys(prefix);
  const ids = await redis.zrevrange(k.index, 0, -1);
  if (ids.length === 0) return [];
  const values = await redis.mget(ids.map((id) => k.daemon(id)));
  const live: DaemonInfo[] = [];
  const dead: string[] = [];
  values.forEach((raw, i) => {
    const parsed = raw === null ? undefined : parseInfo(raw);
    if (parsed) live.push(parsed);
    else dead.push(ids[i] as string);
  });
  if (dead.length > 0) await redis.zrem(k.index, ...dead);
  return live;
}

function parseInfo(raw: string): DaemonInfo | undefined {
  try {
    const { heartbeatMs: _heartbeatMs, ...v } = JSON.parse(raw) as DaemonInfo & { heartbeatMs?: number };
    return typeof v.id === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}
