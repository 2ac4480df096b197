/**
 * The run queue's rules, pure: the order queued runs start in (the `baton/priority` tag, higher
 * first, then submission order, like Dagster's `dagster/priority`), the run-level limits
 * (`max_concurrent_runs`, run tag concurrency limits) and why a queued run waits. The claim
 * script (src/distributed/lua/claim-queued-runs-4.lua) applies the same rules atomically in
 * Redis; `waitReason` explains them to people.
 */
import { bucketsFor } from './tag-limits.js';
import type { TagConcurrencyLimit, Tags } from './types.js';

/** The run tag that orders the queue: an integer, higher first; absent or not an integer: 0. */
export const PRIORITY_TAG = 'baton/priority';

export interface RunQueueConfig {
  /** Runs started from the queue and not ended, at most; null: no cap. */
  maxConcurrentRuns: number | null;
  /** Run tag limits (Dagster's `tag_concurrency_limits`), matched like step tag limits. */
  tagConcurrencyLimits: TagConcurrencyLimit[];
}

export const EMPTY_RUN_QUEUE_CONFIG: RunQueueConfig = { maxConcurrentRuns: null, tagConcurrencyLimits: [] };

/** A run in the queue, in queue order. */
export interface QueuedEntry {
  runId: string;
  job: string;
  tags: Tags;
}

/** A run the queue started and that has not ended yet. */
export interface ActiveEntry {
  runId: string;
  tags: Tags;
}

export function priorityOf(tags: Tags): number {
  const raw = tags[PRIORITY_TAG];
  if (raw === undefined || !/^-?\d{1,15}$/.test(raw.trim())) return 0;
  return Number(raw.trim());
}

/** The sorted-set member of a queued run: submission time first, so equal priorities keep FIFO order. */
export function queueMember(submittedMs: number, runId: string): string {
  return `${String(Math.max(0, Math.floor(submittedMs))).padStart(15, '0')}|${runId}`;
}

export function runIdOfMember(member: string): string {
  return member.slice(member.indexOf('|') + 1);
}

/** The limit a run would exceed if it started now, or undefined when it may start. */
export function blockingLimit(config: RunQueueConfig, active: readonly ActiveEntry[], tags: Tags): string | undefined {
  if (config.maxConcurrentRuns !== null && active.length >= config.maxConcurrentRuns) {
    return `max_concurrent_runs (${config.maxConcurrentRuns}) reached: ${active.length} run${active.length === 1 ? '' : 's'} in progress`;
  }
  const inUse = new Map<string, number>();
  for (const a of active) for (const b of bucketsFor(a.tags, config.tagConcurrencyLimits)) inUse.set(b.name, (inUse.get(b.name) ?? 0) + 1);
  for (const b of bucketsFor(tags, config.tagConcurrencyLimits)) {
    const n = inUse.get(b.name) ?? 0;
    if (n >= b.limit) return `run tag limit ${bucketLabel(b.name)} (${b.limit}) reached: ${n} run${n === 1 ? '' : 's'} in progress`;
  }
  return undefined;
}

/** `team=*:data` (a per-value bucket) reads `team=data (per value)`. */
function bucketLabel(name: string): string {
  const perValue = name.indexOf('=*:');
  return perValue < 0 ? name : `${name.slice(0, perValue)}=${name.slice(perValue + 3)} (per value)`;
}

/**
 * The runs one pass starts, in order: each queued run that fits under the limits (counting the
 * runs picked before it) starts; one held by a tag limit is passed over, so runs behind it with
 * other tags may start (as in Dagster); `max_concurrent_runs` reached stops the pass.
 */
export function pickRuns(config: RunQueueConfig, active: readonly ActiveEntry[], queued: readonly QueuedEntry[], max = Infinity): QueuedEntry[] {
  const running = [...active];
  const picked: QueuedEntry[] = [];
  for (const q of queued) {
    if (picked.length >= max) break;
    if (config.maxConcurrentRuns !== null && running.length >= config.maxConcurrentRuns) break;
    if (blockingLimit(config, running, q.tags) !== undefined) continue;
    picked.push(q);
    running.push({ runId: q.runId, tags: q.tags });
  }
  return picked;
}

/**
 * Why a queued run has not started: a limit the runs in progress fill, the runs ahead of it in
 * the queue that take the room left, or (nothing holds it) that a serve has yet to take it.
 */
export function waitReason(config: RunQueueConfig, active: readonly ActiveEntry[], queued: readonly QueuedEntry[], runId: string): string {
  const running = [...active];
  let ahead = 0;
  for (const q of queued) {
    const blocked = blockingLimit(config, running, q.tags);
    if (q.runId === runId) {
      if (blocked === undefined) return 'waiting for a serve to start it';
      const byActive = blockingLimit(config, active, q.tags);
      if (byActive !== undefined || ahead === 0) return byActive ?? blocked;
      return `behind ${ahead} queued run${ahead === 1 ? '' : 's'} of higher priority or submitted earlier, which take the room left (${blocked.slice(0, blocked.indexOf(' reached'))})`;
    }
    if (blocked === undefined) {
      running.push({ runId: q.runId, tags: q.tags });
      ahead += 1;
    }
  }
  return 'waiting for a serve to start it';
}
