import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TagConcurrencyLimit, Tags } from '../src/core/types.js';
import { createRedis } from '../src/distributed/connection.js';
import { limitKeys } from '../src/distributed/semaphore/limit-keys.js';
import { deleteLimit, listLimits, parseLimitSpec, setLimit } from '../src/distributed/semaphore/limits-admin.js';
import { createSemaphore, type Lease, type Semaphore, type SemaphoreOptions, type SlotRequest } from '../src/distributed/semaphore/semaphore.js';
import { acquireCall, renewCall } from '../src/distributed/semaphore/slot-calls.js';
import { BatonError } from '../src/errors.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { ceiling } from './helpers/ceilings.js';

let server: TestRedis;
let redis: Redis;
const open: Semaphore[] = [];
/** Each test gets its own key prefix, so tests never see each other's limits. */
let prefix = '';

beforeAll(async () => {
  server = await startTestRedis();
  redis = createRedis(server.url);
});

afterAll(async () => {
  await redis.quit();
  await server.close();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

function sem(o: Partial<SemaphoreOptions> = {}): Semaphore {
  const s = createSemaphore({ redisUrl: server.url, prefix, ...o });
  open.push(s);
  return s;
}

function newPrefix(): void {
  prefix = `t${randomUUID().slice(0, 8)}`;
}

let stepNo = 0;
function req(tags: Tags, o: Partial<SlotRequest> = {}): SlotRequest {
  return { runId: 'run-1', stepKey: `step-${++stepNo}`, attempt: 1, tags, priority: 0, runLimits: [], ...o };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Tracks whether a promise settled, so a test can assert a step is still waiting. */
function track<T>(p: Promise<T>): { done: () => boolean; p: Promise<T> } {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  return { done: () => done, p };
}

async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + ceiling('event', timeoutMs);
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

const keys = () => limitKeys(prefix);
const queued = async (): Promise<number> => redis.zcard(keys().waiters);
const used = async (): Promise<Record<string, string>> => redis.hgetall(keys().used);

beforeEach(() => {
  newPrefix();
});

describe('limit specs', () => {
  it('parses key=value, key and key=*', () => {
    expect(parseLimitSpec('database=redshift')).toEqual({ key: 'database', value: 'redshift' });
    expect(parseLimitSpec('database')).toEqual({ key: 'database' });
    expect(parseLimitSpec('team=*')).toEqual({ key: 'team', perUniqueValue: true });
    expect(parseLimitSpec('url=a=b')).toEqual({ key: 'url', value: 'a=b' });
  });

  it.each(['', '=x', 'db=', 'a b', 'run:x', '*=a', 'db=*x'])('refuses %j with LIMIT_INVALID', (spec) => {
    expect(() => parseLimitSpec(spec)).toThrow(BatonError);
    expect(() => parseLimitSpec(spec)).toThrow(/invalid limit spec/);
  });

  it.each([-1, 1.5, Number.NaN, Infinity])('refuses limit %s', async (n) => {
    await expect(setLimit(redis, 'db', n, prefix)).rejects.toMatchObject({ code: 'LIMIT_INVALID' });
  });
});

describe('semaphore', () => {
  it('never exceeds a global limit with 3 instances hammering acquire/release', async () => {
    await setLimit(redis, 'database=redshift', 2, prefix);
    const instances = [sem(), sem(), sem()];
    let current = 0;
    let max = 0;
    let redisMax = 0;
    const worker = async (s: Semaphore, n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const lease = await s.acquire(req({ database: 'redshift', other: 'x' }));
        current++;
        max = Math.max(max, current);
        redisMax = Math.max(redisMax, Number((await used())['database=redshift'] ?? 0));
        await sleep(Math.random() * 4);
        current--;
        await s.release([lease.id]);
      }
    };
    await Promise.all(instances.flatMap((s) => [0, 1, 2, 3].map(() => worker(s, 8))));
    expect(max).toBe(2);
    expect(redisMax).toBeLessThanOrEqual(2);
    expect(await used()).toEqual({});
    expect(await queued()).toBe(0);
    expect(await redis.zcard(keys().leases)).toBe(0);
  });

  it('takes several limits atomically: opposite orders never deadlock', async () => {
    await setLimit(redis, 'db=redshift', 1, prefix);
    await setLimit(redis, 'team=a', 1, prefix);
    const ab: TagConcurrencyLimit[] = [{ key: 'db', limit: 1 }, { key: 'team', limit: 1 }];
    const ba = [...ab].reverse();
    const [a, b] = [sem(), sem()];
    let current = 0;
    let max = 0;
    const run = async (s: Semaphore, runLimits: TagConcurrencyLimit[]): Promise<void> => {
      const lease = await s.acquire(req({ db: 'redshift', team: 'a' }, { runLimits }));
      expect(lease.buckets.sort()).toEqual(['db=redshift', 'run:run-1:db', 'run:run-1:team', 'team=a']);
      max = Math.max(max, ++current);
      await sleep(1);
      current--;
      await s.release([lease.id]);
    };
    const all = Array.from({ length: 30 }, (_, i) => run(i % 2 ? a : b, i % 3 ? ab : ba));
    await Promise.all(all);
    expect(max).toBe(1);
    expect(await used()).toEqual({});
  });

  it('admits by priority (clamped), then first come first served, across instances', async () => {
    await setLimit(redis, 'q', 1, prefix);
    const [a, b, c] = [sem(), sem(), sem()];
    const first = await a.acquire(req({ q: '1' }));
    const order: string[] = [];
    const pending: Array<Promise<void>> = [];
    const enqueue = async (s: Semaphore, name: string, priority: number): Promise<void> => {
      const before = await queued();
      pending.push(
        s.acquire(req({ q: '1' }, { priority, stepKey: name })).then(async (lease) => {
          order.push(name);
          await sleep(5);
          await s.release([lease.id]);
        }),
      );
      await waitFor(async () => (await queued()) === before + 1);
    };
    await enqueue(a, 'w1', 0);
    await enqueue(b, 'w2', 0);
    await enqueue(a, 'w3', 5);
    await enqueue(b, 'w4', -1);
    await enqueue(c, 'w5', 5);
    await enqueue(b, 'w6', 5000); // clamped to 1000
    await enqueue(a, 'w7', 1000); // same priority as w6, came later
    await a.release([first.id]);
    await Promise.all(pending);
    expect(order).toEqual(['w6', 'w7', 'w3', 'w5', 'w1', 'w2', 'w4']);
  });

  it('does not starve a two-limit waiter behind a stream of one-limit waiters', async () => {
    for (const spec of ['a', 'b', 'c']) await setLimit(redis, spec, 1, prefix);
    const [x, y] = [sem(), sem()];
    const holdA = await x.acquire(req({ a: '1' }));
    const holdB = await x.acquire(req({ b: '1' }));
    const both = track(y.acquire(req({ a: '1', b: '1' })));
    await waitFor(async () => (await queued()) === 1);
    const streamA1 = track(x.acquire(req({ a: '1' })));
    await waitFor(async () => (await queued()) === 2);
    await x.release([holdA.id]); // a is free, but reserved for the waiter needing a and b
    const streamA2 = track(y.acquire(req({ a: '1' })));
    await sleep(150);
    expect(both.done() || streamA1.done() || streamA2.done()).toBe(false);
    // A waiter on a disjoint limit is not held back.
    const disjoint = await y.acquire(req({ c: '1' }));
    expect(disjoint.buckets).toEqual(['c']);
    await x.release([holdB.id]);
    const lease = await both.p;
    expect(lease.buckets.sort()).toEqual(['a', 'b']);
    await sleep(50);
    expect(streamA1.done()).toBe(false);
    await y.release([lease.id]);
    await x.release([(await streamA1.p).id]);
    await y.release([(await streamA2.p).id, disjoint.id]);
    expect(await used()).toEqual({});
  });

  // The grant pass skips a waiter whose tags, run limits and run match an earlier one that could
  // not start; a waiter differing only in its run (so in its run-scoped buckets) must still start.
  it('a waiter behind a stuck one with the same tags but another run still starts', async () => {
    const s = sem();
    const runLimits: TagConcurrencyLimit[] = [{ key: 'db', limit: 1 }];
    // A tag value that looks like the fields the pass reads must not confuse it.
    const tags = { db: 'x', note: '],"runId":"r2","stepKey":"s"' };
    const held = await s.acquire(req(tags, { runId: 'r1', runLimits }));
    const stuck = track(s.acquire(req(tags, { runId: 'r1', runLimits })));
    await waitFor(async () => (await queued()) === 1);
    const other = await Promise.race([
      s.acquire(req(tags, { runId: 'r2', runLimits })),
      sleep(3000).then(() => Promise.reject(new Error("r2's waiter was held back by r1's"))),
    ]);
    expect(other.buckets).toEqual(['run:r2:db']);
    const sameRun = Array.from({ length: 5 }, () => track(s.acquire(req(tags, { runId: 'r1', runLimits }))));
    await waitFor(async () => (await queued()) === 6);
    // Released one at a time, r1's waiters start one at a time, first come first served.
    await s.release([held.id]);
    let lease = await stuck.p;
    for (const next of sameRun) {
      await sleep(20);
      expect(next.done()).toBe(false);
      await s.release([lease.id]);
      lease = await next.p;
    }
    await s.release([lease.id, other.id]);
    expect(await used()).toEqual({});
  });

  it('team=* limits each value separately', async () => {
    await setLimit(redis, 'team=*', 1, prefix);
    const s = sem();
    const a1 = await s.acquire(req({ team: 'a' }));
    const b1 = await s.acquire(req({ team: 'b' }));
    expect([a1.buckets, b1.buckets]).toEqual([['team=*:a'], ['team=*:b']]);
    const a2 = track(s.acquire(req({ team: 'a' })));
    await sleep(100);
    expect(a2.done()).toBe(false);
    const [view] = await listLimits(redis, prefix);
    expect(view).toMatchObject({ spec: 'team=*', perUniqueValue: true, inUse: 2, byValue: { a: 1, b: 1 }, waiting: 1 });
    await s.release([a1.id]);
    const lease = await a2.p;
    await s.release([lease.id, b1.id]);
  });

  it('limit 0 pauses matching steps until raised, without reserving their other limits', async () => {
    await setLimit(redis, 'db', 0, prefix);
    await setLimit(redis, 'gpu', 1, prefix);
    const s = sem();
    const paused = track(s.acquire(req({ db: 'x', gpu: 'big' })));
    await sleep(150);
    expect(paused.done()).toBe(false);
    // The paused step does not hold `gpu` back for itself while nothing can admit it.
    const gpu = await s.acquire(req({ gpu: 'big' }));
    await s.release([gpu.id]);
    await setLimit(redis, 'db', 1, prefix);
    const lease = await paused.p;
    expect(lease.buckets.sort()).toEqual(['db', 'gpu']);
    await s.release([lease.id]);
  });

  it('lowering a limit below what is in use admits nothing until under it', async () => {
    await setLimit(redis, 'db', 3, prefix);
    const s = sem();
    const held = [await s.acquire(req({ db: 'x' })), await s.acquire(req({ db: 'y' })), await s.acquire(req({ db: 'z' }))];
    await setLimit(redis, 'db', 1, prefix);
    const waiter = track(s.acquire(req({ db: 'w' })));
    for (const lease of held) {
      await sleep(100);
      expect(waiter.done()).toBe(false);
      await s.release([lease.id]);
    }
    await s.release([(await waiter.p).id]);
  });

  it("scopes a run's own limits to that run", async () => {
    const s = sem();
    const runLimits: TagConcurrencyLimit[] = [{ key: 'db', limit: 1 }];
    const r1a = await s.acquire(req({ db: 'x' }, { runId: 'r1', runLimits }));
    expect(r1a.buckets).toEqual(['run:r1:db']);
    const r1b = track(s.acquire(req({ db: 'x' }, { runId: 'r1', runLimits })));
    const r2 = await s.acquire(req({ db: 'x' }, { runId: 'r2', runLimits }));
    expect(r2.buckets).toEqual(['run:r2:db']);
    await sleep(100);
    expect(r1b.done()).toBe(false);
    await s.release([r1a.id]);
    await s.release([(await r1b.p).id, r2.id]);
    expect(s.hasGlobalLimits()).toBe(false);
  });

  it('needs no slot and no release when nothing matches', async () => {
    await setLimit(redis, 'db', 0, prefix);
    const lease = await sem().acquire(req({ other: 'x' }));
    expect(lease.buckets).toEqual([]);
    expect(await redis.hlen(keys().leaseData)).toBe(0);
  });

  it('returns the slot of a holder that stops renewing within leaseTtl + sweepInterval', async () => {
    await setLimit(redis, 'db', 1, prefix);
    const ttl = { leaseTtlMs: 600, waiterTtlMs: 600, sweepIntervalMs: 200 };
    const crashed = sem(ttl);
    await crashed.acquire(req({ db: 'x' }));
    const survivor = sem(ttl);
    const next = track(survivor.acquire(req({ db: 'x' })));
    await sleep(800); // still renewed: no expiry
    expect(next.done()).toBe(false);
    const t0 = Date.now();
    await crashed.close(); // no release: like a crash
    const lease = await next.p;
    expect(Date.now() - t0).toBeLessThan(600 + 200 + 300);
    await survivor.release([lease.id]);
  });

  it("expires a dead coordinator's waiters so they stop blocking others", async () => {
    await setLimit(redis, 'a', 1, prefix);
    await setLimit(redis, 'b', 1, prefix);
    const s = sem({ sweepIntervalMs: 200 });
    const holdB = await s.acquire(req({ b: '1' }));
    // A waiter queued by a process that died at once: nobody renews it.
    const payload = { tags: { a: '1', b: '1' }, runLimits: [], runId: 'dead', stepKey: 's', attempt: 1, holder: 'dead', leaseTtl: 600 };
    expect(await acquireCall(redis, keys(), 'dead-waiter', 0, 400, payload)).toBeNull();
    const t0 = Date.now();
    const lease = await s.acquire(req({ a: '1' })); // blocked behind the dead waiter until it expires
    expect(Date.now() - t0).toBeGreaterThan(200);
    expect(await queued()).toBe(0);
    await s.release([lease.id, holdB.id]);
  });

  it('hands a lease over with claim: the old holder is told held-by-other', async () => {
    await setLimit(redis, 'db', 1, prefix);
    const ttl = { leaseTtlMs: 600, sweepIntervalMs: 200 };
    const coordinator = sem({ ...ttl, holder: 'coordinator' });
    const worker = sem({ ...ttl, holder: 'worker' });
    const lease = await coordinator.acquire(req({ db: 'x' }));
    expect(await worker.claim(lease.id)).toBe(true);
    const renew = { holder: 'coordinator', leaseTtlMs: 600, waiterTtlMs: 600, leaseIds: [lease.id, 'nope'] };
    expect((await renewCall(redis, keys(), renew)).leases).toEqual(['held-by-other', 'missing']);
    await sleep(1500); // the worker keeps it alive
    expect(await redis.hexists(keys().leaseData, lease.id)).toBe(1);
    await worker.close(); // the worker dies; the coordinator stopped renewing at hand-off
    await waitFor(async () => (await listLimits(redis, prefix))[0]?.inUse === 0, 600 + 200 + 500);
    expect(await sem().claim(lease.id)).toBe(false);
  });

  it("a worker's release hands it the steps it admits on its own queue, leases made out to it", async () => {
    await setLimit(redis, 'db', 2, prefix);
    const coordinator = sem({ holder: 'coordinator' });
    const worker = sem({ holder: 'worker' });
    const [first, second] = [await coordinator.acquire(req({ db: 'x' })), await coordinator.acquire(req({ db: 'x' }))];
    expect(await worker.claim(first.id)).toBe(true);
    expect(await worker.claim(second.id)).toBe(true);
    const mine = track(coordinator.acquire(req({ db: 'x' }, { id: 'mine', handoff: { queue: 'q1', job: '{"jobId":"j-mine"}' } })));
    const theirs = track(coordinator.acquire(req({ db: 'x' }, { id: 'theirs', handoff: { queue: 'q2', job: '{"jobId":"j-theirs"}' } })));
    await waitFor(async () => (await queued()) === 2);
    // Admits the first waiter only (one slot freed): its queue is the worker's, so it is handed over.
    expect(await worker.releaseAndTake([first.id], 'q1')).toEqual([{ leaseId: 'mine', job: '{"jobId":"j-mine"}' }]);
    expect((await mine.p).id).toBe('mine'); // its coordinator hears of the grant all the same
    const renew = { holder: 'coordinator', leaseTtlMs: 10_000, waiterTtlMs: 10_000, leaseIds: ['mine'] };
    expect((await renewCall(redis, keys(), renew)).leases).toEqual(['held-by-other']);
    // A step on another queue is admitted but not handed to this worker.
    expect(await worker.releaseAndTake([second.id], 'q1')).toEqual([]);
    expect((await theirs.p).id).toBe('theirs');
    expect(await worker.claim('mine')).toBe(true);
    await worker.release(['mine']);
    await coordinator.release(['theirs']);
    expect(await used()).toEqual({});
  });

  it('wakes a waiter through pub/sub, not the sweep', async () => {
    await setLimit(redis, 'db', 1, prefix);
    const slow = { sweepIntervalMs: 1e9 };
    const [a, b] = [sem(slow), sem(slow)];
    const held = await a.acquire(req({ db: 'x' }));
    const next = track(b.acquire(req({ db: 'x' })));
    await waitFor(async () => (await queued()) === 1);
    const t0 = Date.now();
    await a.release([held.id]);
    const lease = await next.p;
    expect(Date.now() - t0).toBeLessThan(300);
    await b.release([lease.id]);
  });

  it('removes the waiter when the signal aborts', async () => {
    await setLimit(redis, 'db', 1, prefix);
    const s = sem();
    const held = await s.acquire(req({ db: 'x' }));
    const ac = new AbortController();
    const waiting = s.acquire(req({ db: 'x' }), ac.signal);
    await waitFor(async () => (await queued()) === 1);
    ac.abort(new Error('run canceled'));
    await expect(waiting).rejects.toThrow('run canceled');
    await waitFor(async () => (await queued()) === 0);
    await s.release([held.id]);
    await s.release([held.id]); // idempotent
    expect(await used()).toEqual({});
    await expect(s.acquire(req({ db: 'x' }), AbortSignal.abort())).rejects.toThrow();
  });

  it('acquires in one round trip when uncontended, releases in one', async () => {
    await setLimit(redis, 'db', 5, prefix);
    const s = sem({ sweepIntervalMs: 1e9 });
    await s.release([(await s.acquire(req({ db: 'x' }))).id]); // loads the scripts
    const calls = async (): Promise<number> => {
      const info = await redis.info('commandstats');
      return [...info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    };
    const before = await calls();
    const lease = await s.acquire(req({ db: 'x' }));
    expect(await calls()).toBe(before + 1);
    await s.release([lease.id]);
    expect(await calls()).toBe(before + 2);
  });

  it('knows whether global limits exist, refreshed on the changed channel', async () => {
    const s = sem({ sweepIntervalMs: 1e9 });
    await waitFor(() => !s.hasGlobalLimits());
    await setLimit(redis, 'db', 1, prefix);
    await waitFor(() => s.hasGlobalLimits(), 500);
    expect(await deleteLimit(redis, 'db', prefix)).toBe(true);
    expect(await deleteLimit(redis, 'db', prefix)).toBe(false);
    await waitFor(() => !s.hasGlobalLimits(), 500);
  });
});

describe('listLimits', () => {
  it('shows holders and waiting steps, and frees the slot of an expired lease', async () => {
    await setLimit(redis, 'database=redshift', 1, prefix);
    await setLimit(redis, 'team', 2, prefix);
    const crashed = sem({ leaseTtlMs: 600 });
    const other = sem();
    const lease: Lease = await crashed.acquire(req({ database: 'redshift', team: 'a' }, { runId: 'r9', stepKey: 'load' }));
    const waiter = track(other.acquire(req({ database: 'redshift' })));
    await waitFor(async () => (await queued()) === 1);
    const views = await listLimits(redis, prefix);
    expect(views.map((v) => v.spec)).toEqual(['database=redshift', 'team']);
    expect(views[0]).toMatchObject({
      key: 'database',
      value: 'redshift',
      limit: 1,
      inUse: 1,
      waiting: 1,
      holders: [{ runId: 'r9', stepKey: 'load', attempt: 1, bucket: 'database=redshift' }],
    });
    expect(views[1]).toMatchObject({ value: null, perUniqueValue: false, inUse: 1, waiting: 0 });
    await other.close(); // withdraws its waiter, and stops the only sweeper
    expect(waiter.done()).toBe(true);
    await crashed.close();
    await sleep(700);
    const after = await listLimits(redis, prefix);
    expect(after.map((v) => [v.inUse, v.holders.length, v.waiting])).toEqual([[0, 0, 0], [0, 0, 0]]);
    expect(await redis.hexists(keys().leaseData, lease.id)).toBe(0);
  });
});
