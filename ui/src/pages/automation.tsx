/** Schedules and Sensors: each with its on/off switch, its next ticks (schedules), and its recent ticks with their runs, skip reasons and errors. */
import type { TickRecord } from '../../../src/automation/tick-store.js';
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { href } from '../router.js';
import { usePoll } from './fleet.js';

/** Schedule and sensor run ids share a prefix (`sched-`, `sensor-`): shown without it. */
const runLink = (runId: string) => <a href={href(['runs', runId])}><code>{runId.replace(/^(sched|sensor)-/, '').slice(0, 8)}</code></a>;

interface Common {
  id: string;
  job: string;
  name: string;
  status: 'running' | 'stopped';
  defaultStatus: 'running' | 'stopped';
  ticks: TickRecord[];
  /** Runs launched, newest first. */
  launched: Array<{ runId: string; tickTime: string; runKey?: string }>;
}

interface ScheduleRow extends Common {
  cron: string;
  timezone: string;
  catchup: string;
  nextTicks: string[];
}

interface SensorRow extends Common {
  fn: string;
  intervalSeconds: number;
  cursor: string | null;
  lastRunKey: string | null;
}

type Kind = 'schedules' | 'sensors';

function StatusSwitch({ kind, row, onChange }: { kind: Kind; row: Common; onChange(): void }) {
  const [error, setError] = useState<string | null>(null);
  const running = row.status === 'running';
  const flip = async () => {
    try {
      await api(`${kind}/${encodeURIComponent(row.job)}/${encodeURIComponent(row.name)}/${running ? 'stop' : 'start'}`, { method: 'POST', body: {} });
      setError(null);
    } catch (e) {
      setError(String(e));
    }
    onChange();
  };
  return (
    <>
      <button type="button" role="switch" aria-checked={running} aria-label="Running" class={`switch${running ? ' on' : ''}`} onClick={() => void flip()}>
        {running ? 'Running' : 'Stopped'}
      </button>
      {error && <div class="error">{error}</div>}
    </>
  );
}

function Ticks({ ticks }: { ticks: TickRecord[] }) {
  if (ticks.length === 0) return <span class="muted">no ticks yet</span>;
  return (
    <table class="ticks" aria-label="Ticks">
      <tbody>
        {ticks.map((t) => (
          <tr key={t.tickTime} data-tick-status={t.status}>
            <td>{new Date(t.tickTime).toLocaleString()}</td>
            <td><span class={`badge s-${t.status}`}>{t.status}</span></td>
            <td>
              {t.runIds.map((id, i) => <span key={id}>{runLink(id)}{t.runKeys?.[i] ? <span class="muted"> {t.runKeys[i]}</span> : null} </span>)}
              {t.status === 'SKIPPED' && t.reason && <span class="muted">{t.reason}</span>}
              {t.status === 'FAILURE' && t.error && <span class="error">{t.error}</span>}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function AutomationPage<R extends Common>({ kind, title, describe, empty }: { kind: Kind; title: string; describe(row: R): ComponentChildren; empty: string }) {
  const { data, error, reload } = usePoll<Record<Kind, R[]>>(kind);
  const rows = data?.[kind];
  return (
    <section>
      <h1>{title}</h1>
      {error && <p class="error">{error}</p>}
      {rows && rows.length === 0 && <p>{empty}</p>}
      {rows && rows.length > 0 && (
        <table>
          <thead><tr><th>Name</th><th>Status</th><th>Definition</th><th>Runs launched</th><th>Recent ticks</th></tr></thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id} data-id={r.id}>
                <td><strong>{r.name}</strong><br /><span class="muted">{r.job}</span></td>
                <td><StatusSwitch kind={kind} row={r} onChange={reload} /></td>
                <td>{describe(r)}</td>
                <td>
                  {r.launched.length === 0 ? <span class="muted">none yet</span> : (
                    <ul aria-label="Runs launched">{r.launched.map((l) => <li key={l.runId}>{runLink(l.runId)} {l.runKey ?? new Date(l.tickTime).toLocaleTimeString()}</li>)}</ul>
                  )}
                </td>
                <td><Ticks ticks={r.ticks} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function SchedulesPage() {
  return (
    <AutomationPage<ScheduleRow>
      kind="schedules"
      title="Schedules"
      empty="No schedules in these jobs. Declare one under schedules: in a job file."
      describe={(s) => (
        <>
          <code>{s.cron}</code> {s.timezone} <span class="muted">catchup: {s.catchup}</span>
          <div>Next ticks:<ul aria-label="Next ticks">{s.nextTicks.map((t) => <li key={t}><code>{t}</code></li>)}</ul></div>
        </>
      )}
    />
  );
}

export function SensorsPage() {
  return (
    <AutomationPage<SensorRow>
      kind="sensors"
      title="Sensors"
      empty="No sensors in these jobs. Declare one under sensors: in a job file."
      describe={(s) => (
        <>
          <code>{s.fn}</code> every {s.intervalSeconds} s
          <div class="muted">cursor: {s.cursor ?? '-'} · last run key: {s.lastRunKey ?? '-'}</div>
        </>
      )}
    />
  );
}
