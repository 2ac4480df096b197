/**
 * Indexes across runs (keys in `keys.ts`, hash tag `{runs}`): per status, per job, per tag, by
 * createdAt, so listing runs with filters reads about one page, never every record. Written by a
 * second, idempotent call after the run's own keys (Redis Cluster: no command spans two tags);
 * `repairRunIndex` adds runs the indexes miss (recorded before they existed, or a write lost).
 */
import type { Redis } from 'ioredis';
import { RUN_STATUSES } from '../core/status.js';
import type { RunStatus, Tags } from '../core/types.js';
import { DEFAULT_PREFIX, runIndexKeys, runKeys, runsIndexKey } from './keys.js';
import { scriptCommand } from './lua-loader.js';

/** About how many status changes the changes stream keeps. */
const CHANGES_KEPT = 10_000;

export interface IndexedRun {
  runId: string;
  job: string;
  tags: Tags;
  status: RunStatus;
  createdMs: number;
}

interface Meta {
  job: string;
  tags: Tags;
  status: RunStatus;
  createdMs: number;
}

/** Adds a new run to every index and notes it in the changes stream. */
export async function indexRun(redis: Redis, run: IndexedRun, prefix: string = DEFAULT_PREFIX): Promise<void> {
  const k = runIndexKeys(prefix);
  const meta: Meta = { job: run.job, tags: run.tags, status: run.status, createdMs: run.createdMs };
  const multi = redis
    .multi()
    .zadd(k.created, run.createdMs, run.runId)
    .zadd(k.status(run.status), run.createdMs, run.runId)
    .zadd(k.job(run.job), run.createdMs, run.runId);
  for (const [key, value] of Object.entries(run.tags)) multi.zadd(k.tag(key, value), run.createdMs, run.runId);
  multi.hset(k.meta, run.runId, JSON.stringify(meta));
  multi.xadd(k.changes, 'MAXLEN', '~', CHANGES_KEPT, '*', 'runId', run.runId, 'job', run.job, 'status', run.status, 'at', new Date().toISOString());
  await multi.exec();
}

/** Moves an indexed run to `status`; false when the run is not indexed. */
export async function indexRunStatus(redis: Redis, runId: string, status: RunStatus, prefix: string = DEFAULT_PREFIX): Promise<boolean> {
  const k = runIndexKeys(prefix);
  const statusKeys = RUN_STATUSES.map((s) => k.status(s));
  const at = RUN_STATUSES.indexOf(status) + 3;
  const moved = await scriptCommand(redis, 'index-run-status-8')(k.meta, k.changes, ...statusKeys, runId, status, at, new Date().toISOString(), CHANGES_KEPT);
  return moved === 1;
}

/** Removes a run from every index. */
export async function unindexRun(redis: Redis, runId: string, prefix: string = DEFAULT_PREFIX): Promise<void> {
  const k = runIndexKeys(prefix);
  const json = await redis.hget(k.meta, runId);
  const multi = redis.multi().zrem(k.created, runId).hdel(k.meta, runId);
  for (const s of RUN_STATUSES) multi.zrem(k.status(s), runId);
  if (json) {
    const meta = JSON.parse(json) as Meta;
    multi.zrem(k.job(meta.job), runId);
    for (const [key, value] of Object.entries(meta.tags)) multi.zrem(k.tag(key, value), runId);
  }
  await multi.exec();
}

export interface RunQuery {
  statuses?: readonly RunStatus[];
  job?: string;
  tags?: Tags;
  /** Exclusive bounds on createdAt, epoch ms. */
  createdAfterMs?: number;
  createdBeforeMs?: number;
  /** Continue after this run (its createdAt ms and id). */
  after?: { createdMs: number; runId: string };
  limit: number;
}

/** One page of run ids, newest first, and whether another page follows. */
export async function queryRuns(
  redis: Redis,
  q: RunQuery,
  prefix: string = DEFAULT_PREFIX,
): Promise<{ runs: Array<{ runId: string; createdMs: number }>; more: boolean }> {
  const k = runIndexKeys(prefix);
  const statusKeys = (q.statuses ?? []).map((s) => k.status(s));
  const andKeys = [
    ...(q.job !== undefined ? [k.job(q.job)] : []),
    ...Object.entries(q.tags ?? {}).map(([key, value]) => k.tag(key, value)),
  ];
  let max = '+inf';
  if (q.after) max = String(q.after.createdMs);
  if (q.createdBeforeMs !== undefined && (q.after === undefined || q.createdBeforeMs <= q.after.createdMs)) max = `(${q.createdBeforeMs}`;
  const min = q.createdAfterMs !== undefined ? `(${q.createdAfterMs}` : '-inf';
  const keys = [k.created, ...statusKeys, ...andKeys];
  const args = [statusKeys.length, q.limit, max, min, q.after?.runId ?? '', q.after?.createdMs ?? 0];
  const flat = (await scriptCommand(redis, 'query-runs-n')(keys.length, ...keys, ...args)) as string[];
  const runs: Array<{ runId: string; createdMs: number }> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) runs.push({ runId: flat[i] as string, createdMs: Number(flat[i + 1]) });
  const more = runs.length > q.limit;
  return { runs: runs.slice(0, q.limit), more };
}

/**
 * Indexes the runs in `<prefix>:runs` that the indexes miss (runs recorded before the indexes
 * existed, or whose index write was lost). Cheap when nothing is missing: two ZCARDs.
 */
export async function repairRunIndex(redis: Redis, prefix: string = DEFAULT_PREFIX): Promise<number> {
  const k = runIndexKeys(prefix);
  const [all, indexed] = await Promise.all([redis.zcard(runsIndexKey(prefix)), redis.zcard(k.created)]);
  if (indexed >= all) return 0;
  const ids = await redis.zrange(runsIndexKey(prefix), 0, -1);
  let added = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const scores = await redis.zmscore(k.created, ...chunk);
    for (const [j, id] of chunk.entries()) {
      if (scores[j] !== null) continue;
      const h = await redis.hgetall(runKeys(id, prefix).record);
      if (!h.runId) {
        await redis.zrem(runsIndexKey(prefix), id); // expired: nothing to index
        continue;
      }
      const createdMs = Date.parse(h.createdAt ?? h.startedAt ?? '');
      await indexRun(
        redis,
        {
          runId: id,
          job: h.job ?? '',
          tags: JSON.parse(h.tags ?? '{}') as Tags,
          status: (h.status ?? 'STARTED') as RunStatus,
          createdMs: Number.isNaN(createdMs) ? Date.now() : createdMs,
        },
        prefix,
      );
      added++;
    }
  }
  return added;
}
