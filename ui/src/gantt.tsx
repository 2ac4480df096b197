/** A timeline of step attempts (Dagster's Gantt chart), from the run's events. */
import type { InstanceEvent } from '../../src/instance/types.js';

interface Bar {
  step: string;
  attempt: number;
  start: number;
  end?: number;
  outcome: string;
}

const ENDS: Record<string, string> = {
  STEP_SUCCESS: 'SUCCESS',
  STEP_FAILURE: 'FAILURE',
  STEP_UP_FOR_RETRY: 'UP_FOR_RETRY',
  STEP_CANCELED: 'CANCELED',
};

export function attemptBars(events: readonly InstanceEvent[]): Bar[] {
  const open = new Map<string, Bar>();
  const bars: Bar[] = [];
  for (const e of events) {
    if (!e.stepKey || (e.type !== 'STEP_START' && !ENDS[e.type])) continue;
    const t = Date.parse(e.timestamp);
    if (e.type === 'STEP_START') {
      const bar: Bar = { step: e.stepKey, attempt: e.attempt ?? 1, start: t, outcome: 'IN_PROGRESS' };
      open.set(e.stepKey, bar);
      bars.push(bar);
    } else if (ENDS[e.type]) {
      const bar = open.get(e.stepKey);
      if (bar) {
        bar.end = t;
        bar.outcome = ENDS[e.type] as string;
        open.delete(e.stepKey);
      }
    }
  }
  return bars;
}

export function Gantt({ bars, steps, now }: { bars: Bar[]; steps: string[]; now: number }) {
  if (bars.length === 0) return <p class="muted">No attempts yet.</p>;
  const t0 = Math.min(...bars.map((b) => b.start));
  const t1 = Math.max(now, ...bars.map((b) => b.end ?? now));
  const span = Math.max(1, t1 - t0);
  const row = 18;
  const label = 160;
  const width = 900;
  const rowOf = new Map(steps.map((s, i) => [s, i]));
  return (
    <svg class="gantt" role="img" aria-label="Timeline of step attempts" viewBox={`0 0 ${width} ${steps.length * row + 20}`} width="100%">
      {steps.map((s, i) => <text key={s} x="4" y={i * row + 13} class="gantt-label">{s}</text>)}
      {bars.map((b) => {
        const x = label + ((b.start - t0) / span) * (width - label - 10);
        const w = Math.max(2, (((b.end ?? now) - b.start) / span) * (width - label - 10));
        const y = (rowOf.get(b.step) ?? 0) * row + 3;
        return (
          <rect key={`${b.step}#${b.attempt}`} class={`bar s-${b.outcome}`} x={x} y={y} width={w} height={row - 6} rx="2">
            <title>{`${b.step} attempt ${b.attempt}: ${b.outcome}, ${((b.end ?? now) - b.start).toFixed(0)} ms`}</title>
          </rect>
        );
      })}
      <text x={label} y={steps.length * row + 15} class="gantt-label">0 s</text>
      <text x={width - 10} y={steps.length * row + 15} class="gantt-label" text-anchor="end">{(span / 1000).toFixed(1)} s</text>
    </svg>
  );
}
