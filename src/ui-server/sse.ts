/**
 * `/api/runs/:id/events` as Server-Sent Events: each event's `id:` is its cursor, so a browser
 * that lost the connection resumes right after the last event it got (`Last-Event-ID`). After
 * the run's last event the server sends `event: end` and closes the stream.
 */
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { Instance } from '../instance/types.js';

/** A comment line now and then keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

export async function streamRunEvents(
  instance: Instance,
  runId: string,
  after: string | undefined,
  res: ServerResponse,
  serverSignal: AbortSignal,
): Promise<void> {
  const abort = new AbortController();
  const stop = () => abort.abort();
  res.on('close', stop);
  serverSignal.addEventListener('abort', stop, { once: true });
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
  });
  res.write('retry: 1000\n\n');
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
  try {
    const events = instance.watchEvents(runId, { ...(after ? { after } : {}), signal: abort.signal });
    for await (const event of events) {
      if (abort.signal.aborted) break;
      if (!res.write(`id: ${event.cursor}\ndata: ${JSON.stringify(event)}\n\n`)) {
        await Promise.race([once(res, 'drain'), once(abort.signal, 'abort')]);
      }
    }
    if (!abort.signal.aborted) res.write('event: end\ndata: {}\n\n');
  } finally {
    clearInterval(keepalive);
    res.off('close', stop);
    serverSignal.removeEventListener('abort', stop);
    res.end();
  }
}
