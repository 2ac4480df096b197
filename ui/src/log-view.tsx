/**
 * A run's event log, filterable by step, type and text, virtualized: only the rows in view are
 * in the DOM, so 50,000 lines scroll as smoothly as 50.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { InstanceEvent } from '../../src/instance/types.js';

const ROW_HEIGHT = 22;
const OVERSCAN = 20;

export function eventText(e: InstanceEvent): string {
  if (e.type === 'LOG') return e.message ?? '';
  if (e.error) return e.message && !e.message.includes(e.error.message) ? `${e.error.message} — ${e.message}` : (e.message ?? e.error.message);
  if (e.type === 'STEP_START' && e.worker) return `${e.message ?? 'started'} on ${e.worker}`;
  if (e.type === 'STEP_UP_FOR_RETRY') return `${e.message ?? 'retrying'}${e.retryDelaySeconds !== undefined ? ` in ${e.retryDelaySeconds} s` : ''}`;
  return e.message ?? '';
}

export interface LogFilter {
  step: string;
  type: string;
  text: string;
}

export interface LogViewProps {
  events: InstanceEvent[];
  steps: string[];
  /** The event types seen so far (kept by the caller as events arrive). */
  types: string[];
  filter: LogFilter;
  onFilter(f: LogFilter): void;
}

export function LogView({ events, steps, types, filter, onFilter }: LogViewProps) {
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(480);
  const box = useRef<HTMLDivElement>(null);
  const shown = useMemo(() => {
    const text = filter.text.toLowerCase();
    if (!filter.step && !filter.type && !text) return events;
    return events.filter(
      (e) => (!filter.step || e.stepKey === filter.step) && (!filter.type || e.type === filter.type) && (!text || eventText(e).toLowerCase().includes(text)),
    );
  }, [events, filter]);
  // Scrolled to the end, the log follows new lines (as `tail -f`); scrolled up, it stays put.
  const following = useRef(true);
  useEffect(() => {
    const el = box.current;
    if (el && following.current) el.scrollTop = el.scrollHeight;
  }, [shown.length]);
  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(shown.length, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
  const rows = shown.slice(first, last);

  return (
    <div class="log">
      <div class="toolbar" role="search">
        <label>Step <select aria-label="Filter by step" value={filter.step} onChange={(e) => onFilter({ ...filter, step: e.currentTarget.value })}>
          <option value="">all steps</option>
          {steps.map((s) => <option key={s} value={s}>{s}</option>)}
        </select></label>
        <label>Type <select aria-label="Filter by type" value={filter.type} onChange={(e) => onFilter({ ...filter, type: e.currentTarget.value })}>
          <option value="">all types</option>
          {types.map((t) => <option key={t} value={t}>{t}</option>)}
        </select></label>
        <label>Text <input aria-label="Filter by text" value={filter.text} onInput={(e) => onFilter({ ...filter, text: e.currentTarget.value })} /></label>
        <span class="muted" aria-live="polite">{shown.length === events.length ? `${events.length} events` : `${shown.length} of ${events.length} events`}</span>
      </div>
      <div class="log-rows" ref={box} role="log" aria-label="Event log" style={{ height: `${height}px` }}
        onScroll={(e) => {
          const el = e.currentTarget;
          following.current = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW_HEIGHT;
          setScrollTop(el.scrollTop);
          if (e.currentTarget.clientHeight !== height) setHeight(e.currentTarget.clientHeight);
        }}>
        <div style={{ height: `${shown.length * ROW_HEIGHT}px`, position: 'relative' }}>
          {rows.map((e, i) => (
            // Keyed by place in the window: scrolling reuses the same row nodes, only their text changes.
            <div key={i} class={`log-row t-${e.type}${e.level ? ` l-${e.level}` : ''}`} style={{ top: `${(first + i) * ROW_HEIGHT}px` }}>
              <span class="time">{e.timestamp.slice(11, 23)}</span>
              <span class="type">{e.type}</span>
              <span class="step">{e.stepKey ?? ''}</span>
              <span class="msg">{eventText(e)}</span>
            </div>
          ))}
        </div>
      </div>
    </div>
  );
}
