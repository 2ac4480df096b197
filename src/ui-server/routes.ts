/**
 * The UI's JSON API (a public contract), every answer from `Instance` calls and the job catalog:
 * the server keeps no run state of its own.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dump } from 'js-yaml';
import { RUN_STATUSES } from '../core/status.js';
import type { JobDefinition, RunStatus, Tags } from '../core/types.js';
import type { AutomationStores } from '../automation/tick-store.js';
import type { Instance, RunDetail } from '../instance/types.js';
import { automationRoutes } from './automation-routes.js';
import type { CatalogEntry, JobCatalog } from './job-catalog.js';
import { HttpError, readJson, sendJson } from './http.js';
import { runConfigJsonSchema, jobJsonSchema } from '../job/json-schema.js';
import { streamRunEvents } from './sse.js';
import { validateLaunch } from './validate.js';

export interface ApiContext {
  instance: Instance;
  catalog: JobCatalog;
  /** Schedule and sensor state; absent: /api/schedules and /api/sensors answer 501. */
  automation?: AutomationStores;
  /** Ends when the server closes, so live streams stop. */
  signal: AbortSignal;
}

type Handler = (ctx: ApiContext, req: IncomingMessage, res: ServerResponse, params: string[], url: URL) => Promise<void>;

const routes: Array<[method: string, pattern: RegExp, handler: Handler]> = [
  ['GET', /^jobs$/, async (ctx, _req, res) => sendJson(res, 200, { jobs: (await ctx.catalog.list()).map(jobJson) })],
  ['POST', /^validate$/, async (ctx, req, res) => {
    const body = await readJson(req);
    const { problems, selectedOps, ok } = await validateLaunch(await jobOf(ctx, body.job), launchRequest(body));
    sendJson(res, 200, { ok, selectedOps, problems });
  }],
  ['GET', /^runs$/, async (ctx, _req, res, _p, url) => sendJson(res, 200, await ctx.instance.getRuns(runsFilter(url)))],
  ['POST', /^runs$/, async (ctx, req, res) => {
    const body = await readJson(req);
    const job = await jobOf(ctx, body.job);
    const checked = await validateLaunch(job, launchRequest(body));
    if (!checked.ok) return sendJson(res, 400, { problems: checked.problems });
    const selection = launchRequest(body).selection;
    // The Launchpad sends the whole text, pre-filled with the job's own run config: what is sent
    // is what runs, so the job's is not merged under it again (the definition hash leaves it out).
    const { runConfig: _own, ...bare } = job;
    const { runId } = await ctx.instance.launchRun(bare, {
      ...(selection && selection.length > 0 ? { selection } : {}),
      ...(checked.runConfig ? { runConfig: checked.runConfig } : {}),
      tags: tagsOf(body.tags),
    });
    sendJson(res, 201, { runId });
  }],
  ['GET', /^runs\/([^/]+)$/, async (ctx, _req, res, [id]) => sendJson(res, 200, runJson(await runOf(ctx, id as string)))],
  ['GET', /^runs\/([^/]+)\/events$/, async (ctx, req, res, [id], url) => {
    await runOf(ctx, id as string);
    const after = (req.headers['last-event-id'] as string | undefined) ?? url.searchParams.get('after') ?? undefined;
    await streamRunEvents(ctx.instance, id as string, after, res, ctx.signal);
  }],
  ['POST', /^runs\/([^/]+)\/cancel$/, async (ctx, _req, res, [id]) => sendJson(res, 200, await ctx.instance.cancelRun(id as string))],
  ['POST', /^runs\/([^/]+)\/reexecute$/, async (ctx, req, res, [id]) => {
    const body = await readJson(req);
    const selection = stringList(body.selection, 'selection');
    const options = { fromFailure: body.fromFailure === true, ...(selection && selection.length > 0 ? { selection } : {}) };
    sendJson(res, 201, await ctx.instance.reexecuteRun(id as string, options));
  }],
  ['GET', /^limits$/, async (ctx, _req, res) => sendJson(res, 200, { limits: await ctx.instance.limits.list() })],
  ['PUT', /^limits$/, async (ctx, req, res) => {
    const body = await readJson(req);
    const { limit } = body;
    const key = body.key ?? body.spec;
    if (typeof key !== 'string' || typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0) {
      throw new HttpError(400, { error: 'expected { key: "database=redshift", limit: <integer >= 0> }' });
    }
    await ctx.instance.limits.set(key, limit);
    sendJson(res, 200, { key, limit });
  }],
  ['DELETE', /^limits\/(.+)$/, async (ctx, _req, res, [key]) => sendJson(res, 200, { deleted: await ctx.instance.limits.delete(key as string) })],
  ['GET', /^workers$/, async (ctx, _req, res) => sendJson(res, 200, { workers: await ctx.instance.workers.list() })],
  ['GET', /^daemons$/, async (ctx, _req, res) => sendJson(res, 200, { daemons: await ctx.instance.daemons.list() })],
  ['GET', /^schema\/run-config$/, async (ctx, _req, res, _p, url) => {
    const name = url.searchParams.get('job');
    const job = name ? (await ctx.catalog.get(name))?.job : undefined;
    sendJson(res, 200, runConfigJsonSchema(job));
  }],
  ['GET', /^schema\/job$/, async (_ctx, _req, res) => sendJson(res, 200, jobJsonSchema())],
  ['GET', /^info$/, async (ctx, _req, res) => sendJson(res, 200, { instance: ctx.instance.kind })],
  ...automationRoutes,
];

/** Answers `/api/<path>`; false when no route matches. */
export async function handleApi(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, path: string, url: URL): Promise<boolean> {
  for (const [method, pattern, handler] of routes) {
    const m = pattern.exec(path);
    if (!m) continue;
    if (req.method !== method && !(method === 'GET' && req.method === 'HEAD')) continue;
    await handler(ctx, req, res, m.slice(1).map(decodeURIComponent), url);
    return true;
  }
  return false;
}

function jobJson(e: CatalogEntry) {
  const job = e.job;
  return {
    name: e.name,
    file: e.file,
    description: job?.description ?? null,
    hash: job?.hash ?? null,
    tags: job?.tags ?? {},
    ops: job ? [...job.ops.values()].map((op) => ({
      name: op.name,
      upstream: [...new Set([...Object.values(op.ins), ...op.deps])],
      ins: op.ins,
      tags: op.tags,
      kind: op.impl.kind,
      retry: op.retry,
      config: op.config,
      ...(op.description !== undefined ? { description: op.description } : {}),
    })) : [],
    ...(job?.runConfig ? { runConfigYaml: dump(job.runConfig.value, { lineWidth: 120 }) } : {}),
    ...(e.problems ? { problems: e.problems } : {}),
  };
}

/** `/api/runs/:id` keeps `steps` as `{ <op>: status }`; each step's detail is in `stepDetails`. */
function runJson(run: RunDetail) {
  const steps = Object.fromEntries(Object.entries(run.steps).map(([k, v]) => [k, v.status]));
  return { ...run, steps, stepDetails: run.steps };
}

async function jobOf(ctx: ApiContext, name: unknown): Promise<JobDefinition> {
  if (typeof name !== 'string') throw new HttpError(400, { error: 'expected "job": a job name', problems: [{ message: 'expected "job": a job name' }] });
  const entry = await ctx.catalog.get(name);
  if (!entry) throw new HttpError(404, { error: `unknown job "${name}"`, problems: [{ message: `unknown job "${name}"` }] });
  if (!entry.job) throw new HttpError(400, { error: `job "${name}" does not load`, problems: entry.problems ?? [] });
  return entry.job;
}

async function runOf(ctx: ApiContext, id: string): Promise<RunDetail> {
  const run = await ctx.instance.getRun(id);
  if (!run) throw new HttpError(404, { error: `no run "${id}"` });
  return run;
}

function launchRequest(body: Record<string, unknown>): { selection?: string[]; runConfig?: string } {
  const selection = stringList(body.selection, 'selection');
  const rc = body.runConfig;
  if (rc !== undefined && rc !== null && typeof rc !== 'string') throw new HttpError(400, { error: 'expected "runConfig": YAML text' });
  return { ...(selection ? { selection } : {}), ...(typeof rc === 'string' ? { runConfig: rc } : {}) };
}

function stringList(v: unknown, name: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  throw new HttpError(400, { error: `expected "${name}": a list of strings` });
}

function tagsOf(v: unknown): Tags {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((t) => typeof t === 'string')) {
    throw new HttpError(400, { error: 'expected "tags": a map of strings' });
  }
  return v as Tags;
}

function runsFilter(url: URL) {
  const q = url.searchParams;
  const statuses = q.getAll('status').flatMap((s) => s.split(',')).filter(Boolean);
  for (const s of statuses) if (!RUN_STATUSES.includes(s as RunStatus)) throw new HttpError(400, { error: `unknown status "${s}"; expected one of ${RUN_STATUSES.join(', ')}` });
  const tags: Tags = {};
  for (const t of q.getAll('tag')) {
    const eq = t.indexOf('=');
    if (eq <= 0) throw new HttpError(400, { error: `expected tag=key=value, got "${t}"` });
    tags[t.slice(0, eq)] = t.slice(eq + 1);
  }
  const limit = q.get('limit');
  return {
    ...(statuses.length > 0 ? { statuses: statuses as RunStatus[] } : {}),
    ...(q.get('job') ? { job: q.get('job') as string } : {}),
    ...(Object.keys(tags).length > 0 ? { tags } : {}),
    ...(q.get('cursor') ? { cursor: q.get('cursor') as string } : {}),
    ...(limit ? { limit: Math.min(500, Math.max(1, Number(limit) || 50)) } : {}),
  };
}
