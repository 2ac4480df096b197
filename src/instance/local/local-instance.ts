/** The local instance: runs, events and outputs as files under a directory; local executors only; no Redis. */
import { hostname } from 'node:os';
import path from 'node:path';
import { isFinalRunEvent, isTerminalRunStatus, TERMINAL_STEP_STATUSES } from '../../core/status.js';
import type { JsonObject, RunEvent, RunStatus } from '../../core/types.js';
import { BatonError, InputError } from '../../errors.js';
import { distributedSection } from '../../distributed/recorded-config.js';
import { createInstance, type InstanceBackend } from '../create-instance.js';
import type { StoredRunView } from '../storage.js';
import type { Instance } from '../types.js';
import { readJson, writeJsonAtomically } from './files.js';
import { openLocalStorage, type LocalStorage } from './local-storage.js';

/** How often the driving process looks for a cancel requested by another process. */
const CANCEL_POLL_MS = 250;
/** How long a cancel waits for the driving process to confirm. */
const CANCEL_WAIT_MS = 60_000;

const needsRedis = (what: string): BatonError =>
  new BatonError('NEEDS_REDIS', `${what} needs a Redis instance (openInstance({ redis }) or --redis URL); this instance is local`);

interface DriverFile {
  pid: number;
  host: string;
}

export async function openLocalInstance(dir: string): Promise<Instance> {
  const storage = await openLocalStorage(dir);
  const driverFile = (runId: string): string => path.join(dir, 'runs', runId, 'driver.json');

  const backend: InstanceBackend = {
    kind: 'local',
    storage,
    where: `${dir} (check --storage or $BATON_HOME, and the run id)`,

    runConfigFor(raw: JsonObject) {
      if (distributedSection(raw) !== undefined) {
        throw new InputError('RUN_CONFIG_INVALID', [
          {
            path: 'execution.config.distributed',
            message: 'a local instance cannot launch a distributed run',
            hint: 'open the instance with a Redis URL (openInstance({ redis }) or --redis URL), or choose in_process or multiprocess',
          },
        ]);
      }
      return raw;
    },

    launchDistributed() {
      return Promise.reject(needsRedis('a distributed run'));
    },

    driveHere: localDriver(storage),

    async cancelElsewhere(run) {
      const driver = await readJson<DriverFile>(driverFile(run.row.runId));
      if (driver && driverAlive(driver)) return { status: await askDriver(storage, run.row.runId), by: 'coordinator' };
      await cancelOrphan(storage, run);
      return { status: 'CANCELED', by: 'this-call' };
    },

    resume() {
      return Promise.reject(
        new BatonError('RUN_NOT_RESUMABLE', 'a local run ends with the process that drives it and cannot be resumed; re-execute it instead (reexecuteRun)'),
      );
    },

    reexecuteDistributed() {
      return undefined;
    },

    async deleteRunData() {},

    limits: {
      list: async () => [],
      set: () => Promise.reject(needsRedis('concurrency limits shared by every run')),
      delete: () => Promise.reject(needsRedis('concurrency limits shared by every run')),
    },
    workers: { list: async () => [] },
    daemons: { list: async () => [] },
    async queueReasons(runIds) {
      return new Map(runIds.map((id) => [id, 'waiting for a daemon to start it (this storage has no live one)']));
    },
    async close() {},
  };
  return createInstance(backend);
}

/** Marks this process as the run's driver and obeys a cancel another process requests. */
export function localDriver(storage: LocalStorage): InstanceBackend['driveHere'] {
  return async (runId, onCancel) => {
    await writeJsonAtomically(path.join(storage.dir, 'runs', runId, 'driver.json'), { pid: process.pid, host: hostname() } satisfies DriverFile);
    const timer = setInterval(() => {
      if (storage.cancelRequested(runId)) onCancel();
    }, CANCEL_POLL_MS);
    timer.unref();
    return async () => clearInterval(timer);
  };
}

function driverAlive(d: DriverFile): boolean {
  if (d.host !== hostname()) return true; // another machine's process: assume it lives, and ask it
  try {
    process.kill(d.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function askDriver(storage: LocalStorage, runId: string): Promise<RunStatus> {
  await storage.requestCancel(runId);
  const signal = AbortSignal.timeout(CANCEL_WAIT_MS);
  try {
    for await (const e of storage.watchEvents(runId, undefined, signal)) if (isFinalRunEvent(e)) break;
  } catch (e) {
    if (!signal.aborted) throw e;
  }
  const status = (await storage.getRun(runId))?.row.status ?? 'CANCELED';
  if (!isTerminalRunStatus(status)) {
    throw new BatonError('RUN_BUSY', `asked the process driving run "${runId}" to cancel it; it has not confirmed within ${CANCEL_WAIT_MS / 1000}s`);
  }
  return status;
}

/** The run's process died: record the run as canceled. */
async function cancelOrphan(storage: LocalStorage, run: StoredRunView): Promise<void> {
  const now = new Date().toISOString();
  const runId = run.row.runId;
  const event = (e: Omit<RunEvent, 'timestamp' | 'runId'>): RunEvent => ({ timestamp: now, runId, ...e });
  await storage.recordEvent(event({ type: 'RUN_CANCELING', message: 'cancel requested; the process driving the run is gone' }));
  for (const [stepKey, s] of Object.entries(run.steps)) {
    if (!TERMINAL_STEP_STATUSES.has(s.status)) {
      await storage.recordEvent(event({ type: 'STEP_CANCELED', stepKey, attempt: s.attempt, message: 'run canceled (no driving process)' }));
    }
  }
  await storage.setRunStatus(runId, 'CANCELED', now);
  await storage.recordEvent(event({ type: 'RUN_CANCELED' }));
}
