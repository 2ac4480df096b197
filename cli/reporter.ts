import type { RunEvent, StepStatus } from '../src/core/types.js';
import { redactCredentials } from '../src/redact.js';

/**
 * Live progress for a person, on stderr: one line per step transition and op log line, each
 * prefixed with `[done/total]` and, on a terminal, what is running now.
 */
export function createReporter(totalSteps: number, out: NodeJS.WriteStream = process.stderr): (e: RunEvent) => void {
  const tty = out.isTTY === true;
  const color = (code: number, s: string): string => (tty ? `\u001b[${code}m${s}\u001b[0m` : s);
  const running = new Set<string>();
  const started = new Map<string, number>();
  let done = 0;
  const progress = (): string => `[${done}/${totalSteps}]`;
  // From event timestamps, so a replay (`coordinator logs`) shows the real durations.
  const secs = (key: string, e: RunEvent): string => {
    const t = started.get(key);
    return t === undefined ? '' : ` in ${((Date.parse(e.timestamp) - t) / 1000).toFixed(2)}s`;
  };
  const line = (s: string): void => {
    out.write(`${color(90, progress())} ${s}\n`);
  };

  return (e) => {
    const key = e.stepKey ?? '';
    switch (e.type) {
      case 'RUN_START':
      case 'RUN_RESUMED':
        totalSteps = e.stepCount ?? totalSteps;
        done = e.doneCount ?? done;
        line(`run ${e.runId} ${e.type === 'RUN_START' ? 'started' : 'resumed'}: ${e.message ?? ''}`);
        break;
      case 'STEP_START':
        running.add(key);
        started.set(key, Date.parse(e.timestamp));
        line(`${color(36, '▶')} ${key} started${e.attempt && e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}${e.worker ? ` on ${e.worker}` : ''}${tty && running.size > 1 ? color(90, ` — running: ${[...running].join(', ')}`) : ''}`);
        break;
      case 'STEP_SUCCESS':
        running.delete(key);
        done++;
        line(`${color(32, '✔')} ${key} succeeded${secs(key, e)}`);
        break;
      case 'STEP_FAILURE':
        running.delete(key);
        done++;
        line(`${color(31, '✖')} ${key} failed${secs(key, e)}: ${e.error?.message ?? ''}`);
        if (e.error?.stderrTail) for (const l of e.error.stderrTail.trimEnd().split('\n')) out.write(`      ${color(90, l)}\n`);
        break;
      case 'STEP_UP_FOR_RETRY':
        running.delete(key);
        line(`${color(33, '↻')} ${key} ${e.message ?? 'up for retry'}`);
        break;
      case 'STEP_SKIPPED':
        done++;
        line(`${color(90, '○')} ${key} ${e.message ?? 'skipped'}`);
        break;
      case 'STEP_CANCELED':
        running.delete(key);
        done++;
        line(`${color(33, '■')} ${key} canceled`);
        break;
      case 'LOG':
        out.write(`  ${color(90, `${key || 'run'} │`)} ${levelTag(e.level, color)}${e.message ?? ''}${formatFields(e.fields, color)}\n`);
        break;
      case 'RUN_CANCELING':
        line(color(33, e.message ?? 'canceling'));
        break;
      case 'RUN_SUCCESS':
      case 'RUN_FAILURE':
      case 'RUN_CANCELED':
        line(`run ${e.runId} ${e.type === 'RUN_SUCCESS' ? color(32, 'SUCCESS') : e.type === 'RUN_FAILURE' ? color(31, 'FAILURE') : color(33, 'CANCELED')}`);
        break;
    }
  };
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
export function runSummary(r: { runId: string; job: string; status: string; steps: Record<string, StepStatus>; events?: readonly RunEvent[] }): object {
  const summary: Record<string, unknown> = { runId: r.runId, job: r.job, status: r.status, steps: r.steps };
  const errors = stepErrors(r.events ?? [], r.steps);
  if (Object.keys(errors).length > 0) summary.errors = errors;
  return summary;
}

function stepErrors(events: readonly RunEvent[], steps: Record<string, StepStatus>): Record<string, { message: string; stack?: string }> {
  const errors: Record<string, { message: string; stack?: string }> = {};
  for (const e of events) {
    if (e.type !== 'STEP_FAILURE' || !e.stepKey || steps[e.stepKey] !== 'FAILURE') continue;
    const message = redactCredentials(e.error?.message ?? e.message ?? 'failed');
    const stack = e.error?.stack;
    errors[e.stepKey] = { message, ...(stack ? { stack: redactCredentials(stack) } : {}) };
  }
  return errors;
}
