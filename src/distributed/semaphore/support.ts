/** Small helpers of the Semaphore: option checks, background timers, closing connections. */
import type { Redis } from 'ioredis';

/** setInterval caps delays at 2^31-1 ms (longer ones fire at once). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export function positiveMs(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number of ms, got ${v}`);
  return v;
}

/**
 * Runs `task` every `ms` (unref'd), never two at once; a failure (e.g. Redis unreachable)
 * just waits for the next tick. Returns the timer for clearInterval.
 */
export function repeat(ms: number, task: () => Promise<void>): NodeJS.Timeout {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    task()
      .catch(() => {})
      .finally(() => {
        busy = false;
      });
  }, Math.min(ms, MAX_TIMER_MS));
  timer.unref();
  return timer;
}

/** QUIT when connected; otherwise drop the socket rather than wait for a reconnection. */
export async function closeConnection(r: Redis): Promise<void> {
  if (r.status === 'ready') await r.quit().catch(() => r.disconnect());
  else r.disconnect();
}
