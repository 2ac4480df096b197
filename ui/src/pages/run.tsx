/**
 * A run: its steps with live status (in the JSON contract's words), a timeline of attempts, the
 * event log (live over SSE, resumed by cursor after a lost connection), Cancel and Re-execute.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { InstanceEvent } from '../../../src/instance/types.js';
import { api, ApiError, TERMINAL_RUN_STATUSES, type RunJson, type StepView } from '../api.js';
import { followRunEvents, type StreamState } from '../event-stream.js';
import { attemptBars, Gantt } from '../gantt.js';
import { LogView, type LogFilter } from '../log-view.js';
import { href, navigate } from '../router.js';
import { duration } from './runs.js';

function StepDetail({ view }: { view: StepView }) {
  if (view.status === 'WAITING') return <span class="detail">{view.waiting ?? 'waiting'}</span>;
  if (view.status === 'IN_PROGRESS') return <span class="detail">{view.worker ? `on ${view.worker}` : ''}{view.attempt > 1 ? ` (attempt ${view.attempt})` : ''}</span>;
  if (view.status === 'FAILURE' && view.error) {
    return (
      <details class="detail error">
        <summary>{view.error.code ? `[${view.error.code}] ` : ''}{view.error.message}</summary>
        {view.error.stack && <pre>{view.error.stack}</pre>}
      </details>
    );
  }
  return view.attempt > 1 ? <span class="detail">attempt {view.attempt}</span> : null;
}

export function RunPage({ runId }: { runId: string }) {
  const [run, setRun] = useState<RunJson | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [events, setEvents] = useState<InstanceEvent[]>([]);
  const [types, setTypes] = useState<string[]>([]);
  const [stream, setStream] = useState<StreamState>('connecting');
  const [filter, setFilter] = useState<LogFilter>({ step: '', type: '', text: '' });
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const [busy, setBusy] = useState(false);
  const [now, setNow] = useState(Date.now());

  const [offline, setOffline] = useState(false);
  const loaded = useRef(false);
  // Once the run is shown, a failed re-read keeps it on screen and says the connection is lost.
  const refresh = () =>
    api<RunJson>(`runs/${encodeURIComponent(runId)}`).then(
      (r) => {
        loaded.current = true;
        setRun(r);
        setError(null);
        setOffline(false);
      },
      (e: unknown) => {
        if (e instanceof ApiError && e.status === 404) setError(`No run ${runId}.`);
        else if (loaded.current) setOffline(true);
        else setError(String(e));
      },
    );

  useEffect(() => {
    setEvents([]);
    setTypes([]);
    setRun(null);
    loaded.current = false;
    void refresh();
    let pending: ReturnType<typeof setTimeout> | undefined;
    const stop = followRunEvents(runId, {
      onEvents: (batch) => {
        setEvents((old) => old.concat(batch));
        setTypes((old) => {
          const seen = new Set(old);
          for (const e of batch) seen.add(e.type);
          return seen.size === old.length ? old : [...seen].sort();
        });
        // Step views (worker, waiting reason) come from the run; re-read it after news, at most every 250 ms.
        pending ??= setTimeout(() => {
          pending = undefined;
          void refresh();
        }, 250);
      },
      onState: (s) => {
        setStream(s);
        if (s === 'ended') void refresh();
      },
    });
    return () => {
      stop();
      if (pending) clearTimeout(pending);
    };
  }, [runId]);

  const finished = run ? TERMINAL_RUN_STATUSES.has(run.status) : false;
  // While the run goes on: re-read it now and then (a WAITING reason may change with no event) and move the timeline.
  useEffect(() => {
    if (finished) return;
    const timer = setInterval(() => {
      setNow(Date.now());
      void refresh();
    }, 1000);
    return () => clearInterval(timer);
  }, [finished, runId]);

  const bars = useMemo(() => attemptBars(events), [events]);
  if (error) return <p class="error">{error}</p>;
  if (!run) return <p class="muted">Loading run…</p>;
  const stepNames = Object.keys(run.stepDetails);

  const act = async (path: string, body: unknown) => {
    setBusy(true);
    try {
      const r = await api<{ runId?: string }>(`runs/${encodeURIComponent(runId)}/${path}`, { body });
      if (r.runId) navigate(['runs', r.runId]);
      else await refresh();
    } catch (e) {
      setError(String(e));
    } finally {
      setBusy(false);
    }
  };
  const canRetryFailure = run.status === 'FAILURE' || run.status === 'CANCELED';

  return (
    <section class="run">
      <h1>Run <code>{run.runId}</code></h1>
      <p>
        <a href={href(['jobs', run.job])}>{run.job}</a> · <span class={`badge s-${run.status}`} data-testid="run-status">{run.status}</span>
        {' · '}{duration(run.startedAt, run.endedAt)}
        {run.parentRunId && <> · re-execution of <a href={href(['runs', run.parentRunId])}><code>{run.parentRunId.slice(0, 8)}</code></a></>}
        {Object.entries(run.tags).map(([k, v]) => <span key={k} class="tag">{k}={v}</span>)}
      </p>
      {run.status === 'QUEUED' && run.queueReason && <p class="muted" data-testid="queue-reason">Waits: {run.queueReason}</p>}
      {(stream === 'lost' || offline) && <p role="status" class="banner warn">Connection lost, reconnecting…</p>}
      <div class="actions">
        <button type="button" disabled={finished || busy || run.status === 'CANCELING'} onClick={() => void act('cancel', {})}>Cancel</button>
        <button type="button" disabled={!canRetryFailure || busy} onClick={() => void act('reexecute', { fromFailure: true })}>Re-execute from failure</button>
        <button type="button" disabled={!finished || busy} onClick={() => void act('reexecute', {})}>Re-execute all</button>
        <button type="button" disabled={!finished || busy || picked.size === 0} onClick={() => void act('reexecute', { selection: [...picked] })}>
          Re-execute selected ({picked.size})
        </button>
      </div>
      <table class="steps">
        <thead><tr><th /><th>Step</th><th>Status</th><th>Details</th></tr></thead>
        <tbody>
          {stepNames.map((name) => {
            const view = run.stepDetails[name] as StepView;
            return (
              <tr key={name} data-step={name}>
                <td><input type="checkbox" aria-label={`Select ${name}`} checked={picked.has(name)}
                  onChange={(e) => setPicked((p) => { const n = new Set(p); if (e.currentTarget.checked) n.add(name); else n.delete(name); return n; })} /></td>
                <td><button type="button" class="link" title="Show this step's events" onClick={() => setFilter({ ...filter, step: name })}>{name}</button></td>
                <td><span class={`badge s-${view.status}`}>{view.status}</span></td>
                <td><StepDetail view={view} /></td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h2>Timeline</h2>
      <Gantt bars={bars} steps={stepNames} now={finished && run.endedAt ? Date.parse(run.endedAt) : now} />
      <h2>Events</h2>
      <LogView events={events} steps={stepNames} types={types} filter={filter} onFilter={setFilter} />
    </section>
  );
}
