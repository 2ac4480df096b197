/**
 * The run queue in Redis (keys: keys.ts, all under `{runqueue}`). A submitted run is recorded
 * QUEUED under its own `{run:ID}` keys and entered here; `serve` takes runs with one atomic claim
 * (claim-queued-runs-4.lua) that applies the run-level limits, and starts them. A taken run stays
 * "active" until its record shows it ended: `reconcileQueue` (every serve pass) lets go of ended
 * runs, returns runs whose claiming serve died before starting them, and enters QUEUED runs whose
 * submitter died between recording and entering them. A claimed run that started and then lost
 * its serve is an orphan like any other: serve's orphan adoption finishes it.
 */
import type { Redis } from 'ioredis';
import { isTerminalRunStatus } from '../core/status.js';
import {
  EMPTY_RUN_QUEUE_CONFIG,
  priorityOf,
  queueMember,
  runIdOfMember,
  type ActiveEntry,
  type QueuedEntry,
  type RunQueueConfig,
} from '../core/run-queue.js';
import type { RunStatus, Tags } from '../core/types.js';
import { BatonError } from '../errors.js';
import { DEFAULT_PREFIX, runKeys, runQueueKeys } from './keys.js';
import { scriptCommand } from './lua-loader.js';
import { queryRuns } from './run-index.js';
import { assertLimit, formatLimitSpec, parseLimitSpec } from './semaphore/limits-admin.js';

const CLAIM = 'claim-queued-runs-4';
const ENQUEUE = 'enqueue-run-3';
/** How many queued runs one claim looks at, at most. */
const CLAIM_SCAN = 1000;

export interface QueueRun {
  runId: string;
  job: string;
  tags: Tags;
  /** Epoch ms of submission: the FIFO order among equal priorities. */
  submittedMs: number;
}

interface StoredEntry {
  job: string;
  tags: Tags;
  member: string;
  submittedAt: string;
}

interface StoredActive {
  job?: string;
  tags: Tags;
  by: string;
  claimedAt: string;
}

/** Enters a recorded QUEUED run in the queue; false (nothing changed) if it is queued or active already. */
export async function enqueueRun(redis: Redis, run: QueueRun, prefix: string = DEFAULT_PREFIX): Promise<boolean> {
  const k = runQueueKeys(prefix);
  const member = queueMember(run.submittedMs, run.runId);
  const entry: StoredEntry = { job: run.job, tags: run.tags, member, submittedAt: new Date(run.submittedMs).toISOString() };
  const added = await scriptCommand(redis, ENQUEUE)(k.queued, k.entries, k.active, run.runId, member, -priorityOf(run.tags), JSON.stringify(entry));
  return added === 1;
}

/** Takes up to `max` runs this caller may start, in queue order, under the limits; atomically across every serve. */
export async function claimQueuedRuns(
  redis: Redis,
  o: { holder: string; max: number; jobs?: readonly string[] },
  prefix: string = DEFAULT_PREFIX,
): Promise<string[]> {
  if (o.max <= 0) return [];
  const k = runQueueKeys(prefix);
  const args = [o.holder, new Date().toISOString(), o.max, JSON.stringify(o.jobs ?? []), CLAIM_SCAN];
  const taken = await scriptCommand(redis, CLAIM)(k.queued, k.entries, k.active, k.config, ...args);
  return (taken as string[]) ?? [];
}

/** The run ended (or could not start): it no longer counts against the limits. */
export async function releaseActive(redis: Redis, runId: string, prefix: string = DEFAULT_PREFIX): Promise<void> {
  await redis.hdel(runQueueKeys(prefix).active, runId);
}

export interface QueueSnapshot {
  config: RunQueueConfig;
  /** In queue order. */
  queued: QueuedEntry[];
  active: Array<ActiveEntry & { by: string; claimedAt: string; job?: string }>;
}

/** The queue as it is now (not atomic with a claim: for explaining and for repairs). */
export async function readQueue(redis: Redis, prefix: string = DEFAULT_PREFIX): Promise<QueueSnapshot> {
  const k = runQueueKeys(prefix);
  const replies = (await redis.multi().zrange(k.queued, 0, -1).hgetall(k.entries).hgetall(k.active).hgetall(k.config).exec()) ?? [];
  const [members, entries, active, config] = replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
  const entryOf = entries as Record<string, string>;
  const queued: QueuedEntry[] = (members as string[]).flatMap((m) => {
    const runId = runIdOfMember(m);
    const e = parse<StoredEntry>(entryOf[runId]);
    return e ? [{ runId, job: e.job, tags: e.tags ?? {} }] : [];
  });
  const activeList = Object.entries(active as Record<string, string>).flatMap(([runId, raw]) => {
    const a = parse<StoredActive>(raw);
    return a ? [{ runId, tags: a.tags ?? {}, by: a.by, claimedAt: a.claimedAt, ...(a.job ? { job: a.job } : {}) }] : [];
  });
  return { config: decodeConfig(config as Record<string, string>), queued, active: activeList };
}

function decodeConfig(hash: Record<string, string>): RunQueueConfig {
  const max = hash.max_concurrent_runs;
  const config: RunQueueConfig = { maxConcurrentRuns: max === undefined ? null : Number(max), tagConcurrencyLimits: [] };
  for (const [field, value] of Object.entries(hash)) {
    if (!field.startsWith('tag:')) continue;
    const spec = parseLimitSpec(field.slice(4));
    config.tagConcurrencyLimits.push({ ...spec, limit: Number(value) });
  }
  return config;
}

export async function getRunQueueConfig(redis: Redis, prefix: string = DEFAULT_PREFIX): Promise<RunQueueConfig> {
  const hash = await redis.hgetall(runQueueKeys(prefix).config);
  return Object.keys(hash).length === 0 ? EMPTY_RUN_QUEUE_CONFIG : decodeConfig(hash);
}

/** The name of the run-count limit in `coordinator limits set --runs`. */
export const MAX_CONCURRENT_RUNS = 'max_concurrent_runs';

/** `max_concurrent_runs` or a run tag limit spec (KEY, KEY=VALUE, KEY=*), as stored. */
function configField(spec: string): string {
  return spec === MAX_CONCURRENT_RUNS ? spec : `tag:${formatLimitSpec(parseLimitSpec(spec))}`;
}

/** Sets `max_concurrent_runs` or a run tag limit; the next claim applies it. */
export async function setRunQueueLimit(redis: Redis, spec: string, limit: number, prefix: string = DEFAULT_PREFIX): Promise<string> {
  assertLimit(limit);
  const field = configField(spec);
  await redis.hset(runQueueKeys(prefix).config, field, String(limit));
  return field.replace(/^tag:/, '');
}

/** Removes it (max_concurrent_runs removed: no cap); false if it was not set. */
export async function deleteRunQueueLimit(redis: Redis, spec: string, prefix: string = DEFAULT_PREFIX): Promise<boolean> {
  return (await redis.hdel(runQueueKeys(prefix).config, configField(spec))) === 1;
}

export interface ReconcileOptions {
  /** Ids of the live daemons: a run claimed by another is not returned to the queue. */
  liveDaemons: ReadonlySet<string>;
  /** A run claimed this long ago and still QUEUED, by a daemon no longer live, goes back to the queue. */
  staleMs: number;
  /** A QUEUED run recorded this long ago and found in neither queue nor active is entered. */
  lostMs: number;
}

/** Idempotent repairs, safe to run from every serve at once (see the header). Returns the runs still active. */
export async function reconcileQueue(redis: Redis, o: ReconcileOptions, prefix: string = DEFAULT_PREFIX): Promise<QueueSnapshot['active']> {
  const k = runQueueKeys(prefix);
  const snapshot = await readQueue(redis, prefix);
  const ids = [...snapshot.active.map((a) => a.runId), ...snapshot.queued.map((q) => q.runId)];
  const statuses = await statusesOf(redis, ids, prefix);
  const now = Date.now();
  const stillActive: QueueSnapshot['active'] = [];
  for (const a of snapshot.active) {
    const status = statuses.get(a.runId);
    if (status === undefined || isTerminalRunStatus(status)) await releaseActive(redis, a.runId, prefix);
    else if (!(status === 'QUEUED' && Date.parse(a.claimedAt) < now - o.staleMs && !o.liveDaemons.has(a.by))) stillActive.push(a);
    else if (status === 'QUEUED' && Date.parse(a.claimedAt) < now - o.staleMs && !o.liveDaemons.has(a.by)) {
      // Its serve took it and died before starting it: back to the queue, in its old place.
      const fields = await redis.hmget(runKeys(a.runId, prefix).record, 'job', 'createdAt');
      await releaseActive(redis, a.runId, prefix);
      await enqueueRun(redis, { runId: a.runId, job: fields[0] ?? a.job ?? '', tags: a.tags, submittedMs: Date.parse(fields[1] ?? '') || now }, prefix);
    }
  }
  for (const q of snapshot.queued) {
    const status = statuses.get(q.runId);
    if (status === undefined || isTerminalRunStatus(status)) {
      const member = (await redis.hget(k.entries, q.runId)) ?? '';
      await redis.multi().hdel(k.entries, q.runId).zrem(k.queued, parse<StoredEntry>(member)?.member ?? '').exec();
    }
  }
  const known = new Set(ids);
  const { runs } = await queryRuns(redis, { statuses: ['QUEUED'], limit: CLAIM_SCAN }, prefix);
  for (const r of runs) {
    if (known.has(r.runId)) continue;
    const fields = await redis.hmget(runKeys(r.runId, prefix).record, 'status', 'job', 'tags', 'createdAt');
    const createdMs = Date.parse(fields[3] ?? '');
    if (fields[0] !== 'QUEUED' || !(createdMs < now - o.lostMs)) continue;
    await enqueueRun(redis, { runId: r.runId, job: fields[1] ?? '', tags: parse<Tags>(fields[2] ?? undefined) ?? {}, submittedMs: createdMs }, prefix);
  }
  return stillActive;
}

async function statusesOf(redis: Redis, runIds: readonly string[], prefix: string): Promise<Map<string, RunStatus>> {
  const found = new Map<string, RunStatus>();
  if (runIds.length === 0) return found;
  const pipeline = redis.pipeline();
  for (const id of runIds) pipeline.hget(runKeys(id, prefix).record, 'status');
  const replies = (await pipeline.exec()) ?? [];
  runIds.forEach((id, i) => {
    const [err, status] = replies[i] ?? [];
    if (err) throw new BatonError('REDIS_UNAVAILABLE', `could not read run "${id}": ${String(err)}`);
    if (typeof status === 'string') found.set(id, status as RunStatus);
  });
  return found;
}

function parse<T>(raw: string | undefined): T | undefined {
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return undefined;
  }
}
