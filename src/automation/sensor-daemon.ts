/**
 * The sensors daemon inside `coordinator serve` (and `coordinator ui` without Redis): each
 * running sensor of the jobs is evaluated once per interval across every process — the interval
 * is claimed as a tick before the sensor's function runs — and each run it asks for is made at
 * most once per run key, ever: the key is claimed (with the run id fixed by it) before the run is
 * launched, and a key claimed by an evaluation still under way is left to it. The sensor's cursor is saved only after the tick's runs are recorded, so a process
 * that dies mid-tick leaves the cursor where it was and the next evaluation asks again; the keys
 * already launched are passed over. A throwing or timed-out evaluation is a FAILURE tick; the
 * sensor goes on at its next interval.
 */
import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { JobDefinition, JsonObject, SensorDefinition } from '../core/types.js';
import type { Instance } from '../instance/types.js';
import { mergeRunConfig } from '../job/merge.js';
import { evaluateSensor, type SensorEvaluation, type SensorRunRequest } from './sensor-eval.js';
import type { TickRecord, TickStore } from './tick-store.js';
import { submitOnce } from '../distributed/submit-once.js';

export const SENSOR_TAGS = { sensor: 'baton/sensor', runKey: 'baton/run_key' } as const;

export const sensorId = (job: string, s: Pick<SensorDefinition, 'name'>): string => `${job}/${s.name}`;

/** The run id of a run key: the same for every process, so a key is one run even across a crash. */
export function sensorRunId(id: string, runKey: string): string {
  return `sensor-${createHash('sha256').update(`${id}\0${runKey}`).digest('hex').slice(0, 32)}`;
}

/** Makes the run a sensor asked for (QUEUED, once under its id). The one place a sensor launches runs. */
export async function launchSensorRun(instance: Instance, job: JobDefinition, s: SensorDefinition, req: SensorRunRequest, runId: string): Promise<void> {
  // The job's run config (merged by launchRun), then the sensor's, then the request's.
  const runConfig = mergeRunConfig(s.runConfig?.value ?? {}, req.runConfig ?? {}) as JsonObject;
  const tags = { ...s.tags, ...req.tags, [SENSOR_TAGS.sensor]: s.name, [SENSOR_TAGS.runKey]: req.runKey };
  // Submitted QUEUED: the run queue starts it under the run-level limits (decisions: sensors always submit).
  await submitOnce(instance, job, { runId, runConfig, tags, ...(s.selection ? { selection: s.selection } : {}) });
}

/** A run key claimed this long ago and still not launched was left by a process that stopped mid-tick. */
const STALE_CLAIM_MS = 60_000;

export interface SensorDaemonOptions {
  store: TickStore;
  instance: Instance;
  /** The jobs whose sensors run (read at every evaluation). */
  jobs: ReadonlyMap<string, JobDefinition>;
  logger: Logger;
  /** The clock (tests may pass their own). */
  now?: () => number;
}

export interface SensorDaemon {
  /** Evaluates every running sensor whose interval has a tick still unclaimed. Never throws. */
  evaluate(): Promise<void>;
}

/** One evaluation with the stored cursor: nothing launched, nothing recorded (`sensors test`). */
export async function testSensor(store: TickStore, job: JobDefinition, s: SensorDefinition, logger: Logger): Promise<SensorEvaluation & { storedCursor?: string }> {
  const id = sensorId(job.name, s);
  const [cursor, lastRunKey] = await Promise.all([store.cursor(id), store.lastRunKey(id)]);
  const result = await evaluateSensor(s, { cursor, lastRunKey, log: logger.child({ sensor: id }) });
  return { ...result, ...(cursor !== undefined ? { storedCursor: cursor } : {}) };
}

export function createSensorDaemon(o: SensorDaemonOptions): SensorDaemon {
  const { store } = o;
  const holder = `sensors:${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const now = o.now ?? Date.now;
  const inFlight = new Set<string>();

  const save = (t: TickRecord, fields: Partial<TickRecord>): Promise<boolean> => store.update({ ...t, ...fields, at: new Date(now()).toISOString() });

  /** Launches (or passes over) each request; returns what it made and which keys were already launched. */
  const launchAll = async (job: JobDefinition, s: SensorDefinition, id: string, t: TickRecord, runs: SensorRunRequest[]) => {
    const made: Array<{ runId: string; runKey: string }> = [];
    const already: string[] = [];
    const busy: string[] = [];
    const staleMs = s.timeoutSeconds * 1000 + STALE_CLAIM_MS;
    for (const req of runs) {
      const held = await store.claimRunKey(id, req.runKey, sensorRunId(id, req.runKey), now());
      if (held?.launched) {
        already.push(req.runKey);
        continue;
      }
      if (held && now() - held.at < staleMs) {
        busy.push(req.runKey); // another evaluation is launching it now
        continue;
      }
      // Claimed now, or claimed by an evaluation that stopped before launching: launch it under the claimed id.
      const runId = held?.runId ?? sensorRunId(id, req.runKey);
      if (!(await o.instance.getRun(runId))) await launchSensorRun(o.instance, job, s, req, runId);
      await store.markRunKeyLaunched(id, req.runKey, runId);
      made.push({ runId, runKey: req.runKey });
      await save(t, { runIds: made.map((m) => m.runId), runKeys: made.map((m) => m.runKey) });
    }
    return { made, already, busy };
  };

  const evaluateOne = async (job: JobDefinition, s: SensorDefinition, id: string): Promise<void> => {
    const intervalMs = s.intervalSeconds * 1000;
    const at = now();
    const slot = Math.floor(at / intervalMs) * intervalMs;
    const t: TickRecord = { schedule: id, tickTime: new Date(slot).toISOString(), status: 'STARTED', runIds: [], at: new Date(at).toISOString(), evaluatedAt: new Date(at).toISOString(), by: holder };
    // One evaluation per interval: the interval's tick is claimed first. No lease is held while
    // the function runs, so a process stopped mid-tick holds nothing up: the next interval is
    // evaluated as usual, and run keys it claimed but did not launch are launched once stale.
    if (!(await store.claim(t))) return; // this interval was evaluated already
    const log = o.logger.child({ sensor: id });
    await finishAbandoned(id, s, t);
    try {
      const [cursor, lastRunKey] = await Promise.all([store.cursor(id), store.lastRunKey(id)]);
      const result = await evaluateSensor(s, { cursor, lastRunKey, log });
      const { made, already, busy } = await launchAll(job, s, id, t, result.runs);
      if (result.cursor !== undefined) await store.setCursor(id, result.cursor); // only now: the runs are recorded
      const cursorField = result.cursor !== undefined ? { cursor: result.cursor } : {};
      if (made.length > 0) {
        await save(t, { status: 'SUCCESS', runIds: made.map((m) => m.runId), runKeys: made.map((m) => m.runKey), ...cursorField });
        log.info({ runs: made }, 'sensor launched runs');
      } else {
        const why = [
          ...(already.length > 0 ? [`every run key asked for was launched before: ${already.join(', ')}`] : []),
          ...(busy.length > 0 ? [`being launched by another evaluation: ${busy.join(', ')}`] : []),
        ].join('; ');
        await save(t, { status: 'SKIPPED', reason: result.skip ?? (why || 'the sensor asked for no runs'), ...cursorField });
      }
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      const latest = (await store.ticks(id, 1)).find((x) => x.tickTime === t.tickTime);
      await save(latest ?? t, { status: 'FAILURE', error });
      log.warn({ err: error }, 'sensor evaluation failed');
    }
  };

  /** A tick left STARTED by a process that stopped mid-evaluation is recorded as a FAILURE. */
  const finishAbandoned = async (id: string, s: SensorDefinition, current: TickRecord): Promise<void> => {
    const staleBefore = now() - (s.timeoutSeconds * 1000 + STALE_CLAIM_MS);
    for (const old of await store.ticks(id, 5)) {
      if (old.tickTime === current.tickTime || old.status !== 'STARTED' || Date.parse(old.at) > staleBefore) continue;
      await save(old, { status: 'FAILURE', error: `the process evaluating it (${old.by}) stopped before the tick ended` });
    }
  };

  const due = async (job: JobDefinition, s: SensorDefinition): Promise<void> => {
    const id = sensorId(job.name, s);
    if (inFlight.has(id)) return;
    inFlight.add(id);
    try {
      if (((await store.statusOf(id)) ?? s.defaultStatus) !== 'running') return;
      await evaluateOne(job, s, id);
    } catch (e) {
      o.logger.warn({ sensor: id, err: e instanceof Error ? e.message : String(e) }, 'could not evaluate a sensor');
    } finally {
      inFlight.delete(id);
    }
  };

  return {
    async evaluate() {
      const work: Array<Promise<void>> = [];
      for (const job of o.jobs.values()) for (const s of job.sensors?.values() ?? []) work.push(due(job, s));
      await Promise.all(work);
    },
  };
}
