import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutionPlan, PlanStep, RunEvent } from '../src/core/types.js';
import { createRedis } from '../src/distributed/connection.js';
import { allRunKeys, runKeys, runsIndexKey } from '../src/distributed/keys.js';
import { createOutputStore } from '../src/distributed/output-store.js';
import { createRunStore, type AttemptRef, type RunRecord, type RunStore } from '../src/distributed/run-store.js';
import { BatonError } from '../src/errors.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';

const step = (key: string, upstream: string[] = []): PlanStep => ({
  key,
  op: key,
  upstream,
  inputs: Object.fromEntries(upstream.map((u) => [u, { fromStep: u }])),
  config: {},
  tags: {},
  retry: null,
});

const plan: ExecutionPlan = { job: 'etl', steps: [step('extract'), step('load', ['extract'])] };

function record(overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    runId: randomUUID(),
    job: 'etl',
    jobHash: 'abc123',
    jobPath: '/jobs/etl.yaml',
    status: 'STARTED',
    tags: { team: 'data' },
    startedAt: new Date().toISOString(),
    runConfig: { ops: { extract: { config: { limit: 5 } } } },
    queue: 'baton',
    ...overrides,
  };
}

const attemptRef = (runId: string, stepKey: string, token: string): AttemptRef => ({ runId, stepKey, attempt: 1, token, takeover: false });

const event = (runId: string, type: RunEvent['type'], stepKey?: string): RunEvent => ({
  type,
  runId,
  timestamp: new Date().toISOString(),
  ...(stepKey ? { stepKey, attempt: 1 } : {}),
});

let server: TestRedis;
let redis: Redis;
let store: RunStore;

beforeAll(async () => {
  server = await startTestRedis();
  redis = createRedis(server.url);
  store = createRunStore(redis);
});

afterAll(async () => {
  await store.close();
  redis.disconnect();
  await server.close();
});

describe('keys', () => {
  it('puts every key of a run under one hash tag', () => {
    const keys = runKeys('r1');
    expect(keys).toEqual({
      record: 'baton:{run:r1}:record',
      plan: 'baton:{run:r1}:plan',
      steps: 'baton:{run:r1}:steps',
      events: 'baton:{run:r1}:events',
      outputs: 'baton:{run:r1}:outputs',
      driver: 'baton:{run:r1}:driver',
    });
    expect(allRunKeys('r1', 'x')).toHaveLength(6);
    expect(runsIndexKey()).toBe('baton:runs');
  });
});

describe('run store', () => {
  it('round-trips a run: record, plan and NOT_STARTED steps', async () => {
    const rec = record({ parentRunId: 'parent-1' });
    await store.createRun(rec, plan);
    const got = await store.getRun(rec.runId);
    expect(got?.record).toEqual(rec);
    expect(got?.plan).toEqual(plan);
    expect(Object.keys(got?.steps ?? {})).toEqual(['extract', 'load']);
    expect(got?.steps.load).toMatchObject({ status: 'NOT_STARTED', attempt: 0 });
    expect(await redis.type(runKeys(rec.runId).record)).toBe('hash');
    expect(await redis.type(runKeys(rec.runId).plan)).toBe('string');
  });

  it('returns null for an unknown run', async () => {
    expect(await store.getRun('nope')).toBeNull();
  });

  it('updates run status and step states', async () => {
    const rec = record();
    await store.createRun(rec, plan);
    const now = new Date().toISOString();
    await store.setStepState(rec.runId, 'extract', { status: 'IN_PROGRESS', attempt: 1, worker: 'w1', updatedAt: now });
    await store.setRunStatus(rec.runId, 'SUCCESS', now);
    const got = await store.getRun(rec.runId);
    expect(got?.steps.extract).toEqual({ status: 'IN_PROGRESS', attempt: 1, worker: 'w1', updatedAt: now });
    expect(got?.record.status).toBe('SUCCESS');
    expect(got?.record.endedAt).toBe(now);
  });

  it('setRunStatus on an unknown run throws RUN_NOT_FOUND and writes nothing', async () => {
    await expect(store.setRunStatus('ghost', 'FAILURE')).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
    expect(await redis.exists(runKeys('ghost').record)).toBe(0);
  });

  it('appends events in order and reads after an id', async () => {
    const runId = randomUUID();
    const first = await store.appendEvent(event(runId, 'RUN_START'));
    await store.appendEvent(event(runId, 'STEP_START', 'a'));
    await store.appendEvent(event(runId, 'STEP_SUCCESS', 'a'));
    const last = await store.appendEvent(event(runId, 'RUN_SUCCESS'));
    const all = await store.readEvents(runId);
    expect(all.map((e) => e.event.type)).toEqual(['RUN_START', 'STEP_START', 'STEP_SUCCESS', 'RUN_SUCCESS']);
    expect(all[0]?.id).toBe(first);
    expect(all[3]?.id).toBe(last);
    const after = await store.readEvents(runId, first);
    expect(after.map((e) => e.event.type)).toEqual(['STEP_START', 'STEP_SUCCESS', 'RUN_SUCCESS']);
    expect(await store.readEvents(runId, first, { count: 1 })).toHaveLength(1);
    expect(await store.readEvents(runId, last)).toEqual([]);
  });

  it('recordStepEvent sets the state and appends the event in one MULTI', async () => {
    const rec = record();
    await store.createRun(rec, plan);
    const state = { status: 'SUCCESS' as const, attempt: 1, updatedAt: new Date().toISOString() };
    const id = await store.recordStepEvent(event(rec.runId, 'STEP_SUCCESS', 'extract'), state);
    const got = await store.getRun(rec.runId);
    expect(got?.steps.extract).toEqual(state);
    const events = await store.readEvents(rec.runId);
    expect(events).toEqual([{ id, event: expect.objectContaining({ type: 'STEP_SUCCESS', stepKey: 'extract' }) }]);
  });

  it('startAttempt records the step IN_PROGRESS under its token; a later delivery takes the attempt over', async () => {
    const rec = record();
    await store.createRun(rec, plan);
    const state = { status: 'IN_PROGRESS' as const, attempt: 1, worker: 'w1', updatedAt: new Date().toISOString() };
    const a = attemptRef(rec.runId, 'extract', 'tokA');
    const id = await store.startAttempt(a, event(rec.runId, 'STEP_START', 'extract'), state);
    expect(id).not.toBeNull();
    expect((await store.getRun(rec.runId))?.steps.extract).toEqual(state); // the token stays internal
    const c = { ...attemptRef(rec.runId, 'extract', 'tokC'), takeover: true };
    expect(await store.startAttempt(c, event(rec.runId, 'STEP_START', 'extract'), state)).not.toBeNull();
    // A's log lines and end are refused from now on; C's are written.
    expect(await store.appendAttemptEvent(a, event(rec.runId, 'LOG', 'extract'))).toBeNull();
    expect(await store.appendAttemptEvent(c, event(rec.runId, 'LOG', 'extract'))).not.toBeNull();
    const end = (ref: AttemptRef, output: string) =>
      store.finishAttempt(ref, { event: event(rec.runId, 'STEP_ATTEMPT_END', 'extract'), state, output });
    expect(await end(a, '"stale"')).toBeNull();
    expect(await end(c, '"fresh"')).not.toBeNull();
    expect(await end(c, '"twice"')).toBeNull(); // an attempt reports once
    expect(await redis.hget(runKeys(rec.runId).outputs, 'extract')).toBe('"fresh"');
    // The attempt ended: a late re-delivery of it does not run again.
    expect(await store.startAttempt({ ...attemptRef(rec.runId, 'extract', 'tokD'), takeover: true }, event(rec.runId, 'STEP_START', 'extract'), state)).toBeNull();
    const types = (await store.readEvents(rec.runId)).map((e) => e.event.type);
    expect(types).toEqual(['STEP_START', 'STEP_START', 'LOG', 'STEP_ATTEMPT_END']);
  });

  it("an earlier delivery's start that reaches Redis late (its worker was cut off) does not take the attempt back", async () => {
    const rec = record();
    await store.createRun(rec, plan);
    const state = { status: 'IN_PROGRESS' as const, attempt: 1, worker: 'w2', updatedAt: new Date().toISOString() };
    const second: AttemptRef = { ...attemptRef(rec.runId, 'extract', 'tok2'), takeover: true, delivery: 2 };
    const first: AttemptRef = { ...attemptRef(rec.runId, 'extract', 'tok1'), delivery: 1 };
    expect(await store.startAttempt(second, event(rec.runId, 'STEP_START', 'extract'), state)).not.toBeNull();
    expect(await store.startAttempt(first, event(rec.runId, 'STEP_START', 'extract'), { ...state, worker: 'w1' })).toBeNull();
    // Nor by starting and ending in one call.
    const end = (ref: AttemptRef, output: string, start?: boolean) =>
      store.finishAttempt(ref, {
        event: event(rec.runId, 'STEP_ATTEMPT_END', 'extract'),
        state,
        output,
        ...(start ? { start: { event: event(rec.runId, 'STEP_START', 'extract'), state: { ...state, worker: 'w1' } } } : {}),
      });
    expect(await end(first, '"stale"', true)).toBeNull();
    expect((await store.getRun(rec.runId))?.steps.extract).toEqual(state);
    expect(await end(second, '"fresh"')).not.toBeNull();
    expect(await redis.hget(runKeys(rec.runId).outputs, 'extract')).toBe('"fresh"');
    // A later delivery still takes over from an earlier one, as before.
    const rec2 = record();
    await store.createRun(rec2, plan);
    expect(await store.startAttempt({ ...first, runId: rec2.runId }, event(rec2.runId, 'STEP_START', 'extract'), state)).not.toBeNull();
    expect(await store.startAttempt({ ...second, runId: rec2.runId }, event(rec2.runId, 'STEP_START', 'extract'), state)).not.toBeNull();
  });

  it('finishAttempt starts and ends a quick attempt in one call; nothing is written once the run ended', async () => {
    const rec = record();
    await store.createRun(rec, plan);
    const state = { status: 'IN_PROGRESS' as const, attempt: 1, worker: 'w1', updatedAt: new Date().toISOString() };
    const start = { event: event(rec.runId, 'STEP_START', 'extract'), state };
    const id = await store.finishAttempt(attemptRef(rec.runId, 'extract', 't1'), { event: event(rec.runId, 'STEP_ATTEMPT_END', 'extract'), state, output: '1', start });
    expect(id).not.toBeNull();
    expect((await store.readEvents(rec.runId)).map((e) => e.event.type)).toEqual(['STEP_START', 'STEP_ATTEMPT_END']);
    await store.setRunStatus(rec.runId, 'CANCELED');
    const late = { event: event(rec.runId, 'STEP_ATTEMPT_END', 'load'), state, output: '2', start: { ...start, event: event(rec.runId, 'STEP_START', 'load') } };
    expect(await store.finishAttempt(attemptRef(rec.runId, 'load', 't2'), late)).toBeNull();
    expect(await redis.hget(runKeys(rec.runId).outputs, 'load')).toBeNull();
    expect((await store.getRun(rec.runId))?.steps.load?.status).toBe('NOT_STARTED');
  });

  it('a finished run keeps its status; a store fenced by a run lease writes only while it holds it', async () => {
    const rec = record();
    await store.createRun(rec, plan);
    await redis.set(runKeys(rec.runId).driver, 'me', 'PX', 60_000);
    const mine = createRunStore(redis, undefined, { driver: 'me' });
    const other = createRunStore(redis, undefined, { driver: 'someone-else' });
    expect(await mine.appendEvent(event(rec.runId, 'RUN_START'))).toBeTruthy();
    await expect(other.appendEvent(event(rec.runId, 'RUN_SUCCESS'))).rejects.toMatchObject({ code: 'RUN_LEASE_LOST' });
    const state = { status: 'SUCCESS' as const, attempt: 1, updatedAt: new Date().toISOString() };
    await expect(other.recordStepEvent(event(rec.runId, 'STEP_SUCCESS', 'extract'), state)).rejects.toMatchObject({ code: 'RUN_LEASE_LOST' });
    await expect(other.setRunStatus(rec.runId, 'CANCELED')).rejects.toMatchObject({ code: 'RUN_LEASE_LOST' });
    expect(await mine.setRunStatus(rec.runId, 'SUCCESS', new Date().toISOString())).toBe(true);
    expect(await mine.setRunStatus(rec.runId, 'CANCELED')).toBe(false);
    expect((await store.getRun(rec.runId))?.record.status).toBe('SUCCESS');
    expect((await store.readEvents(rec.runId)).map((e) => e.event.type)).toEqual(['RUN_START']);
  });


  it('a blocking read wakes on append', async () => {
    const runId = randomUUID();
    const first = await store.appendEvent(event(runId, 'RUN_START'));
    const started = Date.now();
    const waiting = store.readEvents(runId, first, { blockMs: 5000 });
    setTimeout(() => void store.appendEvent(event(runId, 'RUN_SUCCESS')), 200);
    const got = await waiting;
    expect(got.map((e) => e.event.type)).toEqual(['RUN_SUCCESS']);
    expect(Date.now() - started).toBeLessThan(2000);
    // A read that times out returns nothing; two blocked reads do not wait on each other.
    const [a, b] = await Promise.all([
      store.readEvents(runId, got[0]?.id, { blockMs: 150 }),
      store.readEvents(runId, got[0]?.id, { blockMs: 150 }),
    ]);
    expect([a, b]).toEqual([[], []]);
  });

  it('lists runs newest first', async () => {
    const prefix = `list-${randomUUID()}`;
    const listStore = createRunStore(redis, prefix);
    const base = Date.parse('2024-01-01T00:00:00.000Z');
    const recs = [2, 0, 1].map((i) => record({ startedAt: new Date(base + i * 1000).toISOString() }));
    for (const rec of recs) await listStore.createRun(rec, plan);
    const listed = await listStore.listRuns();
    expect(listed.map((r) => r.startedAt)).toEqual([2, 1, 0].map((i) => new Date(base + i * 1000).toISOString()));
    expect(await listStore.listRuns({ limit: 1 })).toEqual([recs[0]]);
    await listStore.close();
  });
});

describe('output store', () => {
  it('round-trips outputs through the run hash (redis kind)', async () => {
    const outputs = createOutputStore(redis, { kind: 'redis', maxBytes: 1024 });
    const runId = randomUUID();
    await outputs.put(runId, 'a', { rows: [1, 2, 3] });
    await outputs.put(runId, 'b', null);
    expect(await outputs.getMany(runId, ['a', 'b'])).toEqual({ a: { rows: [1, 2, 3] }, b: null });
    expect(await outputs.getMany(runId, [])).toEqual({});
    expect(await redis.hget(runKeys(runId).outputs, 'a')).toBe('{"rows":[1,2,3]}');
  });

  it('refuses an output over max_bytes with a helpful message', async () => {
    const outputs = createOutputStore(redis, { kind: 'redis', maxBytes: 8 * 1024 * 1024 });
    const big = 'x'.repeat(Math.round(9.1 * 1024 * 1024));
    const error = await outputs.put(randomUUID(), 'x', big).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(BatonError);
    expect((error as BatonError).code).toBe('OP_OUTPUT_TOO_LARGE');
    expect((error as BatonError).message).toBe(
      'output of step "x" is 9.1 MiB, over the 8 MiB limit of output_storage.redis.max_bytes; ' +
        'use output_storage: { filesystem: { base_dir } } for large outputs',
    );
  });

  it('throws a clear error for a missing output', async () => {
    const outputs = createOutputStore(redis, { kind: 'redis', maxBytes: 1024 });
    const runId = randomUUID();
    await outputs.put(runId, 'a', 1);
    await expect(outputs.getMany(runId, ['a', 'b'])).rejects.toThrow(`no output stored for step "b" of run "${runId}"`);
  });

  describe('filesystem kind', () => {
    let baseDir: string;
    beforeAll(async () => {
      baseDir = await mkdtemp(path.join(os.tmpdir(), 'baton-outputs-'));
    });
    afterAll(async () => {
      await rm(baseDir, { recursive: true, force: true });
    });

    it('writes <baseDir>/<runId>/<stepKey>.<attempt>.json and keeps a reference in Redis', async () => {
      const outputs = createOutputStore(redis, { kind: 'filesystem', baseDir });
      const runId = randomUUID();
      const value = { big: 'y'.repeat(10_000), n: 1 };
      await outputs.put(runId, 'extract', value);
      const file = path.join(baseDir, runId, 'extract.direct.json');
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(value);
      expect(readdirSync(path.dirname(file))).toEqual(['extract.direct.json']); // no temp file left
      expect(JSON.parse((await redis.hget(runKeys(runId).outputs, 'extract')) ?? 'null')).toEqual({ $file: file });
      expect(await outputs.getMany(runId, ['extract'])).toEqual({ extract: value });
    });

    it('keeps odd step keys inside the run directory', async () => {
      const outputs = createOutputStore(redis, { kind: 'filesystem', baseDir });
      const runId = randomUUID();
      await outputs.put(runId, '../escape', 42);
      expect(existsSync(path.join(baseDir, 'escape.direct.json'))).toBe(false);
      expect(await outputs.getMany(runId, ['../escape'])).toEqual({ '../escape': 42 });
    });

    it('reports a deleted output file', async () => {
      const outputs = createOutputStore(redis, { kind: 'filesystem', baseDir });
      const runId = randomUUID();
      await outputs.put(runId, 'a', 1);
      await rm(path.join(baseDir, runId), { recursive: true });
      await expect(outputs.getMany(runId, ['a'])).rejects.toMatchObject({ code: 'STEP_LOST' });
    });
  });
});
