import type { StepStatus } from '../src/core/types.js';

/**
 * The compact live view's block: a few lines at the bottom of a terminal, redrawn in place (at
 * most every REDRAW_MS, and every second for the clock). Lines printed through `print` go above
 * it, so failures and logs scroll while the block stays put.
 *
 *   ▸ 1200/20000 steps · 00:42 · ✔ 1190  ✖ 3  ○ 7 · ▶ 10 running · ⏸ 5 waiting
 *     running: extract_3 (2.1s), extract_4 (0.3s) … +8
 *     waiting: load (a concurrency limit), report (no live worker) … +3
 */
export interface ProgressState {
  done: number;
  totalSteps: number;
  counts: Partial<Record<StepStatus, number>>;
  running: ReadonlySet<string>;
  /** Epoch ms each step started. */
  started: ReadonlyMap<string, number>;
  /** Step -> what holds it back. */
  waiting: ReadonlyMap<string, string>;
}

export interface ProgressBlock {
  /** Something changed: redraw soon. */
  changed(): void;
  /** Writes text that stays, above the block. */
  print(text: string): void;
  /** Draws the block a last time and stops. */
  close(): void;
}

const REDRAW_MS = 100;
const ESC = '\u001b[';

export function createProgressBlock(out: NodeJS.WriteStream, state: () => ProgressState): ProgressBlock {
  const began = Date.now();
  let drawn = 0; // lines of the block on screen now
  let pending: NodeJS.Timeout | undefined;
  let closed = false;
  const clock = setInterval(() => draw(), 1000);
  clock.unref();

  const erase = (): string => (drawn > 0 ? `${ESC}${drawn}A\r${ESC}J` : '');
  const draw = (): void => {
    clearTimeout(pending);
    pending = undefined;
    if (closed) return;
    const lines = render(state(), Date.now() - began, Math.max(20, (out.columns ?? 100) - 1));
    out.write(`${erase()}${lines.join('\n')}\n`);
    drawn = lines.length;
  };

  return {
    changed() {
      if (!closed && pending === undefined) pending = setTimeout(draw, REDRAW_MS);
    },
    print(text) {
      if (closed) return void out.write(text);
      out.write(`${erase()}${text}`);
      drawn = 0;
      draw();
    },
    close() {
      if (closed) return;
      draw();
      closed = true;
      clearInterval(clock);
      clearTimeout(pending);
    },
  };
}

/** The block's lines, each cut to `width` columns (a wrapped line would break the redraw). */
export function render(s: ProgressState, elapsedMs: number, width: number): string[] {
  const n = (status: StepStatus): number => s.counts[status] ?? 0;
  const parts = [`✔ ${n('SUCCESS')}`];
  if (n('FAILURE') > 0) parts.push(`✖ ${n('FAILURE')}`);
  if (n('SKIPPED') > 0) parts.push(`○ ${n('SKIPPED')}`);
  if (n('CANCELED') > 0) parts.push(`■ ${n('CANCELED')}`);
  const head = [`▸ ${s.done}/${s.totalSteps} steps`, clockOf(elapsedMs), parts.join('  '), `▶ ${s.running.size} running`];
  if (s.waiting.size > 0) head.push(`⏸ ${s.waiting.size} waiting`);
  const lines = [head.join(' · ')];
  const now = Date.now();
  if (s.running.size > 0) {
    lines.push(`  running: ${listed([...s.running].map((k) => `${k} (${(((now - (s.started.get(k) ?? now)) / 1000).toFixed(1))}s)`), width - 11)}`);
  }
  if (s.waiting.size > 0) lines.push(`  waiting: ${listed([...s.waiting].map(([k, why]) => `${k} (${why})`), width - 11)}`);
  return lines.map((l) => cut(l, width));
}

function clockOf(ms: number): string {
  const t = Math.floor(ms / 1000);
  const h = Math.floor(t / 3600);
  const mm = String(Math.floor((t % 3600) / 60)).padStart(2, '0');
  const ss = String(t % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** As many items as fit in `room` columns, then "… +N". */
function listed(items: string[], room: number): string {
  let text = '';
  for (let i = 0; i < items.length; i++) {
    const next = text ? `${text}, ${items[i]}` : (items[i] as string);
    const rest = items.length - i - 1;
    if (next.length + (rest > 0 ? ` … +${rest}`.length : 0) > room && text) return `${text} … +${items.length - i}`;
    text = next;
  }
  return text;
}

function cut(line: string, width: number): string {
  return [...line].length <= width ? line : `${[...line].slice(0, width - 1).join('')}…`;
}
