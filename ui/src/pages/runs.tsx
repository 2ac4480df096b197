/** The runs list: live (re-read every 2 s), filtered by status, job and tag, the filters kept in the URL. */
import { useEffect, useState } from 'preact/hooks';
import { api, RUN_STATUSES, type RunSummary } from '../api.js';
import { href, navigate } from '../router.js';

export function duration(from?: string, to?: string): string {
  if (!from) return '';
  const ms = (to ? Date.parse(to) : Date.now()) - Date.parse(from);
  return ms < 1000 ? `${ms} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function RunsPage({ query }: { query: URLSearchParams }) {
  const [runs, setRuns] = useState<RunSummary[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [more, setMore] = useState<RunSummary[]>([]);
  const [error, setError] = useState<string | null>(null);
  const filter = query.toString();

  useEffect(() => {
    let live = true;
    setMore([]);
    setRuns(null); // no stale rows under a new filter
    const load = () =>
      api<{ runs: RunSummary[]; cursor: string | null }>(`runs?${filter}`).then(
        (r) => live && (setRuns(r.runs), setCursor(r.cursor), setError(null)),
        (e: unknown) => live && setError(String(e)),
      );
    void load();
    const timer = setInterval(() => void load(), 2000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [filter]);

  const setFilter = (key: string, value: string) => {
    const q = new URLSearchParams(query);
    if (value) q.set(key, value);
    else q.delete(key);
    navigate(['runs'], q, true);
  };
  const loadMore = async () => {
    if (!cursor) return;
    const q = new URLSearchParams(query);
    q.set('cursor', cursor);
    const r = await api<{ runs: RunSummary[]; cursor: string | null }>(`runs?${q.toString()}`);
    setMore((m) => [...m, ...r.runs]);
    setCursor(r.cursor);
  };

  return (
    <section>
      <h1>Runs</h1>
      <div class="toolbar" role="search">
        <label>Status <select aria-label="Status" value={query.get('status') ?? ''} onChange={(e) => setFilter('status', e.currentTarget.value)}>
          <option value="">any</option>
          {RUN_STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
        </select></label>
        <label>Job <input aria-label="Job" value={query.get('job') ?? ''} onChange={(e) => setFilter('job', e.currentTarget.value.trim())} /></label>
        <label>Tag <input aria-label="Tag" placeholder="key=value" value={query.get('tag') ?? ''} onChange={(e) => setFilter('tag', e.currentTarget.value.trim())} /></label>
      </div>
      {error && <p class="error">{error}</p>}
      {!runs ? <p class="muted">Loading runs…</p> : runs.length === 0 ? <p>No runs match.</p> : (
        <table class="runs">
          <thead><tr><th>Run</th><th>Job</th><th>Status</th><th>Created</th><th>Duration</th><th>Steps</th><th>Tags</th></tr></thead>
          <tbody>
            {[...runs, ...more].map((r) => (
              <tr key={r.runId}>
                <td><a href={href(['runs', r.runId])} title={r.runId}><code>{r.runId.slice(0, 8)}</code></a></td>
                <td><a href={href(['jobs', r.job])}>{r.job}</a></td>
                <td>
                  <span class={`badge s-${r.status}`}>{r.status}</span>
                  {r.queueReason && <div class="muted queue-reason" title="Why this run waits">waits: {r.queueReason}</div>}
                </td>
                <td>{new Date(r.createdAt).toLocaleString()}</td>
                <td>{duration(r.startedAt, r.endedAt)}</td>
                <td>{Object.entries(r.stepCounts).map(([s, n]) => <span key={s} class={`count s-${s}`}>{n} {s}</span>)}</td>
                <td>{Object.entries(r.tags).map(([k, v]) => <a key={k} class="tag" href={href(['runs'], new URLSearchParams({ tag: `${k}=${v}` }))}>{k}={v}</a>)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor && <button type="button" onClick={() => void loadMore()}>Load more</button>}
    </section>
  );
}
