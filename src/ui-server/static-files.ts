/**
 * The built front end (`dist/ui`, made by `npm run build`): index.html at the base path, hashed
 * assets under `assets/`. The page routes with the URL's hash, so one document serves every page
 * and relative URLs work under any `--base-path`.
 */
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/src/ui-server/ → dist/ui/ */
export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../ui/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'",
};

/** Serves `rel` (a path below the base path, '' for the page itself); false when there is no such file. */
export async function serveStatic(dir: string, rel: string, res: ServerResponse): Promise<boolean> {
  const name = rel === '' ? 'index.html' : rel;
  const file = normalize(join(dir, name));
  if (!file.startsWith(normalize(dir + sep)) && file !== normalize(dir)) return false;
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    if (rel !== '') return false;
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`The UI is not built (no ${file}): run npm run build.\n`);
    return true;
  }
  const immutable = rel.startsWith('assets/');
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  res.end(body);
  return true;
}
