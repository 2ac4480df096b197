/**
 * Run storage in the shared Redis: the run store every coordinator and worker writes, the runs
 * indexes for filtered pages, and one stream hub (one blocking connection) for every watcher.
 */
import type { Redis } from 'ioredis';
import { isFinalRunEvent, isTerminalRunStatus, STEP_STATUS_OF_EVENT } from '../../core/status.js';
import type { Json, RunEvent, RunStatus } from '../../core/types.js';
import { BatonError } from '../../errors.js';
import { DEFAULT_PREFIX, runIndexKeys, runKeys, runsIndexKey } from '../../distributed/keys.js';
import { DISTRIBUTED_DEFAULTS } from '../../distributed/options.js';
import { distributedSection } from '../../distributed/recorded-config.js';
import { createOutputStore } from '../../distributed/output-store.js';
import { queryRuns, repairRunIndex, unindexRun } from '../../distributed/run-index.js';
import { createRunStore, decodeRecord as decode, type RunRecord } from '../../distributed/run-store.js';
import { createStreamHub, type StreamEntry, type StreamHub } from '../../distributed/stream-hub.js';
import { boundMs, decodeRunCursor, DEFAULT_PAGE, encodeRunCursor, type RunRow, type RunStorage } from '../storage.js';
import type { InstanceEvent, RunChange } from '../types.js';

/** How often getRuns checks that every recorded run is indexed. */
const REPAIR_EVERY_MS = 30_000;
/** After a run's last event, how long a watcher waits for its record to say it ended (the driver's next write). */
const SETTLE_WAIT_MS = 10_000;

export interface RedisStorage extends RunStorage {
  readonly hub: StreamHub;
}

export function createRedisStorage(redis: Redis, prefix: string = DEFAULT_PREFIX): RedisStorage {
  const store = createRunStore(redis, prefix);
  const hub = createStreamHub(redis);
  const outputs = createOutputStore(redis, { kind: 'redis', maxBytes: Number.MAX_SAFE_INTEGER }, prefix);
  let repairedAt = 0;
  // One wait per run, however many of its watchers saw the last event.
  const settling = new Map<string, Promise<void>>();
  const settled = (runId: string): Promise<void> => {
    let wait = settling.get(runId);
    if (!wait) {
      wait = (async () => {
        const deadline = Date.now() + SETTLE_WAIT_MS;
        while (Date.now() < deadline) {
          const status = (await redis.hget(runKeys(runId, prefix).record, 'status')) as RunStatus | null;
          if (status === null || isTerminalRunStatus(status)) return;
          await new Promise((r) => setTimeout(r, 10));
        }
      })().finally(() => settling.delete(runId));
      settling.set(runId, wait);
    }
    return wait;
  };

  const toEvent = ([id, fields]: StreamEntry): InstanceEvent => {
    const at = fields.indexOf('e');
    return { ...(JSON.parse(fields[at + 1] ?? '{}') as RunEvent), cursor: id };
  };

  const storage: RedisStorage = {
    hub,

    async createRun(row, plan) {
      if ((await redis.exists(runKeys(row.runId, prefix).record)) === 1) {
        throw new BatonError('RUN_BUSY', `run id "${row.runId}" is already taken by another run`);
      }
      await store.createRun(toRecord(row), plan);
    },

    async recordEvent(event) {
      const status = STEP_STATUS_OF_EVENT[event.type];
      if (event.stepKey === undefined || status === undefined) return store.appendEvent(event);
      const state = { status, attempt: event.attempt ?? 0, updatedAt: event.timestamp, ...(event.worker ? { worker: event.worker } : {}) };
      return store.recordStepEvent(event, state);
    },

    async setRunStatus(runId, status, endedAt) {
      await store.setRunStatus(runId, status, endedAt);
    },

    async annotateRun(runId, fields) {
      if (fields.selection) await redis.hset(runKeys(runId, prefix).record, 'selection', JSON.stringify(fields.selection));
    },

    async saveOutputs(runId, values) {
      for (const [stepKey, value] of Object.entries(values)) await outputs.put(runId, stepKey, value);
    },

    async getOutputs(runId, stepKeys) {
      const present = await redis.hmget(runKeys(runId, prefix).outputs, ...stepKeys);
      const keys = stepKeys.filter((_k, i) => present[i] !== null);
      return keys.length > 0 ? ((await outputs.getMany(runId, keys)) as Record<string, Json>) : {};
    },

    async getRun(runId) {
      const run = await store.getRun(runId);
      return run ? { row: toRow(run.record), plan: run.plan, steps: run.steps } : null;
    },

    async getRuns(filter) {
      if (Date.now() - repairedAt > REPAIR_EVERY_MS) {
        repairedAt = Date.now();
        await repairRunIndex(redis, prefix);
      }
      const limit = filter.limit ?? DEFAULT_PAGE;
      const after = decodeRunCursor(filter.cursor);
      const createdAfterMs = boundMs(filter.createdAfter);
      const createdBeforeMs = boundMs(filter.createdBefore);
      const page = await queryRuns(
        redis,
        {
          limit,
          ...(filter.statuses?.length ? { statuses: filter.statuses } : {}),
          ...(filter.job !== undefined ? { job: filter.job } : {}),
          ...(filter.tags ? { tags: filter.tags } : {}),
          ...(createdAfterMs !== undefined ? { createdAfterMs } : {}),
          ...(createdBeforeMs !== undefined ? { createdBeforeMs } : {}),
          ...(after ? { after } : {}),
        },
        prefix,
      );
      // One command per run (the runs hash to many slots, so no pipeline on a cluster); sent together.
      const results = await Promise.all(
        page.runs.map((r) =>
          redis.hgetall(runKeys(r.runId, prefix).record).then(
            (h): [Error | null, unknown] => [null, h],
            (e: unknown): [Error | null, unknown] => [e instanceof Error ? e : new Error(String(e)), {}],
          ),
        ),
      );
      const rows: RunRow[] = [];
      for (const [i, [err, h]] of results.entries()) {
        const fields = h as Record<string, string>;
        const ran = page.runs[i] as { runId: string };
        // A run past its retention expired on its own: drop it from the indexes too.
        if (err || !fields.runId) {
          await unindexRun(redis, ran.runId, prefix);
          await redis.zrem(runsIndexKey(prefix), ran.runId);
        }
        else rows.push(toRow(decode(fields)));
      }
      const last = page.runs.at(-1);
      return { rows, cursor: page.more && last ? encodeRunCursor(last.createdMs, last.runId) : null };
    },

    stepCounts: (runIds) => store.stepCounts(runIds),

    async getEvents(runId, after, limit) {
      const events = await store.readEvents(runId, after, limit !== undefined ? { count: limit } : {});
      return events.map(({ id, event }) => ({ ...event, cursor: id }));
    },

    async *watchEvents(runId, after, signal) {
      const status = (await redis.hget(runKeys(runId, prefix).record, 'status')) as RunStatus | null;
      if (status === null) throw new BatonError('RUN_NOT_FOUND', `no run "${runId}" in this Redis`);
      if (isTerminalRunStatus(status)) {
        // Ended: what is stored is all there will be.
        let cursor = after;
        for (;;) {
          const page = await storage.getEvents(runId, cursor, 1000);
          if (page.length === 0) return;
          for (const e of page) yield e;
          cursor = page.at(-1)?.cursor;
        }
      }
      for await (const entry of hub.follow(runKeys(runId, prefix).events, after ?? '0-0', signal)) {
        const event = toEvent(entry);
        if (isFinalRunEvent(event)) {
          // A coordinator appends the last event, then sets the status: a watcher that ends
          // finds the run ended.
          await settled(runId);
          yield event;
          return;
        }
        yield event;
      }
    },

    async *watchRuns(signal) {
      const key = runIndexKeys(prefix).changes;
      for await (const [, fields] of hub.follow(key, await hub.lastId(key), signal)) {
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
        yield { runId: f.runId ?? '', job: f.job ?? '', status: (f.status ?? 'STARTED') as RunStatus, at: f.at ?? '' } satisfies RunChange;
      }
    },

    deleteRun: (runId) => store.deleteRun(runId),

    async close() {
      await hub.close();
      await store.close();
    },
  };
  return storage;
}

function toRow(r: RunRecord): RunRow {
  return {
    runId: r.runId,
    job: r.job,
    jobHash: r.jobHash,
    jobPath: r.jobPath,
    status: r.status,
    tags: r.tags,
    selection: r.selection ?? null,
    ...(r.parentRunId ? { parentRunId: r.parentRunId } : {}),
    createdAt: r.createdAt ?? r.startedAt,
    ...(r.startedAt && r.status !== 'QUEUED' ? { startedAt: r.startedAt } : {}),
    ...(r.endedAt ? { endedAt: r.endedAt } : {}),
    runConfig: r.runConfig,
  };
}

function toRecord(row: RunRow): RunRecord {
  return {
    runId: row.runId,
    job: row.job,
    jobHash: row.jobHash,
    jobPath: row.jobPath,
    status: row.status,
    tags: row.tags,
    startedAt: row.startedAt ?? row.createdAt,
    createdAt: row.createdAt,
    selection: row.selection,
    runConfig: row.runConfig,
    // A submitted distributed run's steps go to the queue its run config names (a cancel looks
    // there); a local run's steps go to no queue, and a cancel finds nothing in the default one.
    queue: queueOf(row.runConfig),
    ...(row.parentRunId ? { parentRunId: row.parentRunId } : {}),
    ...(row.endedAt ? { endedAt: row.endedAt } : {}),
  };
}

function queueOf(runConfig: RunRow['runConfig']): string {
  const queue = distributedSection(runConfig)?.queue;
  return typeof queue === 'string' && queue.length > 0 ? queue : DISTRIBUTED_DEFAULTS.queue;
}
