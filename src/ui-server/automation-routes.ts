/**
 * The UI's API for schedules and sensors (a public contract): the ones declared by the catalog's
 * jobs, with their status, cursor and recent ticks from the instance's stores; start and stop.
 *
 *   GET  /api/schedules                        { schedules: [...] }
 *   GET  /api/sensors                          { sensors: [...] }
 *   GET  /api/ticks?name=job/name[&kind=schedules|sensors][&limit=N]   { id, kind, ticks }
 *   POST /api/schedules/<job>/<name>/start|stop, /api/sensors/<job>/<name>/start|stop   { id, status }
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { entriesOf, findEntry } from '../automation/find.js';
import type { AutomationKind, AutomationStores, TickStore } from '../automation/tick-store.js';
import { isoInZone, nextTicks } from '../core/schedule-ticks.js';
import type { JobDefinition } from '../core/types.js';
import { BatonError } from '../errors.js';
import { HttpError, sendJson } from './http.js';
import type { JobCatalog } from './job-catalog.js';

/** Recent ticks shown with each schedule or sensor; runs launched are looked for this far back. */
const RECENT_TICKS = 10;
const LAUNCH_LOOKBACK = 100;
const LAUNCHES_SHOWN = 10;

export interface AutomationContext {
  catalog: JobCatalog;
  automation?: AutomationStores;
}

type Handler = (ctx: AutomationContext, req: IncomingMessage, res: ServerResponse, params: string[], url: URL) => Promise<void>;

async function loadedJobs(ctx: AutomationContext): Promise<JobDefinition[]> {
  return (await ctx.catalog.list()).flatMap((e) => (e.job ? [e.job] : []));
}

function storesOf(ctx: AutomationContext): AutomationStores {
  if (!ctx.automation) throw new HttpError(501, { error: 'this UI server was started without schedule and sensor state (UiServerOptions.automation)' });
  return ctx.automation;
}

async function common(store: TickStore, id: string, defaultStatus: 'running' | 'stopped') {
  const [status, history] = await Promise.all([store.statusOf(id), store.ticks(id, LAUNCH_LOOKBACK)]);
  // The runs launched, newest first, even when many ticks since were skipped.
  const launched = history.flatMap((t) => t.runIds.map((runId, i) => ({ runId, tickTime: t.tickTime, ...(t.runKeys?.[i] ? { runKey: t.runKeys[i] } : {}) }))).slice(0, LAUNCHES_SHOWN);
  return { status: status ?? defaultStatus, defaultStatus, ticks: history.slice(0, RECENT_TICKS), launched };
}

const listSchedules: Handler = async (ctx, _req, res) => {
  const { schedules: store } = storesOf(ctx);
  const now = new Date();
  const schedules = await Promise.all(
    entriesOf(await loadedJobs(ctx), 'schedules').map(async ({ id, job, entry: s }) => ({
      id,
      job: job.name,
      name: s.name,
      cron: s.cron,
      timezone: s.timezone,
      catchup: s.catchup,
      nextTicks: nextTicks(s, now, 5).map((t) => isoInZone(t, s.timezone)),
      ...(await common(store, id, s.defaultStatus)),
    })),
  );
  sendJson(res, 200, { schedules });
};

const listSensors: Handler = async (ctx, _req, res) => {
  const { sensors: store } = storesOf(ctx);
  const sensors = await Promise.all(
    entriesOf(await loadedJobs(ctx), 'sensors').map(async ({ id, job, entry: s }) => {
      const [cursor, lastRunKey] = await Promise.all([store.cursor(id), store.lastRunKey(id)]);
      return { id, job: job.name, name: s.name, fn: s.fn.ref, intervalSeconds: s.intervalSeconds, cursor: cursor ?? null, lastRunKey: lastRunKey ?? null, ...(await common(store, id, s.defaultStatus)) };
    }),
  );
  sendJson(res, 200, { sensors });
};

/** A BatonError from finding an entry as an HTTP answer. */
async function find<K extends AutomationKind>(ctx: AutomationContext, name: string, kinds: readonly K[]) {
  try {
    return findEntry(await loadedJobs(ctx), name, kinds);
  } catch (e) {
    if (e instanceof BatonError) throw new HttpError(e.code === 'USAGE' ? 400 : 404, { error: e.message });
    throw e;
  }
}

const ticks: Handler = async (ctx, _req, res, _p, url) => {
  const name = url.searchParams.get('name');
  if (!name) throw new HttpError(400, { error: 'expected ?name=job/name' });
  const kind = url.searchParams.get('kind');
  if (kind !== null && kind !== 'schedules' && kind !== 'sensors') throw new HttpError(400, { error: 'expected kind=schedules or kind=sensors' });
  const found = await find(ctx, name, kind ? [kind] : (['schedules', 'sensors'] as const));
  const limit = Math.min(200, Math.max(1, Number(url.searchParams.get('limit')) || 50));
  sendJson(res, 200, { id: found.id, kind: found.kind, ticks: await storesOf(ctx)[found.kind].ticks(found.id, limit) });
};

const toggle =
  (kind: AutomationKind): Handler =>
  async (ctx, _req, res, [job, name, verb]) => {
    const found = await find(ctx, `${job}/${name}`, [kind]);
    const status = verb === 'start' ? 'running' : 'stopped';
    // Starting a schedule evaluates from now on (no catch-up); a sensor keeps its cursor.
    await storesOf(ctx)[kind].setStatus(found.id, status, kind === 'schedules' ? Date.now() : undefined);
    sendJson(res, 200, { id: found.id, status });
  };

export const automationRoutes: Array<[method: string, pattern: RegExp, handler: Handler]> = [
  ['GET', /^schedules$/, listSchedules],
  ['GET', /^sensors$/, listSensors],
  ['GET', /^ticks$/, ticks],
  ['POST', /^schedules\/([^/]+)\/([^/]+)\/(start|stop)$/, toggle('schedules')],
  ['POST', /^sensors\/([^/]+)\/([^/]+)\/(start|stop)$/, toggle('sensors')],
];
