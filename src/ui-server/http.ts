/** Small HTTP helpers for the UI server: JSON in and out, errors as JSON, the request guard. */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BatonError, InputError } from '../errors.js';

/** An error answered with its status and a JSON body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(typeof body.error === 'string' ? body.error : `HTTP ${status}`);
  }
}

const MAX_BODY_BYTES = 8 * 1024 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, { error: 'request body too large' });
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, { error: 'expected a JSON body' });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, { error: 'expected a JSON object' });
  return body as Record<string, unknown>;
}

/** A thrown value as an HTTP answer: bad input is 400 with its problems, an unknown run 404. */
export function errorAnswer(e: unknown): { status: number; body: Record<string, unknown> } {
  if (e instanceof HttpError) return { status: e.status, body: e.body };
  if (e instanceof InputError) {
    return { status: 400, body: { error: e.message, code: e.code, problems: e.problems.map((p) => ({ ...p })) } };
  }
  if (e instanceof BatonError) {
    const status = e.code === 'RUN_NOT_FOUND' ? 404 : e.code === 'RUN_BUSY' || e.code === 'RUN_NOT_RESUMABLE' ? 409 : 400;
    return { status, body: { error: e.message, code: e.code, problems: [{ message: e.message }] } };
  }
  return { status: 500, body: { error: e instanceof Error ? e.message : String(e) } };
}

export interface GuardOptions {
  /** Bearer token every /api request must carry; undefined: none needed. */
  authToken?: string;
  /** Host names the server answers to when no token protects it (DNS rebinding). */
  allowedHosts?: ReadonlySet<string>;
}

/**
 * Throws unless the request may go on: the bearer token when one is set, a Host the server
 * knows when none is, and for state-changing methods a same-origin JSON request — a form posted
 * from another site can send neither that content type nor a same-origin Fetch-Metadata header.
 */
export function guardApi(req: IncomingMessage, options: GuardOptions): void {
  if (options.authToken !== undefined) {
    const given = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    if (!sameSecret(given, options.authToken)) throw new HttpError(401, { error: 'a bearer token is needed (--auth-token)' });
  } else if (options.allowedHosts && !options.allowedHosts.has(hostName(req.headers.host ?? ''))) {
    throw new HttpError(403, { error: `unexpected Host header "${req.headers.host ?? ''}"` });
  }
  if (req.method === 'GET' || req.method === 'HEAD') return;
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, { error: 'state-changing requests must be application/json' });
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new HttpError(403, { error: 'cross-site requests are refused' });
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      throw new HttpError(403, { error: 'cross-site requests are refused' });
    }
    if (originHost !== req.headers.host) throw new HttpError(403, { error: 'cross-site requests are refused' });
  } else if (origin === 'null') {
    throw new HttpError(403, { error: 'cross-site requests are refused' });
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `host:port` or `[::1]:port` → the host part, lower case. */
export function hostName(hostHeader: string): string {
  const h = hostHeader.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon >= 0 ? h.slice(0, colon) : h;
}

/** Whether binding to `host` keeps the server on this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
