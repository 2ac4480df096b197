import { retryDelayMs } from './retry.js';
import { TagConcurrencyCounter } from './tag-limits.js';
import type { ExecutionPlan, PlanStep, SerializedError, StepStatus, TagConcurrencyLimit } from './types.js';

export interface ActiveExecutionOptions {
  /** 0 = no cap. */
  maxConcurrent: number;
  tagConcurrencyLimits: readonly TagConcurrencyLimit[];
  retriesEnabled: boolean;
  random?: () => number;
  /**
   * Resuming a run: where each step got to before. SUCCESS, FAILURE, SKIPPED and CANCELED are
   * kept; a step that was IN_PROGRESS or UP_FOR_RETRY at attempt n is launched again as attempt n
   * (in progress: the launcher re-attaches to it) or n + 1 (retry due now).
   */
  restore?: Readonly<Record<string, { status: StepStatus; attempt: number }>>;
}

export interface Launch {
  key: string;
  attempt: number;
}

export type FailureResult =
  | { kind: 'retry'; attempt: number; delayMs: number }
  /** `skipped`: downstream steps that can no longer run, in plan order. */
  | { kind: 'failed'; skipped: string[] };

interface StepState {
  step: PlanStep;
  /** Position in the plan: launch order among ready steps. */
  index: number;
  status: StepStatus;
  attempt: number;
  /** Upstream steps not yet succeeded. */
  waitingOn: number;
  /** For UP_FOR_RETRY: epoch ms when the next attempt may start. */
  retryAt: number;
}

/**
 * The run's state machine, Dagster's ActiveExecution: no I/O, no timers, no clock of its own.
 * Steps move NOT_STARTED → IN_PROGRESS → SUCCESS | FAILURE | UP_FOR_RETRY → ...; a failed step
 * skips everything downstream of it. Executors ask what to launch and report what ended.
 */
export class ActiveExecution {
  private readonly states = new Map<string, StepState>();
  private readonly downstream = new Map<string, string[]>();
  private readonly counter: TagConcurrencyCounter;
  /** NOT_STARTED steps whose upstreams all succeeded, and UP_FOR_RETRY steps: what may launch. */
  private readonly ready = new Set<StepState>();
  private readonly retrying = new Set<StepState>();
  /** Whether `ready` iterates in plan order; re-sorted only when a step arrives out of order. */
  private readyOrdered = true;
  private readyMaxIndex = -1;
  private inFlightCount = 0;
  private canceled = false;

  constructor(
    readonly plan: ExecutionPlan,
    private readonly options: ActiveExecutionOptions,
  ) {
    this.counter = new TagConcurrencyCounter(options.tagConcurrencyLimits);
    plan.steps.forEach((step, index) => {
      this.states.set(step.key, { step, index, status: 'NOT_STARTED', attempt: 0, waitingOn: step.upstream.length, retryAt: 0 });
      this.downstream.set(step.key, []);
    });
    for (const step of plan.steps) for (const up of step.upstream) this.downstream.get(up)?.push(step.key);
    if (options.restore) this.restoreFrom(options.restore);
    for (const s of this.states.values()) if (s.status === 'NOT_STARTED' && s.waitingOn === 0) this.makeReady(s);
  }

  private makeReady(s: StepState): void {
    if (s.index < this.readyMaxIndex) this.readyOrdered = false;
    else this.readyMaxIndex = s.index;
    this.ready.add(s);
  }

  /** Ready steps and due retries, in plan order. */
  private candidates(now: number): Iterable<StepState> {
    if (!this.readyOrdered) {
      const sorted = [...this.ready].sort((a, b) => a.index - b.index);
      this.ready.clear();
      for (const s of sorted) this.ready.add(s);
      this.readyOrdered = true;
    }
    let due: StepState[] | undefined;
    for (const s of this.retrying) if (s.retryAt <= now) (due ??= []).push(s);
    return due ? [...this.ready, ...due].sort((a, b) => a.index - b.index) : this.ready;
  }

  private restoreFrom(restore: Readonly<Record<string, { status: StepStatus; attempt: number }>>): void {
    for (const [key, r] of Object.entries(restore)) {
      const s = this.states.get(key);
      if (!s) continue;
      if (r.status === 'SUCCESS') {
        s.status = 'SUCCESS';
        for (const d of this.downstream.get(key) ?? []) this.get(d).waitingOn -= 1;
      } else if (r.status === 'FAILURE' || r.status === 'SKIPPED' || r.status === 'CANCELED') {
        s.status = r.status;
      } else if (r.status === 'IN_PROGRESS') {
        s.attempt = Math.max(0, r.attempt - 1); // takeLaunchable makes it attempt r.attempt again
      } else if (r.status === 'UP_FOR_RETRY') {
        s.status = 'UP_FOR_RETRY';
        s.attempt = r.attempt;
        s.retryAt = 0;
        this.retrying.add(s);
      }
    }
  }

  status(key: string): StepStatus {
    return this.get(key).status;
  }

  statuses(): Record<string, StepStatus> {
    const out: Record<string, StepStatus> = {};
    for (const [key, s] of this.states) out[key] = s.status;
    return out;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Nothing is running and nothing more can start. */
  get isComplete(): boolean {
    if (this.inFlightCount > 0) return false;
    return this.canceled || (this.ready.size === 0 && this.retrying.size === 0);
  }

  /** Earliest time a waiting retry becomes launchable, or undefined. */
  get nextRetryAt(): number | undefined {
    let next: number | undefined;
    for (const s of this.retrying) if (next === undefined || s.retryAt < next) next = s.retryAt;
    return next;
  }

  /**
   * Steps to launch now, in plan order, up to maxConcurrent; a step held back by a tag limit is
   * passed over (not waited on), as Dagster does. Returned steps are IN_PROGRESS.
   */
  takeLaunchable(now: number): Launch[] {
    if (this.canceled) return [];
    const launches: Launch[] = [];
    const cap = this.options.maxConcurrent > 0 ? this.options.maxConcurrent : Infinity;
    for (const s of this.candidates(now)) {
      if (this.inFlightCount >= cap) break;
      if (!this.counter.canStart(s.step.tags)) continue;
      this.counter.acquire(s.step.tags);
      this.ready.delete(s);
      this.retrying.delete(s);
      if (this.ready.size === 0) this.readyMaxIndex = -1;
      s.status = 'IN_PROGRESS';
      s.attempt += 1;
      this.inFlightCount += 1;
      launches.push({ key: s.step.key, attempt: s.attempt });
    }
    return launches;
  }

  succeed(key: string): void {
    const s = this.finish(key);
    s.status = 'SUCCESS';
    for (const d of this.downstream.get(key) ?? []) {
      const ds = this.get(d);
      ds.waitingOn -= 1;
      if (ds.waitingOn === 0 && ds.status === 'NOT_STARTED') this.makeReady(ds);
    }
  }

  /** Records a failed attempt: either it is retried later, or the step fails and skips its downstream. */
  fail(key: string, error: SerializedError, now: number): FailureResult {
    const s = this.finish(key);
    const policy = s.step.retry;
    const retriesUsed = s.attempt - 1;
    if (
      !this.canceled &&
      this.options.retriesEnabled &&
      policy &&
      error.retryable !== false &&
      retriesUsed < policy.maxRetries
    ) {
      const delayMs = retryDelayMs(policy, retriesUsed + 1, this.options.random);
      s.status = 'UP_FOR_RETRY';
      s.retryAt = now + delayMs;
      this.retrying.add(s);
      return { kind: 'retry', attempt: s.attempt + 1, delayMs };
    }
    s.status = 'FAILURE';
    return { kind: 'failed', skipped: this.skipDownstreamOf(key) };
  }

  /** The attempt was stopped by a cancel. */
  cancelStep(key: string): void {
    this.finish(key).status = 'CANCELED';
  }

  /** Stops launching; steps waiting for a retry are canceled. In-flight steps are ended by the caller. */
  cancel(): string[] {
    this.canceled = true;
    const dropped: string[] = [];
    for (const s of [...this.retrying].sort((a, b) => a.index - b.index)) {
      s.status = 'CANCELED';
      dropped.push(s.step.key);
    }
    this.retrying.clear();
    this.ready.clear();
    return dropped;
  }

  get isCanceled(): boolean {
    return this.canceled;
  }

  /** Final run status once complete. */
  runStatus(): 'SUCCESS' | 'FAILURE' | 'CANCELED' {
    if (this.canceled) return 'CANCELED';
    for (const s of this.states.values()) if (s.status !== 'SUCCESS') return 'FAILURE';
    return 'SUCCESS';
  }

  private finish(key: string): StepState {
    const s = this.get(key);
    if (s.status !== 'IN_PROGRESS') throw new Error(`step "${key}" is ${s.status}, not IN_PROGRESS`);
    this.inFlightCount -= 1;
    this.counter.release(s.step.tags);
    return s;
  }

  /** Marks every not-started step downstream of `key` SKIPPED; iterative so deep chains are fine. */
  private skipDownstreamOf(key: string): string[] {
    const skipped = new Set<string>();
    const stack = [...(this.downstream.get(key) ?? [])];
    while (stack.length > 0) {
      const d = stack.pop() as string;
      const s = this.get(d);
      if (skipped.has(d) || s.status !== 'NOT_STARTED') continue;
      s.status = 'SKIPPED';
      this.ready.delete(s);
      skipped.add(d);
      stack.push(...(this.downstream.get(d) ?? []));
    }
    return this.plan.steps.filter((p) => skipped.has(p.key)).map((p) => p.key);
  }

  private get(key: string): StepState {
    const s = this.states.get(key);
    if (!s) throw new Error(`no step "${key}" in the plan`);
    return s;
  }
}

