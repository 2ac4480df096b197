import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../src/core/retry.js';
import { bucketsFor, TagConcurrencyCounter } from '../src/core/tag-limits.js';

describe('retryDelayMs (Dagster RetryPolicy)', () => {
  const p = (backoff: 'linear' | 'exponential' | null, jitter: 'full' | 'plus_minus' | null = null) => ({
    maxRetries: 5,
    delaySeconds: 2,
    backoff,
    jitter,
  });
  it('constant, linear delay*n and exponential (2^n-1)*delay', () => {
    expect([1, 2, 3].map((n) => retryDelayMs(p(null), n))).toEqual([2000, 2000, 2000]);
    expect([1, 2, 3].map((n) => retryDelayMs(p('linear'), n))).toEqual([2000, 4000, 6000]);
    expect([1, 2, 3].map((n) => retryDelayMs(p('exponential'), n))).toEqual([2000, 6000, 14000]);
  });
  it('full jitter scales by random, plus_minus adds ±delay, never negative', () => {
    expect(retryDelayMs(p('exponential', 'full'), 3, () => 0.5)).toBe(7000);
    expect(retryDelayMs(p('linear', 'plus_minus'), 2, () => 1)).toBe(6000);
    expect(retryDelayMs(p('linear', 'plus_minus'), 2, () => 0)).toBe(2000);
    expect(retryDelayMs({ ...p(null, 'plus_minus'), delaySeconds: 1 }, 1, () => 0)).toBe(0);
  });
});

describe('tag concurrency limits', () => {
  const limits = [
    { key: 'database', value: 'redshift', limit: 2 },
    { key: 'heavy', limit: 1 },
    { key: 'team', perUniqueValue: true, limit: 1 },
  ];
  it('matches key+value, key only, and per unique value', () => {
    expect(bucketsFor({ database: 'redshift', heavy: 'yes', team: 'a' }, limits).map((b) => b.name)).toEqual([
      'database=redshift',
      'heavy',
      'team=*:a',
    ]);
    expect(bucketsFor({ database: 'postgres' }, limits)).toEqual([]);
  });
  it('a step starts only when every matching bucket has room', () => {
    const c = new TagConcurrencyCounter(limits);
    c.acquire({ team: 'a' });
    expect(c.canStart({ team: 'a' })).toBe(false);
    expect(c.canStart({ team: 'b' })).toBe(true);
    expect(c.canStart({ team: 'b', heavy: '1' })).toBe(true);
    c.acquire({ heavy: '1' });
    expect(c.canStart({ team: 'b', heavy: '1' })).toBe(false);
    c.release({ team: 'a' });
    expect(c.canStart({ team: 'a' })).toBe(true);
  });
});
