/**
 * One test suite for every instance backend (Dagster's storage test suites): the local instance
 * and the Redis instance must behave alike through the public API.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Instance, InstanceEvent, JsonObject } from '../../src/index.js';
import { ROOT } from './cli.js';
import { waitFor } from './distributed.js';

export const DIAMOND = path.join(ROOT, 'test/fixtures/distributed/diamond.yaml');
export const FLOW = path.join(ROOT, 'test/fixtures/instance/flow.yaml');
export const SLEEPY = path.join(ROOT, 'test/fixtures/instance/sleepy.yaml');

export interface SuiteSetup {
  instance(): Instance;
  /** The `execution` part of a run config for this backend (each call may use a fresh queue). */
  execution(): JsonObject;
}

/** Follows a run's events to its last one. */
export async function follow(instance: Instance, runId: string, after?: string): Promise<InstanceEvent[]> {
  const seen: InstanceEvent[] = [];
  for await (const e of instance.watchEvents(runId, after !== undefined ? { after } : {})) seen.push(e);
  return seen;
}

function scratch(): string {
  return mkdtempSync(path.join(tmpdir(), 'baton-instance-'));
}

export function instanceSuite(name: string, setup: SuiteSetup): void {
  const config = (ops: JsonObject = {}): JsonObject => ({ execution: setup.execution(), ops });

  describe(`${name} instance`, () => {
    it('launches a run, records it at once, and streams its events live to the end', async () => {
      const instance = setup.instance();
      const { runId } = await instance.launchRun(DIAMOND, { runConfig: config(), tags: { who: 'suite' } });
      const recorded = await instance.getRun(runId);
      expect(recorded?.job).toBe('diamond');
      const events = await follow(instance, runId);
      expect(events[0]?.type).toBe('RUN_START');
      expect(events.at(-1)?.type).toBe('RUN_SUCCESS');
      expect(events.filter((e) => e.type === 'STEP_SUCCESS').map((e) => e.stepKey).sort()).toEqual(['join', 'left', 'right', 'src']);
      expect(new Set(events.map((e) => e.cursor)).size).toBe(events.length);

      const run = await instance.getRun(runId);
      expect(run).toMatchObject({ runId, job: 'diamond', status: 'SUCCESS', tags: { who: 'suite' }, selection: null, stepCounts: { SUCCESS: 4 } });
      expect(Object.keys(run?.steps ?? {})).toEqual(['src', 'left', 'right', 'join']);
      expect(run?.steps.join).toMatchObject({ status: 'SUCCESS', attempt: 1 });
      expect(Date.parse(run?.createdAt ?? '')).toBeGreaterThan(Date.now() - 120_000);
      expect(run?.endedAt).toBeDefined();

      // Cursors resume exactly after an event, for a page and for a watch alike.
      const mid = events[2] as InstanceEvent;
      const rest = await instance.getEvents(runId, { after: mid.cursor });
      expect(rest.events.map((e) => e.cursor)).toEqual(events.slice(3).map((e) => e.cursor));
      expect(rest.cursor).toBe(events.at(-1)?.cursor);
      expect((await follow(instance, runId, mid.cursor)).map((e) => e.type)).toEqual(events.slice(3).map((e) => e.type));
      const page = await instance.getEvents(runId, { limit: 2 });
      expect(page.events.map((e) => e.cursor)).toEqual(events.slice(0, 2).map((e) => e.cursor));
    });

    it('submits a run QUEUED, says why it waits, and starts it when a daemon asks', async () => {
      const instance = setup.instance();
      await expect(instance.submitRun(DIAMOND, { runConfig: config(), selection: ['nope*'] })).rejects.toMatchObject({ code: 'SELECTION_INVALID' });
      const submitted = await instance.submitRun(DIAMOND, { runConfig: config(), tags: { who: 'queue' } });
      expect(submitted.status).toBe('QUEUED');
      const queued = await instance.getRun(submitted.runId);
      expect(queued).toMatchObject({ status: 'QUEUED', tags: { who: 'queue' }, stepCounts: { NOT_STARTED: 4 } });
      expect(queued?.startedAt).toBeUndefined();
      expect(queued?.queueReason).toEqual(expect.any(String));
      const listed = (await instance.getRuns({ statuses: ['QUEUED'], tags: { who: 'queue' } })).runs;
      expect(listed.map((r) => [r.runId, typeof r.queueReason])).toEqual([[submitted.runId, 'string']]);
      await expect(instance.submitRun(DIAMOND, { runConfig: config(), runId: submitted.runId })).rejects.toMatchObject({ code: 'RUN_BUSY' });

      await instance.startQueuedRun(submitted.runId);
      const events = await follow(instance, submitted.runId);
      expect(events.at(-1)?.type).toBe('RUN_SUCCESS');
      const run = await instance.getRun(submitted.runId);
      expect(run).toMatchObject({ status: 'SUCCESS', stepCounts: { SUCCESS: 4 } });
      expect(run?.queueReason).toBeUndefined();
      expect(Date.parse(run?.startedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(run?.createdAt ?? ''));
      await expect(instance.startQueuedRun(submitted.runId)).rejects.toMatchObject({ code: 'RUN_NOT_RESUMABLE' });
    });

    it('refuses bad input before anything is recorded', async () => {
      const instance = setup.instance();
      const before = (await instance.getRuns({ limit: 1000 })).runs.length;
      await expect(instance.launchRun(DIAMOND, { runConfig: config(), selection: ['nope*'] })).rejects.toMatchObject({ code: 'SELECTION_INVALID' });
      await expect(instance.launchRun(DIAMOND, { runConfig: { ...config(), ops: { ghost: {} } } })).rejects.toMatchObject({ code: 'RUN_CONFIG_INVALID' });
      expect((await instance.getRuns({ limit: 1000 })).runs.length).toBe(before);
    });

    it('lists runs newest first, filtered by status, job and tags, a page at a time', async () => {
      const instance = setup.instance();
      const batch = `b${Date.now()}`;
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const { runId } = await instance.launchRun(DIAMOND, { runConfig: config(), tags: { batch, parity: i % 2 === 0 ? 'even' : 'odd' }, selection: ['src'] });
        ids.push(runId);
        await follow(instance, runId);
      }
      const newestFirst = [...ids].reverse();
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await instance.getRuns({ tags: { batch }, statuses: ['SUCCESS'], job: 'diamond', limit: 2, ...(cursor ? { cursor } : {}) });
        expect(page.runs.length).toBeLessThanOrEqual(2);
        seen.push(...page.runs.map((r) => r.runId));
        cursor = page.cursor ?? undefined;
      } while (cursor);
      expect(seen).toEqual(newestFirst);
      const odd = await instance.getRuns({ tags: { batch, parity: 'odd' } });
      expect(odd.runs.map((r) => r.runId)).toEqual([ids[3], ids[1]]);
      expect(odd.runs[0]).toMatchObject({ selection: ['src'], stepCounts: { SUCCESS: 1 }, tags: { batch, parity: 'odd' } });
      expect((await instance.getRuns({ tags: { batch }, statuses: ['FAILURE', 'STARTED'] })).runs).toEqual([]);
      expect((await instance.getRuns({ tags: { batch }, job: 'flow' })).runs).toEqual([]);
      const firstCreated = Date.parse((await instance.getRun(ids[0] as string))?.createdAt ?? '');
      const after = await instance.getRuns({ tags: { batch }, createdAfter: firstCreated });
      expect(after.runs.map((r) => r.runId)).toEqual(newestFirst.slice(0, 4));
    });

    it('shows a failed step with its error, and re-executes from the failure with the parent outputs', async () => {
      const instance = setup.instance();
      const dir = scratch();
      const ops = { middle: { config: { dir } }, last: { config: { dir } } };
      const { runId } = await instance.launchRun(FLOW, { runConfig: config(ops) });
      expect((await follow(instance, runId)).at(-1)?.type).toBe('RUN_FAILURE');
      const failed = await instance.getRun(runId);
      expect(failed?.status).toBe('FAILURE');
      expect(failed?.steps.middle?.status).toBe('FAILURE');
      expect(failed?.steps.middle?.error?.message).toContain('fails on its first run');
      expect(failed?.steps.last?.status).toBe('SKIPPED');

      const child = await instance.reexecuteRun(runId, { fromFailure: true });
      expect(child.runId).not.toBe(runId);
      expect((await follow(instance, child.runId)).at(-1)?.type).toBe('RUN_SUCCESS');
      const rerun = await instance.getRun(child.runId);
      expect(rerun).toMatchObject({ status: 'SUCCESS', parentRunId: runId, tags: { team: 'data' } });
      expect(Object.keys(rerun?.steps ?? {})).toEqual(['middle', 'last']);
      const ran = readFileSync(path.join(dir, 'ran'), 'utf8').trim().split('\n');
      expect(ran).toEqual([`${runId} middle`, `${child.runId} middle`, `${child.runId} last`]);
    });

    it('cancels a running run; its watchers end with RUN_CANCELED', async () => {
      const instance = setup.instance();
      const dir = scratch();
      const { runId } = await instance.launchRun(SLEEPY, { runConfig: config({ nap: { config: { dir } }, after: { config: { dir } } }) });
      const seen: string[] = [];
      for await (const e of instance.watchEvents(runId)) {
        seen.push(e.type);
        if (e.type === 'STEP_START') {
          const { status } = await instance.cancelRun(runId);
          expect(status).toBe('CANCELED');
        }
      }
      expect(seen.at(-1)).toBe('RUN_CANCELED');
      const run = await instance.getRun(runId);
      expect(run?.status).toBe('CANCELED');
      expect(run?.steps.nap?.status).toBe('CANCELED');
      expect(run?.steps.after?.status).not.toBe('SUCCESS');
    });

    it('streams run status changes and deletes a run', async () => {
      const instance = setup.instance();
      const stop = new AbortController();
      const changes: Array<{ runId: string; status: string }> = [];
      const watching = (async () => {
        for await (const c of instance.watchRuns({ signal: stop.signal })) changes.push(c);
      })();
      const { runId } = await instance.launchRun(DIAMOND, { runConfig: config(), selection: ['src'] });
      await waitFor('the run to end', () => (changes.some((c) => c.runId === runId && c.status === 'SUCCESS') ? true : undefined), 60_000);
      stop.abort();
      await watching;
      await instance.deleteRun(runId);
      expect(await instance.getRun(runId)).toBeNull();
      expect((await instance.getRuns({ limit: 1000 })).runs.map((r) => r.runId)).not.toContain(runId);
    });
  });
}
