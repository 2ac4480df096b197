/** Run records, step states and the append-only event stream of distributed runs, in Redis. */
import type { Redis } from 'ioredis';
import type {
  ExecutionPlan,
  JsonObject,
  RunEvent,
  RunStatus,
  StepStatus,
} from '../core/types.js';
import { BatonError } from '../errors.js';
import { duplicateRedis } from './connection.js';
import { DEFAULT_PREFIX, runKeys, runsIndexKey } from './keys.js';
import { scriptCommand } from './lua-loader.js';
import { indexRun, indexRunStatus, unindexRun } from './run-index.js';

export interface RunRecord {
  runId: string;
  job: string;
  jobHash: string;
  jobPath: string;
  status: RunStatus;
  tags: Record<string, string>;
  /** ISO-8601 */
  startedAt: string;
  endedAt?: string;
  runConfig: JsonObject;
  queue: string;
  parentRunId?: string;
  /** ISO-8601, when the run was recorded. Absent in records older than the runs API: `startedAt` then. */
  createdAt?: string;
  /** The op selection it was launched with; null or absent: every op. */
  selection?: string[] | null;
}

export interface StepState {
  status: StepStatus;
  attempt: number;
  worker?: string;
  /** ISO-8601 */
  updatedAt: string;
  /** The fencing token of the delivery that owns the attempt (internal: not shown by getRun). */
  token?: string;
  /** Which delivery of the attempt owns it (internal, like `token`). */
  delivery?: number;
  /** The attempt's worker reported its end; the coordinator has not decided yet (internal). */
  done?: boolean;
}

/** One attempt as a worker writes it: every write is fenced by the delivery's token. */
export interface AttemptRef {
  runId: string;
  stepKey: string;
  attempt: number;
  /** The fencing token: the BullMQ lock token of this delivery. */
  token: string;
  /** A re-delivery (its worker died or stalled): it may find the attempt ended, so it writes its start before it runs. */
  takeover: boolean;
  /**
   * Orders the deliveries of one attempt (later is larger): an earlier delivery's start that
   * reaches Redis after a later one's cannot take the attempt back. Unchecked when absent.
   */
  delivery?: number;
}

/** What `finishAttempt` writes besides the end event. */
export interface AttemptEnd {
  event: RunEvent;
  /** The step's state once the attempt is done. */
  state: StepState;
  /** Default true: the attempt ended (no delivery of it may start again). */
  done?: boolean;
  /** The output as stored (JSON, or a file reference); absent when the attempt failed. */
  output?: string;
  /** The attempt's start, when it has not been written yet (a quick first delivery). */
  start?: { event: RunEvent; state: StepState };
}

export interface StoredRun {
  record: RunRecord;
  plan: ExecutionPlan;
  steps: Record<string, StepState>;
}

export interface ReadEventsOptions {
  /** Wait up to this long for events after `afterId` (XREAD BLOCK; 0 waits forever). */
  blockMs?: number;
  count?: number;
}

export interface StoredEvent {
  /** Stream id, usable as `afterId`. */
  id: string;
  event: RunEvent;
}

export interface RunStore {
  /**
   * One MULTI: record, plan, every step NOT_STARTED, and the run in the runs index. Any earlier
   * keys of the same runId (events, outputs too) are dropped: a created run starts empty.
   */
  createRun(record: RunRecord, plan: ExecutionPlan): Promise<void>;
  /** Steps come in plan order. */
  getRun(runId: string): Promise<StoredRun | null>;
  /**
   * Throws RUN_NOT_FOUND for an unknown run, RUN_LEASE_LOST when fenced and the lease is another's.
   * Returns false, changing nothing, when the run has already finished (its status is final).
   */
  setRunStatus(runId: string, status: RunStatus, endedAt?: string, retentionSeconds?: number): Promise<boolean>;
  setStepState(runId: string, stepKey: string, state: StepState): Promise<void>;
  /** Appends an event; returns the stream id. Fenced: throws RUN_LEASE_LOST when the lease is another's. */
  appendEvent(event: RunEvent): Promise<string>;
  /** A step transition: its new state and its event in one call. Returns the stream id. Fenced like appendEvent. */
  recordStepEvent(event: RunEvent, state: StepState): Promise<string>;
  /**
   * A worker's STEP_START with the step IN_PROGRESS under the delivery's token, which takes the
   * attempt over from any earlier delivery; null (nothing written) if the run or the attempt already ended.
   */
  startAttempt(ref: AttemptRef, event: RunEvent, state: StepState): Promise<string | null>;
  /** An event of a running attempt (a log line); null (nothing written) if it no longer owns its step. */
  appendAttemptEvent(ref: AttemptRef, event: RunEvent): Promise<string | null>;
  /**
   * The attempt's output, done state and STEP_ATTEMPT_END, all or nothing; null (nothing written)
   * if it no longer owns its step (another delivery took it over, or the run ended).
   */
  finishAttempt(ref: AttemptRef, end: AttemptEnd): Promise<string | null>;
  /** The id of the stream's newest event; null when it has none. */
  lastEventId(runId: string): Promise<string | null>;
  /** Events after `afterId` (exclusive; from the start when absent), oldest first. */
  readEvents(runId: string, afterId?: string, options?: ReadEventsOptions): Promise<StoredEvent[]>;
  /** Newest first (by start time). Default limit 100. */
  listRuns(options?: { limit?: number }): Promise<RunRecord[]>;
  /** For each run, how many of its steps are in each status. */
  stepCounts(runIds: readonly string[]): Promise<Array<Partial<Record<StepStatus, number>>>>;
  /** Removes every key of the run and its index entry. */
  deleteRun(runId: string): Promise<void>;
  /** Closes the blocking connections the store opened; the connection passed in stays open. */
  close(): Promise<void>;
}

export interface RunStoreOptions {
  /**
   * Connection for blocking reads. Absent: duplicates of `redis` are opened on demand, one per
   * concurrent blocking read (a blocked connection can serve nothing else).
   */
  blockingRedis?: Redis;
  /**
   * The run lease holder this store writes for (a coordinator driving runs): run events, step
   * decisions and run statuses are then written only while it holds the run's lease.
   */
  driver?: string;
}

/** Field of a stream entry that holds the event JSON. */
const EVENT_FIELD = 'e';

const SET_RUN_STATUS = 'set-run-status-6';
const RECORD_STEP_EVENT = 'record-step-event-3';
const APPEND_RUN_EVENT = 'append-run-event-2';
const START_ATTEMPT = 'start-attempt-3';
const APPEND_ATTEMPT_EVENT = 'append-attempt-event-3';
const FINISH_ATTEMPT = 'finish-attempt-4';

export function createRunStore(
  redis: Redis,
  prefix: string = DEFAULT_PREFIX,
  options: RunStoreOptions = {},
): RunStore {
  const idle: Redis[] = options.blockingRedis ? [options.blockingRedis] : [];
  const opened: Redis[] = [];
  let closed = false;

  const takeBlocking = (): Redis => {
    const conn = idle.pop();
    if (conn) return conn;
    // A blocked read must not be cut short by ioredis' per-command retry count.
    const dup = duplicateRedis(redis, { maxRetriesPerRequest: null, connectionName: 'baton-blocking' });
    for (const listener of redis.listeners('error')) dup.on('error', listener as (err: Error) => void);
    opened.push(dup);
    return dup;
  };

  const driver = options.driver ?? '';
  /** A fenced coordinator write's reply: its stream id, or RUN_LEASE_LOST. */
  const fenced = (runId: string, reply: unknown): string => {
    if (reply === 0) throw leaseLost(runId);
    return reply as string;
  };

  /** Through the Lua gateway: EVALSHA, ordered like any plain command. */
  const script = (file: string, keys: string[], args: Array<string | number>): Promise<unknown> => scriptCommand(redis, file)(...keys, ...args);

  return {
    async createRun(record, plan) {
      const keys = runKeys(record.runId, prefix);
      const now = new Date().toISOString();
      const multi = redis.multi().del(keys.record, keys.plan, keys.steps, keys.events, keys.outputs);
      multi.hset(keys.record, encodeRecord(record));
      multi.set(keys.plan, JSON.stringify(plan));
      if (plan.steps.length > 0) {
        const initial: StepState = { status: 'NOT_STARTED', attempt: 0, updatedAt: now };
        const fields = Object.fromEntries(plan.steps.map((s) => [s.key, JSON.stringify(initial)]));
        multi.hset(keys.steps, fields);
      }
      await execMulti(multi);
      // Indexes across runs: each its own call, never in the run's MULTI (Redis Cluster: one hash tag per command).
      await redis.zadd(runsIndexKey(prefix), startScore(record), record.runId);
      const createdMs = Date.parse(record.createdAt ?? record.startedAt);
      const indexed = { runId: record.runId, job: record.job, tags: record.tags, status: record.status };
      await indexRun(redis, { ...indexed, createdMs: Number.isNaN(createdMs) ? Date.now() : createdMs }, prefix);
    },

    async getRun(runId) {
      const keys = runKeys(runId, prefix);
      const results = await redis
        .pipeline()
        .hgetall(keys.record)
        .get(keys.plan)
        .hgetall(keys.steps)
        .exec();
      const [record, plan, steps] = unwrap(results) as [Record<string, string>, string | null, Record<string, string>];
      if (Object.keys(record).length === 0 || plan === null) return null;
      const parsedPlan = JSON.parse(plan) as ExecutionPlan;
      // Hash order is arbitrary: list steps in plan order.
      const stepStates: Record<string, StepState> = {};
      for (const key of [...parsedPlan.steps.map((s) => s.key), ...Object.keys(steps)]) {
        const json = steps[key];
        if (json === undefined || key in stepStates) continue;
        const { token: _token, delivery: _delivery, done: _done, ...state } = JSON.parse(json) as StepState;
        stepStates[key] = state;
      }
      return { record: decodeRecord(record), plan: parsedPlan, steps: stepStates };
    },

    async setRunStatus(runId, status, endedAt, retentionSeconds) {
      const k = runKeys(runId, prefix);
      const keys = [k.record, k.plan, k.steps, k.events, k.outputs, k.driver];
      const found = await script(SET_RUN_STATUS, keys, [status, endedAt ?? '', retentionSeconds ?? 0, driver, new Date().toISOString()]);
      if (found === 0) throw new BatonError('RUN_NOT_FOUND', `run "${runId}" not found`);
      if (found === -2) throw leaseLost(runId);
      if (found !== 1) return false;
      await indexRunStatus(redis, runId, status, prefix);
      return true;
    },

    async setStepState(runId, stepKey, state) {
      await redis.hset(runKeys(runId, prefix).steps, stepKey, JSON.stringify(state));
    },

    async appendEvent(event) {
      const k = runKeys(event.runId, prefix);
      if (!driver) return (await redis.xadd(k.events, '*', EVENT_FIELD, JSON.stringify(event))) as string;
      return fenced(event.runId, await script(APPEND_RUN_EVENT, [k.driver, k.events], [JSON.stringify(event), driver]));
    },

    async recordStepEvent(event, state) {
      if (event.stepKey === undefined) {
        throw new TypeError(`recordStepEvent needs an event with a stepKey (got ${event.type})`);
      }
      const k = runKeys(event.runId, prefix);
      const args = [event.stepKey, JSON.stringify(state), JSON.stringify(event), driver];
      return fenced(event.runId, await script(RECORD_STEP_EVENT, [k.driver, k.steps, k.events], args));
    },

    async startAttempt(ref, event, state) {
      const k = runKeys(ref.runId, prefix);
      const args = [ref.stepKey, JSON.stringify({ ...state, ...fence(ref) }), JSON.stringify(event), ref.attempt, ref.delivery ?? ''];
      return streamId(await script(START_ATTEMPT, [k.record, k.steps, k.events], args));
    },

    async appendAttemptEvent(ref, event) {
      const k = runKeys(ref.runId, prefix);
      return streamId(await script(APPEND_ATTEMPT_EVENT, [k.record, k.steps, k.events], [ref.stepKey, ref.attempt, ref.token, JSON.stringify(event)]));
    },

    async finishAttempt(ref, end) {
      const k = runKeys(ref.runId, prefix);
      const args = [
        ref.stepKey,
        ref.attempt,
        ref.token,
        JSON.stringify(end.event),
        JSON.stringify(end.done === false ? { ...end.state, ...fence(ref) } : { ...end.state, done: true }),
        end.output ?? '',
        end.output === undefined ? '0' : '1',
        end.start ? JSON.stringify(end.start.event) : '',
        end.start ? JSON.stringify({ ...end.start.state, ...fence(ref) }) : '',
        ref.delivery ?? '',
      ];
      return streamId(await script(FINISH_ATTEMPT, [k.record, k.steps, k.events, k.outputs], args));
    },

    async lastEventId(runId) {
      const [newest] = await redis.xrevrange(runKeys(runId, prefix).events, '+', '-', 'COUNT', 1);
      return newest?.[0] ?? null;
    },

    async readEvents(runId, afterId, opts = {}) {
      const key = runKeys(runId, prefix).events;
      if (opts.blockMs === undefined) {
        const start = afterId === undefined ? '-' : `(${afterId}`;
        const entries =
          opts.count === undefined
            ? await redis.xrange(key, start, '+')
            : await redis.xrange(key, start, '+', 'COUNT', opts.count);
        return entries.map(toStoredEvent);
      }
      if (closed) throw new Error('run store is closed');
      const conn = takeBlocking();
      const from = afterId ?? '0-0';
      try {
        const reply =
          opts.count === undefined
            ? await conn.xread('BLOCK', opts.blockMs, 'STREAMS', key, from)
            : await conn.xread('COUNT', opts.count, 'BLOCK', opts.blockMs, 'STREAMS', key, from);
        return reply?.[0]?.[1].map(toStoredEvent) ?? [];
      } finally {
        if (!closed) idle.push(conn);
      }
    },

    async listRuns(opts = {}) {
      const limit = opts.limit ?? 100;
      if (limit <= 0) return [];
      const ids = await redis.zrevrange(runsIndexKey(prefix), 0, limit - 1);
      if (ids.length === 0) return [];
      // One command per run (the runs hash to many slots, so no pipeline on a cluster); sent together.
      const records = await Promise.all(ids.map((id) => redis.hgetall(runKeys(id, prefix).record)));
      // Runs past their retention expired on their own: drop them from the index too.
      const expired = ids.filter((_id, i) => Object.keys(records[i] ?? {}).length === 0);
      if (expired.length > 0) await redis.zrem(runsIndexKey(prefix), ...expired);
      return records.filter((r) => Object.keys(r).length > 0).map(decodeRecord);
    },

    async stepCounts(runIds) {
      if (runIds.length === 0) return [];
      const rows = await Promise.all(runIds.map((id) => redis.hvals(runKeys(id, prefix).steps)));
      return rows.map((values) => {
        const counts: Partial<Record<StepStatus, number>> = {};
        for (const v of values) {
          const status = (JSON.parse(v) as StepState).status;
          counts[status] = (counts[status] ?? 0) + 1;
        }
        return counts;
      });
    },

    async deleteRun(runId) {
      await redis.del(...Object.values(runKeys(runId, prefix)));
      await redis.zrem(runsIndexKey(prefix), runId);
      await unindexRun(redis, runId, prefix);
    },

    async close() {
      closed = true;
      idle.length = 0;
      // disconnect, not QUIT: a QUIT would wait behind a blocked XREAD.
      for (const conn of opened) conn.disconnect();
      opened.length = 0;
    },
  };
}

function streamId(reply: unknown): string | null {
  return reply === 0 ? null : (reply as string);
}

function leaseLost(runId: string): BatonError {
  return new BatonError('RUN_LEASE_LOST', `not written: this process no longer holds the lease on run "${runId}" (another coordinator drives it)`);
}

function startScore(record: RunRecord): number {
  const ms = Date.parse(record.startedAt);
  return Number.isNaN(ms) ? Date.now() : ms;
}

function encodeRecord(record: RunRecord): Record<string, string> {
  const fields: Record<string, string> = {
    runId: record.runId,
    job: record.job,
    jobHash: record.jobHash,
    jobPath: record.jobPath,
    status: record.status,
    tags: JSON.stringify(record.tags),
    startedAt: record.startedAt,
    runConfig: JSON.stringify(record.runConfig),
    queue: record.queue,
  };
  if (record.createdAt !== undefined) fields.createdAt = record.createdAt;
  if (record.selection) fields.selection = JSON.stringify(record.selection);
  if (record.endedAt !== undefined) fields.endedAt = record.endedAt;
  if (record.parentRunId !== undefined) fields.parentRunId = record.parentRunId;
  return fields;
}

export function decodeRecord(h: Record<string, string>): RunRecord {
  const record: RunRecord = {
    runId: h.runId ?? '',
    job: h.job ?? '',
    jobHash: h.jobHash ?? '',
    jobPath: h.jobPath ?? '',
    status: (h.status ?? 'STARTED') as RunStatus,
    tags: JSON.parse(h.tags ?? '{}') as Record<string, string>,
    startedAt: h.startedAt ?? '',
    runConfig: JSON.parse(h.runConfig ?? '{}') as JsonObject,
    queue: h.queue ?? '',
  };
  if (h.endedAt !== undefined) record.endedAt = h.endedAt;
  if (h.parentRunId !== undefined) record.parentRunId = h.parentRunId;
  if (h.createdAt !== undefined) record.createdAt = h.createdAt;
  if (h.selection !== undefined) record.selection = JSON.parse(h.selection) as string[];
  return record;
}

function toStoredEvent([id, fields]: [string, string[]]): StoredEvent {
  const at = fields.indexOf(EVENT_FIELD);
  const json = at >= 0 && at % 2 === 0 ? fields[at + 1] : undefined;
  if (json === undefined) throw new Error(`stream entry ${id} has no "${EVENT_FIELD}" field`);
  return { id, event: JSON.parse(json) as RunEvent };
}

type ExecResult = [error: Error | null, result: unknown][] | null;

/** Results of a pipeline/MULTI, throwing the first command error. */
function unwrap(results: ExecResult): unknown[] {
  if (results === null) throw new Error('Redis transaction was aborted');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

async function execMulti(multi: { exec(): Promise<ExecResult> }): Promise<unknown[]> {
  return unwrap(await multi.exec());
}

/** The run, or RUN_NOT_FOUND saying where to look. */
export async function requireRun(store: RunStore, runId: string): Promise<StoredRun> {
  const run = await store.getRun(runId);
  if (!run) throw new BatonError('RUN_NOT_FOUND', `no run "${runId}" in this Redis (check --redis and the run id)`);
  return run;
}

/** What a step's state records of the delivery that owns it. */
function fence(ref: AttemptRef): { token: string; delivery?: number } {
  return { token: ref.token, ...(ref.delivery === undefined ? {} : { delivery: ref.delivery }) };
}
