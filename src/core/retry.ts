import type { RetryPolicy } from './types.js';

/**
 * Delay before retry number `retryNumber` (1 for the first retry), in milliseconds, following
 * Dagster's RetryPolicy: LINEAR `delay*n`, EXPONENTIAL `(2^n-1)*delay`, none: `delay`; then FULL
 * jitter scales by a random factor in [0,1) and PLUS_MINUS adds a random offset in ±delay.
 */
export function retryDelayMs(policy: RetryPolicy, retryNumber: number, random: () => number = Math.random): number {
  const base = policy.delaySeconds;
  let delay: number;
  if (policy.backoff === 'exponential') delay = (2 ** retryNumber - 1) * base;
  else if (policy.backoff === 'linear') delay = base * retryNumber;
  else delay = base;
  if (policy.jitter === 'full') delay = random() * delay;
  else if (policy.jitter === 'plus_minus') delay = delay + (2 * random() * base - base);
  return Math.max(0, delay) * 1000;
}
