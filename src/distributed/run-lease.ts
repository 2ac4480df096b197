import type { Redis } from 'ioredis';
import { BatonError } from '../errors.js';
import { DEFAULT_PREFIX, runKeys } from './keys.js';
import { keyCount, loadScript } from './lua-loader.js';

/**
 * The lease a coordinator holds on the run it drives, so two coordinators never drive one run.
 * Renewed every third of its TTL; if the coordinator dies it expires and `resume` can adopt the
 * run. `lost` fires if a renewal finds the lease gone or taken (the run must then stop).
 */
export interface RunLease {
  readonly holder: string;
  release(): Promise<void>;
  onLost(listener: () => void): void;
}

const RENEW = 'renew-run-lease-1';
const RELEASE = 'release-run-lease-1';

export async function takeRunLease(
  redis: Redis,
  runId: string,
  holder: string,
  options: { ttlMs: number; waitMs?: number; prefix?: string },
): Promise<RunLease> {
  const key = runKeys(runId, options.prefix ?? DEFAULT_PREFIX).driver;
  const deadline = Date.now() + (options.waitMs ?? 0);
  for (;;) {
    if ((await redis.set(key, holder, 'PX', options.ttlMs, 'NX')) === 'OK') break;
    const [current, pttl] = await Promise.all([redis.get(key), redis.pttl(key)]);
    if (Date.now() >= deadline) {
      throw new BatonError(
        'RUN_BUSY',
        `run "${runId}" is driven by ${current ?? 'another coordinator'} (its lease is renewed; it expires ${Math.max(0, pttl)} ms after that coordinator stops)`,
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(250, Math.max(20, pttl))));
  }
  const listeners: Array<() => void> = [];
  let lost = false;
  const timer = setInterval(() => {
    redis
      .eval(loadScript(RENEW), keyCount(RENEW), key, holder, options.ttlMs)
      .then((ok) => {
        if (ok === 1 || lost) return;
        lost = true;
        for (const l of listeners) l();
      })
      .catch(() => {}); // Redis unreachable: try again next tick; the TTL covers short outages
  }, Math.max(50, Math.floor(options.ttlMs / 3)));
  timer.unref();
  return {
    holder,
    onLost: (l) => listeners.push(l),
    async release() {
      clearInterval(timer);
      await redis.eval(loadScript(RELEASE), keyCount(RELEASE), key, holder).catch(() => {});
    },
  };
}
