/**
 * The loop that runs schedules and sensors: in `coordinator serve` over its Redis, and in
 * `coordinator ui` without Redis over the local instance (like `dagster dev`), where it also
 * starts the runs they submit (the embedded run queue). Schedules are
 * evaluated every interval; sensors too, each one at most once per its own interval_seconds
 * (a slow sensor does not hold up the schedules).
 */
import type { Logger } from 'pino';
import type { JobDefinition } from '../core/types.js';
import type { Instance } from '../instance/types.js';
import { createScheduler } from '../distributed/scheduler.js';
import { startQueuedRuns } from './embedded-queue.js';
import { createSensorDaemon } from './sensor-daemon.js';
import type { AutomationStores } from './tick-store.js';

export interface AutomationLoopOptions {
  instance: Instance;
  stores: AutomationStores;
  /** The jobs whose schedules and sensors run, read again before every evaluation. */
  jobs: () => ReadonlyMap<string, JobDefinition> | Promise<ReadonlyMap<string, JobDefinition>>;
  logger: Logger;
  intervalMs: number;
  signal?: AbortSignal;
  /** Also start the instance's QUEUED runs each pass (an instance no `serve` runs the queue of). */
  runQueue?: boolean;
}

export const hasAutomation = (jobs: ReadonlyMap<string, JobDefinition>): boolean =>
  [...jobs.values()].some((j) => (j.schedules?.size ?? 0) > 0 || (j.sensors?.size ?? 0) > 0);

/** Resolves once `signal` aborted and the evaluations under way ended. */
export async function runAutomation(o: AutomationLoopOptions): Promise<void> {
  const current = new Map<string, JobDefinition>();
  const scheduler = createScheduler({ store: o.stores.schedules, instance: o.instance, jobs: current, logger: o.logger });
  const sensors = createSensorDaemon({ store: o.stores.sensors, instance: o.instance, jobs: current, logger: o.logger });
  const sensing = new Set<Promise<void>>();
  while (!o.signal?.aborted) {
    try {
      const jobs = await o.jobs();
      current.clear();
      for (const [name, job] of jobs) current.set(name, job);
    } catch (e) {
      o.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not read the jobs for schedules and sensors');
    }
    const round = sensors.evaluate(); // a sensor still evaluating is passed over, not waited for
    sensing.add(round);
    void round.finally(() => sensing.delete(round));
    await scheduler.evaluate();
    if (o.runQueue) await startQueuedRuns(o.instance, o.logger).catch((e: unknown) => o.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not start queued runs'));
    await sleep(o.intervalMs, o.signal);
  }
  await Promise.all([...sensing]);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
