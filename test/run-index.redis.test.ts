import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ExecutionPlan, RunStatus } from '../src/core/types.js';
import { queryRuns } from '../src/distributed/run-index.js';
import { createRunStore, type RunStore } from '../src/distributed/run-store.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';

let server: TestRedis;
let redis: Redis;
let store: RunStore;
const plan: ExecutionPlan = { job: 'j', steps: [] };

beforeAll(async () => {
  server = await startTestRedis();
  redis = new Redis(server.url);
  store = createRunStore(redis, 'idx');
  const at = (ms: number): string => new Date(ms).toISOString();
  const record = (runId: string, ms: number, status: RunStatus, tags: Record<string, string>) => ({
    runId, job: 'j', jobHash: 'h', jobPath: '/j.yaml', status: 'STARTED' as RunStatus, tags, startedAt: at(ms), createdAt: at(ms), runConfig: {}, queue: 'q',
  });
  // Five runs recorded in the same millisecond, and three later ones.
  for (const id of ['a', 'b', 'c', 'd', 'e']) await store.createRun(record(`tie-${id}`, 1_000, 'STARTED', { t: 'x' }), plan);
  for (const [i, id] of ['f', 'g', 'h'].entries()) await store.createRun(record(`late-${id}`, 2_000 + i, 'STARTED', { t: i === 1 ? 'y' : 'x' }), plan);
  await store.setRunStatus('tie-b', 'FAILURE', at(5_000));
  await store.setRunStatus('late-g', 'FAILURE', at(5_000));
});
afterAll(async () => {
  await store?.close();
  redis?.disconnect();
  await server?.close();
});

async function pages(q: Omit<Parameters<typeof queryRuns>[1], 'after'>): Promise<string[]> {
  const seen: string[] = [];
  let after: { createdMs: number; runId: string } | undefined;
  for (;;) {
    const page = await queryRuns(redis, { ...q, ...(after ? { after } : {}) }, 'idx');
    seen.push(...page.runs.map((r) => r.runId));
    const last = page.runs.at(-1);
    if (!page.more || !last) return seen;
    after = last;
  }
}

it('pages through runs created in the same millisecond, each once, newest first then by id', async () => {
  expect(await pages({ limit: 2 })).toEqual(['late-h', 'late-g', 'late-f', 'tie-e', 'tie-d', 'tie-c', 'tie-b', 'tie-a']);
  expect(await pages({ limit: 3, tags: { t: 'x' } })).toEqual(['late-h', 'late-f', 'tie-e', 'tie-d', 'tie-c', 'tie-b', 'tie-a']);
});

it('filters by status sets (any of them), tags and createdAt bounds, moving runs between status sets', async () => {
  expect(await pages({ limit: 1, statuses: ['FAILURE'] })).toEqual(['late-g', 'tie-b']);
  expect(await pages({ limit: 10, statuses: ['FAILURE', 'SUCCESS'], tags: { t: 'x' } })).toEqual(['tie-b']);
  expect(await pages({ limit: 10, statuses: ['STARTED'] })).toEqual(['late-h', 'late-f', 'tie-e', 'tie-d', 'tie-c', 'tie-a']);
  expect(await pages({ limit: 2, createdBeforeMs: 2_001 })).toEqual(['late-f', 'tie-e', 'tie-d', 'tie-c', 'tie-b', 'tie-a']);
  expect(await pages({ limit: 2, createdAfterMs: 1_000 })).toEqual(['late-h', 'late-g', 'late-f']);
  expect(await pages({ limit: 2, job: 'other' })).toEqual([]);
});
