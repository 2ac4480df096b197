/** The run queue's rules, pure: order, limits, and the reason a queued run waits. */
import { describe, expect, it } from 'vitest';
import { pickRuns, priorityOf, queueMember, runIdOfMember, waitReason, type RunQueueConfig } from '../src/core/run-queue.js';

const q = (runId: string, tags: Record<string, string> = {}) => ({ runId, job: 'j', tags });

describe('run queue rules', () => {
  it('reads baton/priority as an integer, anything else as 0', () => {
    expect(priorityOf({ 'baton/priority': '5' })).toBe(5);
    expect(priorityOf({ 'baton/priority': '-2' })).toBe(-2);
    expect(priorityOf({ 'baton/priority': 'high' })).toBe(0);
    expect(priorityOf({ 'baton/priority': '1.5' })).toBe(0);
    expect(priorityOf({})).toBe(0);
  });

  it('orders members of equal priority by submission time', () => {
    const members = [queueMember(1_700_000_000_500, 'b'), queueMember(1_700_000_000_000, 'z'), queueMember(99, 'a')].sort();
    expect(members.map(runIdOfMember)).toEqual(['a', 'z', 'b']);
  });

  it('passes over a run held by a tag limit and stops at max_concurrent_runs', () => {
    const config: RunQueueConfig = { maxConcurrentRuns: 3, tagConcurrencyLimits: [{ key: 'team', value: 'data', limit: 1 }] };
    const active = [{ runId: 'r0', tags: { team: 'data' } }];
    const queued = [q('a', { team: 'data' }), q('b'), q('c', { team: 'ml' }), q('d')];
    expect(pickRuns(config, active, queued).map((r) => r.runId)).toEqual(['b', 'c']);
    expect(pickRuns(config, active, queued, 1).map((r) => r.runId)).toEqual(['b']);
  });

  it('counts per-value limits separately for each value', () => {
    const config: RunQueueConfig = { maxConcurrentRuns: null, tagConcurrencyLimits: [{ key: 'team', perUniqueValue: true, limit: 1 }] };
    const queued = [q('a', { team: 'x' }), q('b', { team: 'x' }), q('c', { team: 'y' })];
    expect(pickRuns(config, [], queued).map((r) => r.runId)).toEqual(['a', 'c']);
    expect(waitReason(config, [{ runId: 'a', tags: { team: 'x' } }], [q('b', { team: 'x' })], 'b')).toBe('run tag limit team=x (per value) (1) reached: 1 run in progress');
  });

  it('says which limit holds a run, or that runs ahead take the room', () => {
    const config: RunQueueConfig = { maxConcurrentRuns: 1, tagConcurrencyLimits: [] };
    expect(waitReason(config, [{ runId: 'x', tags: {} }], [q('a')], 'a')).toBe('max_concurrent_runs (1) reached: 1 run in progress');
    expect(waitReason(config, [], [q('a'), q('b')], 'a')).toBe('waiting for a serve to start it');
    expect(waitReason(config, [], [q('a'), q('b')], 'b')).toBe(
      'behind 1 queued run of higher priority or submitted earlier, which take the room left (max_concurrent_runs (1))',
    );
    expect(waitReason({ maxConcurrentRuns: 0, tagConcurrencyLimits: [] }, [], [q('a')], 'a')).toBe('max_concurrent_runs (0) reached: 0 runs in progress');
  });
});
