import type { RunEvent, StepStatus } from '../src/core/types.js';
import { WAITING_FOR_WORKER } from '../src/core/status.js';
import { redactCredentials } from '../src/redact.js';
import { createProgressBlock, type ProgressBlock } from './progress-block.js';

/**
 * Live progress for a person. `lines` (piped, `--json`, `logs`): one line per step transition
 * and op log line, each prefixed with `[done/total]`. `compact` (a terminal): step transitions
 * only move a progress block (counts by state, elapsed time, running and waiting steps) redrawn
 * in place; failures, retries, op log lines and notices are printed above it as they happen.
 */
export interface ReporterOptions {
  out?: NodeJS.WriteStream;
  mode?: 'lines' | 'compact';
  /** A failed step's stack: its last lines (default), all of it, or none. */
  stack?: 'tail' | 'full';
}

export interface Reporter {
  (e: RunEvent): void;
  /** Stops redrawing (the block stays as last drawn). */
  close(): void;
}

/** Lines of a stack shown by default; `--verbose` shows them all. */
const STACK_TAIL_LINES = 6;

export function createReporter(totalSteps: number, options: ReporterOptions = {}): Reporter {
  const out = options.out ?? process.stderr;
  const tty = out.isTTY === true;
  const color = (code: number, s: string): string => (tty ? `\u001b[${code}m${s}\u001b[0m` : s);
  const running = new Set<string>();
  const started = new Map<string, number>();
  const counts: Partial<Record<StepStatus, number>> = {};
  const waiting = new Map<string, string>();
  const noWorker = new Set<string>();
  let done = 0;
  const block: ProgressBlock | undefined =
    options.mode === 'compact' ? createProgressBlock(out, () => ({ done, totalSteps, counts, running, started, waiting })) : undefined;
  const progress = (): string => `[${done}/${totalSteps}]`;
  // From event timestamps, so a replay (`coordinator logs`) shows the real durations.
  const secs = (key: string, e: RunEvent): string => {
    const t = started.get(key);
    return t === undefined ? '' : ` in ${((Date.parse(e.timestamp) - t) / 1000).toFixed(2)}s`;
  };
  /** A line that stays: above the block in compact mode. */
  const write = (s: string): void => (block ? block.print(s) : void out.write(s));
  const line = (s: string): void => write(`${color(90, progress())} ${s}\n`);
  /** A step transition: its own line, or (compact) a redraw of the block. */
  const transition = (s: string): void => (block ? block.changed() : line(s));
  const ended = (key: string, status: StepStatus): void => {
    running.delete(key);
    waiting.delete(key);
    counts[status] = (counts[status] ?? 0) + 1;
    done++;
  };

  const report = (e: RunEvent): void => {
    const key = e.stepKey ?? '';
    switch (e.type) {
      case 'RUN_START':
      case 'RUN_RESUMED':
        totalSteps = e.stepCount ?? totalSteps;
        done = e.doneCount ?? done;
        line(`run ${e.runId} ${e.type === 'RUN_START' ? 'started' : 'resumed'}: ${e.message ?? ''}`);
        block?.changed();
        break;
      case 'STEP_START': {
        const where = e.worker ? ` on ${e.worker}` : '';
        if (e.startKind === 'takeover') {
          line(`${color(33, '▶')} ${key} taken over${where} (its worker stopped answering)`);
          break;
        }
        running.add(key);
        waiting.delete(key);
        started.set(key, Date.parse(e.timestamp));
        if (e.startKind === 'resumed') {
          transition(`${color(36, '▶')} ${key} running since ${e.timestamp}${where} (began before this resume)`);
          break;
        }
        transition(
          `${color(36, '▶')} ${key} started${e.attempt && e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}${where}${tty && running.size > 1 ? color(90, ` — running: ${[...running].join(', ')}`) : ''}`,
        );
        break;
      }
      case 'STEP_SUCCESS':
        ended(key, 'SUCCESS');
        transition(`${color(32, '✔')} ${key} succeeded${secs(key, e)}`);
        break;
      case 'STEP_FAILURE':
        ended(key, 'FAILURE');
        line(`${color(31, '✖')} ${key} failed${secs(key, e)}: ${redactCredentials(e.error?.message ?? e.message ?? '')}`);
        writeErrorDetail(e, options.stack ?? 'tail', write, color);
        break;
      case 'STEP_UP_FOR_RETRY':
        running.delete(key);
        line(`${color(33, '↻')} ${key} ${e.message ?? 'up for retry'}`);
        break;
      case 'STEP_SKIPPED':
        ended(key, 'SKIPPED');
        transition(`${color(90, '○')} ${key} ${e.message ?? 'skipped'}`);
        break;
      case 'STEP_CANCELED':
        ended(key, 'CANCELED');
        transition(`${color(33, '■')} ${key} canceled`);
        break;
      case 'LOG':
        // Compact: a step's slot wait shows in the block, not as a line per step.
        if (noteWaiting(e) && block) break;
        // baton's own notices carry their data in fields for status; the message says it all here.
        write(`  ${color(90, `${key || 'run'} │`)} ${levelTag(e.level, color)}${e.message ?? ''}${e.fields && 'waiting' in e.fields ? '' : formatFields(e.fields, color)}\n`);
        break;
      case 'RUN_CANCELING':
        line(color(33, e.message ?? 'canceling'));
        break;
      case 'RUN_SUCCESS':
      case 'RUN_FAILURE':
      case 'RUN_CANCELED':
        block?.close();
        line(`run ${e.runId} ${e.type === 'RUN_SUCCESS' ? color(32, 'SUCCESS') : e.type === 'RUN_FAILURE' ? color(31, 'FAILURE') : color(33, 'CANCELED')}`);
        break;
    }
  };

  /** What holds steps back, for the block: a limit (a step's notice) or no live worker (the run's). True for a step's notice. */
  function noteWaiting(e: RunEvent): boolean {
    if (e.stepKey !== undefined) {
      if (!e.message?.startsWith('waiting for a concurrency slot')) return false;
      if (!running.has(e.stepKey)) waiting.set(e.stepKey, 'a concurrency limit');
      block?.changed();
      return true;
    }
    if (!e.fields || !('waiting' in e.fields)) return false;
    for (const k of noWorker) waiting.delete(k);
    noWorker.clear();
    if (e.fields.waiting === WAITING_FOR_WORKER && Array.isArray(e.fields.steps)) {
      for (const k of e.fields.steps) {
        if (typeof k !== 'string' || running.has(k)) continue;
        waiting.set(k, 'no live worker');
        noWorker.add(k);
      }
    }
    block?.changed();
    return false;
  }

  return Object.assign(report, { close: () => block?.close() });
}

/** Below a failure: the stderr tail of a step process, then the error's stack (its last lines, or all). */
function writeErrorDetail(e: RunEvent, stack: 'tail' | 'full', write: (s: string) => void, color: (c: number, s: string) => string): void {
  const indent = (l: string): string => `      ${color(90, l)}\n`;
  if (e.error?.stderrTail) for (const l of e.error.stderrTail.trimEnd().split('\n')) write(indent(l));
  const frames = stackFrames(e.error?.stack);
  if (frames.length === 0) return;
  const shown = stack === 'full' ? frames : frames.slice(0, STACK_TAIL_LINES);
  for (const l of shown) write(indent(redactCredentials(l)));
  if (shown.length < frames.length) write(indent(`… ${frames.length - shown.length} more (--verbose shows the whole stack)`));
}

/** A stack's frame lines (the message line above them is already printed). */
function stackFrames(stack: string | undefined): string[] {
  if (!stack) return [];
  return stack
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => /^\s+at /.test(l))
    .map((l) => l.trim());
}

/** `key=value` pairs of a structured log line, dimmed. */
function formatFields(fields: RunEvent['fields'], color: (c: number, s: string) => string): string {
  if (!fields) return '';
  const parts = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return parts.length > 0 ? ` ${color(90, parts.join(' '))}` : '';
}

function levelTag(level: RunEvent['level'], color: (c: number, s: string) => string): string {
  if (level === 'warn') return color(33, 'WARN ');
  if (level === 'error' || level === 'fatal') return color(31, 'ERROR ');
  return '';
}

/**
 * The `--json` summary object: a public contract. `errors` (only when a step failed): each failed
 * step's last error.
 */
export function runSummary(r: { runId: string; job: string; status: string; steps: Record<string, StepStatus | string>; events?: readonly RunEvent[] }): object {
  const summary: Record<string, unknown> = { runId: r.runId, job: r.job, status: r.status, steps: r.steps };
  const errors = stepErrors(r.events ?? [], r.steps);
  if (Object.keys(errors).length > 0) summary.errors = errors;
  return summary;
}

function stepErrors(events: readonly RunEvent[], steps: Record<string, StepStatus | string>): Record<string, { message: string; stack?: string }> {
  const errors: Record<string, { message: string; stack?: string }> = {};
  for (const e of events) {
    if (e.type !== 'STEP_FAILURE' || !e.stepKey || steps[e.stepKey] !== 'FAILURE') continue;
    const message = redactCredentials(e.error?.message ?? e.message ?? 'failed');
    const stack = e.error?.stack;
    errors[e.stepKey] = { message, ...(stack ? { stack: redactCredentials(stack) } : {}) };
  }
  return errors;
}
