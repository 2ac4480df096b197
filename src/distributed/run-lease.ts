import type { Redis } from 'ioredis';
import { BatonError } from '../errors.js';
import { DEFAULT_PREFIX, runKeys } from './keys.js';
import { scriptCommand } from './lua-loader.js';

/**
 * The lease a coordinator holds on the run it drives, so two coordinators never drive one run.
 * Renewed every third of its TTL; if the coordinator dies it expires and `resume` can adopt the
 * run. `lost` fires if a renewal finds the lease gone or taken (the run must then stop).
 */
export interface RunLease {
  readonly holder: string;
  release(): Promise<void>;
  onLost(listener: () => void): void;
  /**
   * False once the lease may have expired, by this process's monotonic clock: more than a TTL
   * since the send of the last renewal that succeeded (say, the process was stopped or starved).
   * The first call that finds it so also fires `lost`: the caller must not write to the run.
   */
  check(): boolean;
  /** A fenced write found the lease another's: fires `lost` now. */
  forfeit(): void;
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
  let taken = performance.now();
  let seen: { holder: string | null; pttl: number } | undefined;
  let renewals = 0;
  for (;;) {
    taken = performance.now();
    if ((await redis.set(key, holder, 'PX', options.ttlMs, 'NX')) === 'OK') break;
    const [current, pttl] = await Promise.all([redis.get(key), redis.pttl(key)]);
    // A lapsing lease only counts down; one that changed hands, or went up twice, has a live
    // driver. (Once could be a dead driver's last renewal, sent just before it died.)
    if (seen !== undefined && current === seen.holder && pttl > seen.pttl) renewals += 1;
    const alive = seen !== undefined && current !== null && (current !== seen.holder || renewals >= 2);
    if (alive) {
      throw new BatonError(
        'RUN_BUSY',
        `run "${runId}" is driven by ${current}, which is alive (it renewed its lease just now); one driver at a time — cancel the run or let it finish`,
      );
    }
    if (Date.now() >= deadline) {
      throw new BatonError(
        'RUN_BUSY',
        `run "${runId}" is driven by ${current ?? 'another coordinator'} (its lease is renewed; it expires ${Math.max(0, pttl)} ms after that coordinator stops)`,
      );
    }
    if (current !== null) seen = { holder: current, pttl };
    await new Promise((r) => setTimeout(r, Math.min(250, Math.max(20, pttl))));
  }
  const listeners: Array<() => void> = [];
  let lost = false;
  // Measured from before the SET was sent: the key may have been created any time after that.
  let validUntil = taken + options.ttlMs;
  const loseIt = (): void => {
    if (lost) return;
    lost = true;
    for (const l of listeners) l();
  };
  const timer = setInterval(() => {
    const sent = performance.now();
    if (sent >= validUntil) return loseIt(); // stalled past the TTL: another may have adopted the run
    scriptCommand(redis, RENEW)(key, holder, options.ttlMs)
      .then((ok) => {
        if (ok === 1) validUntil = Math.max(validUntil, sent + options.ttlMs);
        else loseIt();
      })
      .catch(() => {}); // Redis unreachable: try again next tick; the TTL covers short outages
  }, Math.max(50, Math.floor(options.ttlMs / 3)));
  timer.unref();
  return {
    holder,
    onLost: (l) => listeners.push(l),
    check() {
      if (!lost && performance.now() >= validUntil) loseIt();
      return !lost;
    },
    forfeit: loseIt,
    async release() {
      clearInterval(timer);
      await scriptCommand(redis, RELEASE)(key, holder).catch(() => {});
    },
  };
}
