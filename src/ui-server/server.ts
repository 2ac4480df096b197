/**
 * The web UI's HTTP server: the JSON API under `<base>/api/`, `<base>/healthz`, and the built
 * front end. It keeps no run state: every answer comes from the `Instance` and the job catalog.
 */
import { setMaxListeners } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { runAutomation } from '../automation/automation-loop.js';
import type { AutomationStores } from '../automation/tick-store.js';
import { BatonError } from '../errors.js';
import type { Instance } from '../instance/types.js';
import { errorAnswer, guardApi, HttpError, isLoopback, sendJson } from './http.js';
import { JobCatalog } from './job-catalog.js';
import { handleApi } from './routes.js';
import { DEFAULT_UI_DIR, serveStatic } from './static-files.js';

export interface UiServerOptions {
  instance: Instance;
  /** Job files or directories searched for them. */
  jobPaths: readonly string[];
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 3000; 0 picks a free port. */
  port?: number;
  /** The path the UI is served under behind a proxy, e.g. `/baton/`. Default `/`. */
  basePath?: string;
  /** Bearer token the API requires. Needed to bind anywhere but loopback, unless `insecure`. */
  authToken?: string;
  insecure?: boolean;
  /** The built front end; default the package's `dist/ui`. */
  uiDir?: string;
  /**
   * Schedule and sensor state for the Schedules and Sensors pages. With `run`, this server also
   * runs the schedules and sensors of its jobs (`coordinator ui` without Redis, like `dagster
   * dev`); with Redis, `coordinator serve` runs them.
   */
  automation?: { stores: AutomationStores; run?: boolean; intervalMs?: number; logger?: Logger };
}

export interface UiServer {
  /** `http://HOST:PORT/<base>` */
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** Stops listening and ends every open request and event stream (the instance stays open). */
  close(): Promise<void>;
}

export function normalizeBasePath(path: string | undefined): string {
  const trimmed = (path ?? '/').replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? '/' : `/${trimmed}/`;
}

export async function startUiServer(options: UiServerOptions): Promise<UiServer> {
  const host = options.host ?? '127.0.0.1';
  const base = normalizeBasePath(options.basePath);
  const authToken = options.authToken || undefined;
  if (!isLoopback(host) && authToken === undefined && !options.insecure) {
    throw new BatonError(
      'USAGE',
      `binding to ${host} exposes the UI beyond this machine: give --auth-token (or $BATON_UI_TOKEN), or --insecure to run without one`,
    );
  }
  const catalog = new JobCatalog(options.jobPaths);
  const uiDir = options.uiDir ?? DEFAULT_UI_DIR;
  const stopping = new AbortController();
  setMaxListeners(0, stopping.signal); // one listener per open event stream
  // No token on loopback: answer only to local names, so a rebound DNS name cannot reach the API.
  const allowedHosts = authToken === undefined && isLoopback(host) ? new Set(['localhost', '127.0.0.1', '[::1]', host]) : undefined;
  const ctx = { instance: options.instance, catalog, signal: stopping.signal, ...(options.automation ? { automation: options.automation.stores } : {}) };
  const automation = options.automation?.run ? startAutomation(options, catalog, stopping.signal) : undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://ui.invalid');
    const path = url.pathname;
    if (path === `${base}healthz` || (base !== '/' && path === '/healthz')) return sendJson(res, 200, { ok: true });
    if (`${path}/` === base) {
      res.writeHead(308, { location: `${base}${url.search}` });
      return void res.end();
    }
    if (!path.startsWith(base)) return sendJson(res, 404, { error: `not found (the UI is under ${base})` });
    const rel = path.slice(base.length);
    if (rel.startsWith('api/')) {
      guardApi(req, { ...(authToken !== undefined ? { authToken } : {}), ...(allowedHosts ? { allowedHosts } : {}) });
      if (await handleApi(ctx, req, res, rel.slice(4), url)) return;
      throw new HttpError(404, { error: `no API route ${req.method} ${rel}` });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, { error: 'method not allowed' });
    if (!(await serveStatic(uiDir, rel, res))) sendJson(res, 404, { error: 'not found' });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const { status, body } = errorAnswer(e);
      if (res.headersSent) res.destroy();
      else sendJson(res, status, body);
    });
  });
  server.listen(options.port ?? 3000, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}${base}`,
    port,
    server,
    close: async () => {
      stopping.abort();
      await automation;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Runs the schedules and sensors of the catalog's jobs until the server closes. */
async function startAutomation(options: UiServerOptions, catalog: JobCatalog, signal: AbortSignal): Promise<void> {
  const a = options.automation as NonNullable<UiServerOptions['automation']>;
  const { pino } = await import('pino');
  const logger = a.logger ?? pino({ name: 'baton-ui', level: process.env.LOG_LEVEL ?? 'info' }, pino.destination(2));
  const jobs = async () => new Map((await catalog.list()).flatMap((e) => (e.job ? [[e.job.name, e.job] as const] : [])));
  // No serve runs a local instance's queue: this process starts the runs schedules and sensors submit.
  const runQueue = options.instance.kind === 'local';
  await runAutomation({ instance: options.instance, stores: a.stores, jobs, logger, intervalMs: a.intervalMs ?? 1000, signal, runQueue }).catch((e: unknown) =>
    logger.error({ err: e instanceof Error ? e.message : String(e) }, 'schedules and sensors stopped'),
  );
}
