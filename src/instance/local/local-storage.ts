/**
 * Run storage as files under a directory, for the local instance (no Redis):
 *
 *   <dir>/runs/<runId>/run.json       RunRow
 *   <dir>/runs/<runId>/plan.json      ExecutionPlan
 *   <dir>/runs/<runId>/steps.json     stepKey -> StepRow
 *   <dir>/runs/<runId>/events.jsonl   one RunEvent per line; an event's cursor is its line number
 *   <dir>/runs/<runId>/outputs.json   stepKey -> output
 *   <dir>/runs/<runId>/cancel         present: a cancel was requested (the driving process polls it)
 *   <dir>/changes.jsonl               one RunChange per line (watchRuns)
 *
 * One process drives a run and is its only writer; any number of processes read. Watchers in the
 * writing process wake at once; watchers elsewhere notice within a poll interval.
 */
import { EventEmitter } from 'node:events';
import { appendFile, mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { isFinalRunEvent, STEP_STATUS_OF_EVENT } from '../../core/status.js';
import type { ExecutionPlan, Json, RunEvent, StepStatus } from '../../core/types.js';
import { BatonError } from '../../errors.js';
import type { InstanceEvent, RunChange } from '../types.js';
import { boundMs, decodeRunCursor, DEFAULT_PAGE, encodeRunCursor, type RunRow, type RunStorage, type StepRow, type StoredRunView } from '../storage.js';
import { nap, readJson, writeJsonAtomically } from './files.js';

/** How often a watcher looks for writes by another process. */
const POLL_MS = 200;

export interface LocalStorage extends RunStorage {
  readonly dir: string;
  /** Asks the process driving the run to cancel it. */
  requestCancel(runId: string): Promise<void>;
  cancelRequested(runId: string): boolean;
}

export async function openLocalStorage(dir: string): Promise<LocalStorage> {
  const runsDir = path.join(dir, 'runs');
  await mkdir(runsDir, { recursive: true });
  const changesFile = path.join(dir, 'changes.jsonl');
  const wakeups = new EventEmitter();
  wakeups.setMaxListeners(0);
  const runDir = (runId: string): string => {
    if (!/^[A-Za-z0-9_-]{1,100}$/.test(runId)) throw new BatonError('RUN_NOT_FOUND', `no run "${runId}" in ${dir}`);
    return path.join(runsDir, runId);
  };
  const file = (runId: string, name: string): string => path.join(runDir(runId), name);
  // One write at a time per run (step states are read, changed and written back).
  const queues = new Map<string, Promise<unknown>>();
  const serial = <T>(runId: string, work: () => Promise<T>): Promise<T> => {
    const next = (queues.get(runId) ?? Promise.resolve()).then(work, work);
    const settled = next.catch(() => {});
    queues.set(runId, settled);
    void settled.then(() => {
      if (queues.get(runId) === settled) queues.delete(runId);
    });
    return next;
  };
  const eventCounts = new Map<string, number>();
  let closed = false;

  const readRow = (runId: string): Promise<RunRow | undefined> => readJson<RunRow>(file(runId, 'run.json'));
  const noteChange = async (row: RunRow): Promise<void> => {
    const change: RunChange = { runId: row.runId, job: row.job, status: row.status, at: new Date().toISOString() };
    await appendFile(changesFile, `${JSON.stringify(change)}\n`);
    wakeups.emit('runs');
  };

  const readEventLines = async (runId: string): Promise<string[]> => {
    try {
      const text = await readFile(file(runId, 'events.jsonl'), 'utf8');
      const lines = text.split('\n');
      lines.pop(); // the text after the last newline: empty, or a line still being written
      return lines;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  };

  const storage: LocalStorage = {
    dir,

    async createRun(row, plan) {
      const d = runDir(row.runId);
      if (existsSync(path.join(d, 'run.json'))) throw new BatonError('RUN_BUSY', `run id "${row.runId}" is already taken by another run`);
      await mkdir(d, { recursive: true });
      const initial: StepRow = { status: 'NOT_STARTED', attempt: 0, updatedAt: row.createdAt };
      await writeJsonAtomically(path.join(d, 'plan.json'), plan);
      await writeJsonAtomically(path.join(d, 'steps.json'), Object.fromEntries(plan.steps.map((s) => [s.key, initial])));
      await appendFile(path.join(d, 'events.jsonl'), '');
      eventCounts.set(row.runId, 0);
      await writeJsonAtomically(path.join(d, 'run.json'), row);
      await noteChange(row);
    },

    recordEvent(event) {
      return serial(event.runId, async () => {
        const status = STEP_STATUS_OF_EVENT[event.type];
        if (event.stepKey !== undefined && status !== undefined) {
          const stepsFile = file(event.runId, 'steps.json');
          const steps = (await readJson<Record<string, StepRow>>(stepsFile)) ?? {};
          const before = steps[event.stepKey];
          steps[event.stepKey] = {
            status,
            attempt: event.attempt ?? before?.attempt ?? 0,
            updatedAt: event.timestamp,
            ...(event.worker ? { worker: event.worker } : before?.worker && status !== 'IN_PROGRESS' ? { worker: before.worker } : {}),
          };
          await writeJsonAtomically(stepsFile, steps);
        }
        await appendFile(file(event.runId, 'events.jsonl'), `${JSON.stringify(event)}\n`);
        const n = (eventCounts.get(event.runId) ?? (await readEventLines(event.runId)).length - 1) + 1;
        eventCounts.set(event.runId, n);
        wakeups.emit(event.runId);
        return String(n);
      });
    },

    setRunStatus(runId, status, endedAt) {
      return serial(runId, async () => {
        const row = await readRow(runId);
        if (!row) throw new BatonError('RUN_NOT_FOUND', `no run "${runId}" in ${dir}`);
        const next: RunRow = { ...row, status, ...(endedAt ? { endedAt } : {}) };
        if (status === 'STARTED' && !next.startedAt) next.startedAt = new Date().toISOString();
        await writeJsonAtomically(file(runId, 'run.json'), next);
        if (endedAt) eventCounts.delete(runId);
        await noteChange(next);
      });
    },

    annotateRun(runId, fields) {
      return serial(runId, async () => {
        const row = await readRow(runId);
        if (row) await writeJsonAtomically(file(runId, 'run.json'), { ...row, ...fields });
      });
    },

    async saveOutputs(runId, outputs) {
      await serial(runId, () => writeJsonAtomically(file(runId, 'outputs.json'), outputs));
    },

    async getOutputs(runId, stepKeys) {
      const all = (await readJson<Record<string, Json>>(file(runId, 'outputs.json'))) ?? {};
      return Object.fromEntries(stepKeys.filter((k) => k in all).map((k) => [k, all[k] as Json]));
    },

    async getRun(runId) {
      const row = await readRow(runId);
      if (!row) return null;
      const [plan, steps] = await Promise.all([
        readJson<ExecutionPlan>(file(runId, 'plan.json')),
        readJson<Record<string, StepRow>>(file(runId, 'steps.json')),
      ]);
      if (!plan) return null;
      const ordered: Record<string, StepRow> = {};
      for (const s of plan.steps) ordered[s.key] = steps?.[s.key] ?? { status: 'NOT_STARTED', attempt: 0, updatedAt: row.createdAt };
      return { row, plan, steps: ordered } satisfies StoredRunView;
    },

    async getRuns(filter) {
      // A scan of the run files: fine for one person's storage directory (the Redis instance indexes).
      const ids = await readdir(runsDir);
      const rows = (await Promise.all(ids.map((id) => readJson<RunRow>(path.join(runsDir, id, 'run.json')).catch(() => undefined)))).filter(
        (r): r is RunRow => r !== undefined,
      );
      const after = boundMs(filter.createdAfter);
      const before = boundMs(filter.createdBefore);
      const cursor = decodeRunCursor(filter.cursor);
      const statuses = filter.statuses && filter.statuses.length > 0 ? new Set(filter.statuses) : undefined;
      const matching = rows
        .map((r) => ({ r, ms: Date.parse(r.createdAt) }))
        .filter(({ r, ms }) => {
          if (statuses && !statuses.has(r.status)) return false;
          if (filter.job !== undefined && r.job !== filter.job) return false;
          for (const [k, v] of Object.entries(filter.tags ?? {})) if (r.tags[k] !== v) return false;
          if (after !== undefined && ms <= after) return false;
          if (before !== undefined && ms >= before) return false;
          if (cursor && (ms > cursor.createdMs || (ms === cursor.createdMs && r.runId >= cursor.runId))) return false;
          return true;
        })
        .sort((a, b) => b.ms - a.ms || (a.r.runId < b.r.runId ? 1 : a.r.runId > b.r.runId ? -1 : 0));
      const limit = filter.limit ?? DEFAULT_PAGE;
      const page = matching.slice(0, limit);
      const last = page.at(-1);
      return { rows: page.map((p) => p.r), cursor: matching.length > limit && last ? encodeRunCursor(last.ms, last.r.runId) : null };
    },

    async stepCounts(runIds) {
      return Promise.all(
        runIds.map(async (id) => {
          const steps = (await readJson<Record<string, StepRow>>(file(id, 'steps.json'))) ?? {};
          const counts: Partial<Record<StepStatus, number>> = {};
          for (const s of Object.values(steps)) counts[s.status] = (counts[s.status] ?? 0) + 1;
          return counts;
        }),
      );
    },

    async getEvents(runId, after, limit) {
      const lines = await readEventLines(runId);
      const from = after === undefined ? 0 : eventIndex(after);
      const to = limit === undefined ? lines.length : Math.min(lines.length, from + limit);
      const out: InstanceEvent[] = [];
      for (let i = from; i < to; i++) out.push({ ...(JSON.parse(lines[i] as string) as RunEvent), cursor: String(i + 1) });
      return out;
    },

    async *watchEvents(runId, after, signal) {
      let cursor = after;
      while (!signal?.aborted && !closed) {
        const events = await storage.getEvents(runId, cursor, 1000);
        for (const e of events) {
          cursor = e.cursor;
          yield e;
          if (isFinalRunEvent(e)) return;
        }
        if (events.length > 0) continue;
        const row = await readRow(runId);
        if (!row) throw new BatonError('RUN_NOT_FOUND', `no run "${runId}" in ${dir}`);
        if (row.endedAt && (await storage.getEvents(runId, cursor, 1)).length === 0) return;
        await nap(POLL_MS, signal, (wake) => {
          wakeups.once(runId, wake);
          return () => wakeups.off(runId, wake);
        });
      }
    },

    async *watchRuns(signal) {
      let offset = (await stat(changesFile).catch(() => ({ size: 0 }))).size;
      let partial = '';
      while (!signal?.aborted && !closed) {
        const size = (await stat(changesFile).catch(() => ({ size: 0 }))).size;
        if (size > offset) {
          const handle = await open(changesFile, 'r');
          try {
            const buf = Buffer.alloc(size - offset);
            await handle.read(buf, 0, buf.length, offset);
            offset = size;
            const lines = (partial + buf.toString('utf8')).split('\n');
            partial = lines.pop() ?? '';
            for (const line of lines) if (line) yield JSON.parse(line) as RunChange;
          } finally {
            await handle.close();
          }
          continue;
        }
        await nap(POLL_MS, signal, (wake) => {
          wakeups.once('runs', wake);
          return () => wakeups.off('runs', wake);
        });
      }
    },

    async deleteRun(runId) {
      await serial(runId, () => rm(runDir(runId), { recursive: true, force: true }));
      eventCounts.delete(runId);
    },

    async requestCancel(runId) {
      await appendFile(file(runId, 'cancel'), `${new Date().toISOString()}\n`);
    },

    cancelRequested(runId) {
      return existsSync(file(runId, 'cancel'));
    },

    async close() {
      closed = true;
      wakeups.emit('runs');
      for (const runId of wakeups.eventNames()) wakeups.emit(runId);
      await Promise.all([...queues.values()]);
    },
  };
  return storage;
}

function eventIndex(cursor: string): number {
  const n = Number(cursor);
  if (!Number.isInteger(n) || n < 0) throw new BatonError('USAGE', `invalid event cursor "${cursor}": pass a cursor an event or page returned`);
  return n;
}
