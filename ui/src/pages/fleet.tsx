/** Limits (slots in use, holders, waiters in order; set and delete) and Workers (live, with their jobs and steps). */
import { useEffect, useState } from 'preact/hooks';
import { api, instanceKind, type LimitInfo, type WorkerInfo } from '../api.js';
import { href } from '../router.js';

export function usePoll<T>(path: string, every = 2000): { data: T | null; error: string | null; reload(): void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const load = () => api<T>(path).then((d) => live && (setData(d), setError(null)), (e: unknown) => live && setError(String(e)));
    void load();
    const timer = setInterval(() => void load(), every);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [path, tick]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}

function useInstanceKind(): 'redis' | 'local' | null {
  const [kind, setKind] = useState<'redis' | 'local' | null>(null);
  useEffect(() => void instanceKind().then(setKind, () => undefined), []);
  return kind;
}

const LOCAL_NOTE = (what: string) => (
  <p class="banner">This UI runs on a local instance (no Redis): {what} exist on a Redis instance. Start it with <code>coordinator ui --redis URL</code>.</p>
);

export const runLink = (runId: string) => <a href={href(['runs', runId])}><code>{runId.slice(0, 8)}</code></a>;

export function LimitsPage() {
  const { data, error, reload } = usePoll<{ limits: LimitInfo[] }>('limits');
  const [key, setKey] = useState('');
  const [limit, setLimit] = useState('1');
  const [formError, setFormError] = useState<string | null>(null);
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await api('limits', { method: 'PUT', body: { key: key.trim(), limit: Number(limit) } });
      setFormError(null);
      reload();
    } catch (err) {
      setFormError(String(err));
    }
  };
  const remove = async (spec: string) => {
    await api(`limits/${encodeURIComponent(spec)}`, { method: 'DELETE', body: {} }).catch((err: unknown) => setFormError(String(err)));
    reload();
  };
  if (useInstanceKind() === 'local') return <section><h1>Limits</h1>{LOCAL_NOTE('concurrency limits shared by every run')}</section>;
  return (
    <section>
      <h1>Limits</h1>
      <form class="toolbar" onSubmit={(e) => void save(e)}>
        <label>Limit <input aria-label="Limit key" placeholder="database=redshift, team=* or heavy" value={key} onInput={(e) => setKey(e.currentTarget.value)} /></label>
        <label>Slots <input aria-label="Slots" type="number" min="0" value={limit} onInput={(e) => setLimit(e.currentTarget.value)} /></label>
        <button type="submit" disabled={!key.trim()}>Set limit</button>
      </form>
      {formError && <p class="error">{formError}</p>}
      {error && <p class="error">{error}</p>}
      {data && data.limits.length === 0 && <p>No shared limits. Set one above, or with <code>coordinator limits set</code>.</p>}
      {data && data.limits.length > 0 && (
        <table>
          <thead><tr><th>Limit</th><th>In use</th><th>Holders</th><th>Waiting, in order</th><th /></tr></thead>
          <tbody>
            {data.limits.map((l) => (
              <tr key={l.spec}>
                <td><code>{l.spec}</code></td>
                <td>{l.inUse} / {l.limit}</td>
                <td><ul>{l.holders.map((h) => <li key={`${h.runId}/${h.stepKey}`}>{runLink(h.runId)} {h.stepKey}{h.since ? ` since ${new Date(h.since).toLocaleTimeString()}` : ''}</li>)}</ul></td>
                <td><ol>{l.waiters.map((w) => <li key={`${w.runId}/${w.stepKey}`}>{runLink(w.runId)} {w.stepKey}{w.blockedBy.length > 0 ? ` (held by ${w.blockedBy.join(', ')})` : ''}</li>)}</ol></td>
                <td>
                  <button type="button" onClick={() => (setKey(l.spec), setLimit(String(l.limit)))}>Edit</button>{' '}
                  <button type="button" onClick={() => void remove(l.spec)}>Delete</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function WorkersPage() {
  const { data, error } = usePoll<{ workers: WorkerInfo[] }>('workers');
  const kind = useInstanceKind();
  return (
    <section>
      <h1>Workers</h1>
      {kind === 'local' && LOCAL_NOTE('workers taking distributed steps')}
      {error && <p class="error">{error}</p>}
      {kind === 'redis' && data && data.workers.length === 0 && <p>No live workers. Start one with <code>worker --jobs PATH</code>.</p>}
      {data && data.workers.length > 0 && (
        <table>
          <thead><tr><th>Worker</th><th>Queue</th><th>Jobs</th><th>Running</th><th>Last seen</th></tr></thead>
          <tbody>
            {data.workers.map((w) => (
              <tr key={w.id}>
                <td><code>{w.id}</code><br /><span class="muted">{w.host} pid {w.pid}{w.version ? ` · v${w.version}` : ''}</span></td>
                <td>{w.queue}{w.concurrency ? ` ×${w.concurrency}` : ''}</td>
                <td>{w.jobs.map((j) => <div key={j.name}>{j.name} <code class="muted">{j.hash.slice(0, 8)}</code></div>)}
                  {w.loadErrors?.map((e) => <div key={e.file} class="error">{e.file}: {e.message}</div>)}</td>
                <td>{w.running}{w.runningSteps?.map((s) => <div key={`${s.runId}/${s.stepKey}`}>{runLink(s.runId)} {s.stepKey}</div>)}</td>
                <td>{new Date(w.lastSeen).toLocaleTimeString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
