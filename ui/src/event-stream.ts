/**
 * Follows `/api/runs/:id/events` (Server-Sent Events) with fetch, so the bearer token can be
 * sent: after a lost connection it reconnects with `Last-Event-ID` = the last cursor received,
 * so no event is lost or repeated. Events are handed over in batches (at most every 100 ms), so
 * a burst of thousands renders once. The stream ends with `event: end` after the run's last event.
 */
import type { InstanceEvent } from '../../src/instance/types.js';
import { authHeaders } from './api.js';

export type StreamState = 'connecting' | 'open' | 'lost' | 'ended';

export interface FollowOptions {
  onEvents(batch: InstanceEvent[]): void;
  onState(state: StreamState): void;
}

const BATCH_MS = 100;
const YIELD_EVERY = 1000;

export function followRunEvents(runId: string, options: FollowOptions): () => void {
  const abort = new AbortController();
  let lastId: string | undefined;
  let pending: InstanceEvent[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let delay = 500;
  const flush = () => {
    timer = undefined;
    if (pending.length === 0 || abort.signal.aborted) return;
    const batch = pending;
    pending = [];
    options.onEvents(batch);
  };
  const push = (e: InstanceEvent) => {
    pending.push(e);
    timer ??= setTimeout(flush, BATCH_MS);
  };

  const connectOnce = async (): Promise<boolean> => {
    const res = await fetch(`api/runs/${encodeURIComponent(runId)}/events`, {
      headers: { accept: 'text/event-stream', ...authHeaders(), ...(lastId ? { 'last-event-id': lastId } : {}) },
      signal: abort.signal,
    });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    options.onState('open');
    delay = 500;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let parsed = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      buffer += value;
      // Walk the buffer by index and cut it once: a chunk may hold thousands of events.
      let start = 0;
      let end: number;
      while ((end = buffer.indexOf('\n\n', start)) >= 0) {
        const block = buffer.slice(start, end);
        start = end + 2;
        let id: string | undefined;
        let type = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('id:')) id = line.slice(3).trim();
          else if (line.startsWith('event:')) type = line.slice(6).trim();
          else if (line.startsWith('data:')) data += line.slice(5).trimStart();
        }
        if (type === 'end') return true;
        if (type === 'message' && data) {
          push(JSON.parse(data) as InstanceEvent);
          if (id) lastId = id;
          // Hand the main thread back now and then, so a burst never makes one long task.
          if (++parsed % YIELD_EVERY === 0) await new Promise((r) => setTimeout(r, 0));
        }
      }
      buffer = buffer.slice(start);
    }
  };

  void (async () => {
    options.onState('connecting');
    while (!abort.signal.aborted) {
      try {
        if (await connectOnce()) {
          flush();
          options.onState('ended');
          return;
        }
      } catch {
        if (abort.signal.aborted) return;
      }
      flush();
      options.onState('lost');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  })();
  return () => {
    abort.abort();
    if (timer) clearTimeout(timer);
  };
}
