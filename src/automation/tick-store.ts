/**
 * Where schedules and sensors keep their state: on/off as set by operators (not the file), a
 * cursor, a lease while one process evaluates, tick history, and (sensors) the run keys already
 * claimed. One interface, two adapters: Redis (src/distributed/schedule-store.ts, shared by every
 * serve) and files under a local instance's storage directory (local-tick-store.ts, for
 * `coordinator ui` without Redis). Schedules and sensors each get their own store.
 *
 * Glossary: an *automation* is a schedule or a sensor, named by its id `<job>/<name>`; a *tick*
 * is one evaluation of it (schedules: one cron time; sensors: one interval).
 */
export type AutomationKind = 'schedules' | 'sensors';

export type TickStatus = 'STARTED' | 'SUCCESS' | 'SKIPPED' | 'FAILURE';

export interface TickRecord {
  /** `job/name` (the field keeps its first name, `schedule`, for sensors too). */
  schedule: string;
  /** ISO-8601 (UTC) of the tick. */
  tickTime: string;
  status: TickStatus;
  runIds: string[];
  /** Sensors: the run keys of the runs this tick made. */
  runKeys?: string[];
  /** SKIPPED: why. */
  reason?: string;
  /** FAILURE: what went wrong. */
  error?: string;
  /** Sensors: the cursor the evaluation returned (saved once the tick's runs are recorded). */
  cursor?: string;
  /** ISO-8601 of the last change. */
  at: string;
  /** ISO-8601 of the evaluation that claimed it (ticks caught up together share it). */
  evaluatedAt: string;
  /** The process that claimed it. */
  by: string;
}

/** Tick records kept per automation, and how long a tick is kept. */
export const TICK_RETENTION = { count: 200, ttlSeconds: 7 * 24 * 3600 } as const;

/** A run key as claimed: the run it makes, and whether that run was launched. */
export interface RunKeyClaim {
  runId: string;
  launched: boolean;
  /** Epoch ms of the claim. */
  at: number;
}

export interface TickStore {
  /** The status set by an operator, if any. */
  statusOf(id: string): Promise<'running' | 'stopped' | undefined>;
  /** With `cursorOnStart`, starting also sets the cursor (schedules: evaluate from now on, no catch-up). */
  setStatus(id: string, status: 'running' | 'stopped', cursorOnStart?: number | string): Promise<void>;
  cursor(id: string): Promise<string | undefined>;
  setCursor(id: string, value: number | string): Promise<void>;
  /** One process evaluates an automation at a time (a lease; tick claims stay the guarantee). */
  lock(id: string, holder: string, ms: number): Promise<boolean>;
  unlock(id: string, holder: string): Promise<void>;
  /** Claims the tick: true for exactly one caller per (automation, tick time). */
  claim(r: TickRecord): Promise<boolean>;
  /** Rewrites a claimed tick. */
  update(r: TickRecord): Promise<boolean>;
  /** Newest first. */
  ticks(id: string, limit?: number): Promise<TickRecord[]>;
  /** Claims a run key for `runId` at `atMs`: undefined when this call claimed it, else the claim that was there. */
  claimRunKey(id: string, runKey: string, runId: string, atMs: number): Promise<RunKeyClaim | undefined>;
  /** The run key's run was launched; it becomes the automation's last run key. */
  markRunKeyLaunched(id: string, runKey: string, runId: string): Promise<void>;
  lastRunKey(id: string): Promise<string | undefined>;
}

/** The stores of one instance: one for schedules, one for sensors. */
export interface AutomationStores {
  schedules: TickStore;
  sensors: TickStore;
  close(): Promise<void>;
}
