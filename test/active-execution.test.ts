import { describe, expect, it } from 'vitest';
import { ActiveExecution } from '../src/core/active-execution.js';
import { planOf } from './core-helpers.js';

const err = { name: 'Error', message: 'boom' };
const keys = (ls: Array<{ key: string }>) => ls.map((l) => l.key);

function exec(plan: ReturnType<typeof planOf>, opts: Partial<ConstructorParameters<typeof ActiveExecution>[1]> = {}) {
  return new ActiveExecution(plan, { maxConcurrent: 0, tagConcurrencyLimits: [], retriesEnabled: true, ...opts });
}

describe('ActiveExecution', () => {
  it('launches a diamond in dependency order and ends SUCCESS', () => {
    const x = exec(planOf({ a: [], b: ['a'], c: ['a'], d: ['b', 'c'] }));
    expect(keys(x.takeLaunchable(0))).toEqual(['a']);
    expect(x.takeLaunchable(0)).toEqual([]);
    x.succeed('a');
    expect(keys(x.takeLaunchable(0))).toEqual(['b', 'c']);
    x.succeed('b');
    expect(x.takeLaunchable(0)).toEqual([]); // d still waits on c
    x.succeed('c');
    expect(x.takeLaunchable(0)).toEqual([{ key: 'd', attempt: 1 }]);
    expect(x.isComplete).toBe(false);
    x.succeed('d');
    expect(x.isComplete).toBe(true);
    expect(x.runStatus()).toBe('SUCCESS');
  });

  it('caps steps in flight at maxConcurrent', () => {
    const x = exec(planOf({ a: [], b: [], c: [] }), { maxConcurrent: 2 });
    expect(keys(x.takeLaunchable(0))).toEqual(['a', 'b']);
    x.succeed('a');
    expect(keys(x.takeLaunchable(0))).toEqual(['c']);
  });

  it('a failed step skips everything downstream while independent branches run on', () => {
    const x = exec(planOf({ a: [], b: ['a'], c: ['b'], other: [], after_other: ['other'] }));
    x.takeLaunchable(0);
    expect(x.fail('a', err, 0)).toEqual({ kind: 'failed', skipped: ['b', 'c'] });
    expect(x.status('c')).toBe('SKIPPED');
    x.succeed('other');
    expect(keys(x.takeLaunchable(0))).toEqual(['after_other']);
    x.succeed('after_other');
    expect(x.isComplete).toBe(true);
    expect(x.runStatus()).toBe('FAILURE');
  });

  it('retries with the policy delay, then fails after max_retries', () => {
    const retry = { maxRetries: 2, delaySeconds: 1, backoff: 'linear' as const, jitter: null };
    const x = exec(planOf({ a: [], b: ['a'] }, { a: { retry } }));
    expect(x.takeLaunchable(0)).toEqual([{ key: 'a', attempt: 1 }]);
    expect(x.fail('a', err, 100)).toEqual({ kind: 'retry', attempt: 2, delayMs: 1000 });
    expect(x.status('a')).toBe('UP_FOR_RETRY');
    expect(x.nextRetryAt).toBe(1100);
    expect(x.takeLaunchable(1099)).toEqual([]);
    expect(x.takeLaunchable(1100)).toEqual([{ key: 'a', attempt: 2 }]);
    expect(x.fail('a', err, 2000)).toEqual({ kind: 'retry', attempt: 3, delayMs: 2000 });
    expect(x.takeLaunchable(4000)).toEqual([{ key: 'a', attempt: 3 }]);
    expect(x.fail('a', err, 5000)).toEqual({ kind: 'failed', skipped: ['b'] });
  });

  it('does not retry when retries are disabled or the error is not retryable', () => {
    const retry = { maxRetries: 3, delaySeconds: 0, backoff: null, jitter: null };
    const off = exec(planOf({ a: [] }, { a: { retry } }), { retriesEnabled: false });
    off.takeLaunchable(0);
    expect(off.fail('a', err, 0).kind).toBe('failed');
    const fatal = exec(planOf({ a: [] }, { a: { retry } }));
    fatal.takeLaunchable(0);
    expect(fatal.fail('a', { ...err, retryable: false }, 0).kind).toBe('failed');
  });

  it('passes over steps a tag limit holds back instead of blocking on them', () => {
    const rs = { tags: { database: 'redshift' } };
    const x = exec(planOf({ r1: [], r2: [], r3: [], free: [] }, { r1: rs, r2: rs, r3: rs }), {
      tagConcurrencyLimits: [{ key: 'database', value: 'redshift', limit: 2 }],
    });
    expect(keys(x.takeLaunchable(0))).toEqual(['r1', 'r2', 'free']);
    x.succeed('r1');
    expect(keys(x.takeLaunchable(0))).toEqual(['r3']);
  });

  it('cancel stops launching and drops waiting retries', () => {
    const retry = { maxRetries: 3, delaySeconds: 10, backoff: null, jitter: null };
    const x = exec(planOf({ a: [], b: [], c: ['b'] }, { a: { retry } }));
    x.takeLaunchable(0);
    x.fail('a', err, 0);
    expect(x.cancel()).toEqual(['a']);
    x.cancelStep('b');
    expect(x.takeLaunchable(1e9)).toEqual([]);
    expect(x.isComplete).toBe(true);
    expect(x.runStatus()).toBe('CANCELED');
    expect(x.statuses()).toEqual({ a: 'CANCELED', b: 'CANCELED', c: 'NOT_STARTED' });
  });

  it('skips a deep chain without recursion', () => {
    const graph: Record<string, string[]> = { s0: [] };
    for (let i = 1; i < 50_000; i++) graph[`s${i}`] = [`s${i - 1}`];
    const x = exec(planOf(graph));
    x.takeLaunchable(0);
    const r = x.fail('s0', err, 0);
    expect(r.kind === 'failed' && r.skipped.length).toBe(49_999);
  });
});

describe('ActiveExecution restored from an earlier coordinator', () => {
  it('keeps finished steps, relaunches interrupted ones at the same attempt and due retries at the next', () => {
    const x = new ActiveExecution(planOf({ a: [], b: ['a'], c: ['a'], d: ['b', 'c'], e: [] }), {
      maxConcurrent: 0,
      tagConcurrencyLimits: [],
      retriesEnabled: true,
      restore: {
        a: { status: 'SUCCESS', attempt: 1 },
        b: { status: 'IN_PROGRESS', attempt: 2 },
        c: { status: 'UP_FOR_RETRY', attempt: 1 },
        e: { status: 'FAILURE', attempt: 3 },
      },
    });
    expect(x.takeLaunchable(0)).toEqual([
      { key: 'b', attempt: 2 },
      { key: 'c', attempt: 2 },
    ]);
    x.succeed('b');
    x.succeed('c');
    expect(x.takeLaunchable(0)).toEqual([{ key: 'd', attempt: 1 }]);
    x.succeed('d');
    expect(x.isComplete).toBe(true);
    expect(x.runStatus()).toBe('FAILURE');
    expect(x.statuses()).toEqual({ a: 'SUCCESS', b: 'SUCCESS', c: 'SUCCESS', d: 'SUCCESS', e: 'FAILURE' });
  });
});
