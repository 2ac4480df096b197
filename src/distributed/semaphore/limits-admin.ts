/** Operator side of the global limits: define, delete and inspect them (`coordinator limits`). */
import type { Redis } from 'ioredis';
import { bucketsFor } from '../../core/tag-limits.js';
import type { TagConcurrencyLimit, Tags } from '../../core/types.js';
import { BatonError } from '../../errors.js';
import { DEFAULT_PREFIX } from '../keys.js';
import { limitKeys } from './limit-keys.js';
import { runScript } from './scripts.js';
import { releaseRunCall } from './slot-calls.js';

export interface LimitSpec {
  key: string;
  value?: string;
  perUniqueValue?: boolean;
}

const SPEC_HELP = 'expected KEY, KEY=VALUE or KEY=* (e.g. database=redshift, database, team=*)';

/**
 * `database=redshift` (key and value), `database` (any value), `team=*` (each value separately).
 * Refused: empty parts, whitespace, a key starting with `run:` (reserved for run-scoped
 * buckets) and values starting with `*` other than `*` itself (they would collide with
 * per-value bucket names).
 */
export function parseLimitSpec(spec: string): LimitSpec {
  const bad = (why: string): BatonError => new BatonError('LIMIT_INVALID', `invalid limit spec "${spec}": ${why}; ${SPEC_HELP}`);
  if (typeof spec !== 'string' || spec.length === 0) throw bad('it is empty');
  if (spec.length > 512) throw bad('it is longer than 512 characters');
  if (/\s/.test(spec)) throw bad('it contains whitespace');
  const eq = spec.indexOf('=');
  const key = eq < 0 ? spec : spec.slice(0, eq);
  if (key.length === 0) throw bad('the tag key is empty');
  if (key.includes('*')) throw bad('the tag key contains "*"');
  if (key.startsWith('run:')) throw bad('keys starting with "run:" are reserved for run-scoped limits');
  if (eq < 0) return { key };
  const value = spec.slice(eq + 1);
  if (value.length === 0) throw bad('the value after "=" is empty');
  if (value === '*') return { key, perUniqueValue: true };
  if (value.startsWith('*')) throw bad('a value may not start with "*" (use KEY=* for one limit per value)');
  return { key, value };
}

export function formatLimitSpec(s: LimitSpec): string {
  if (s.perUniqueValue) return `${s.key}=*`;
  return s.value === undefined ? s.key : `${s.key}=${s.value}`;
}

export function assertLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new BatonError('LIMIT_INVALID', `invalid limit ${String(limit)}: expected an integer >= 0 (0 pauses matching steps)`);
  }
}

/** Defines or changes a global limit; waiting steps see it at once. */
export async function setLimit(redis: Redis, spec: string, limit: number, prefix: string = DEFAULT_PREFIX): Promise<void> {
  const canonical = formatLimitSpec(parseLimitSpec(spec));
  assertLimit(limit);
  const k = limitKeys(prefix);
  await runScript(redis, k, 'setLimit', [k.grantedChannel, k.changedChannel, canonical, limit]);
}

/** Removes a global limit; false if it was not defined. Slots held under it stay counted until released. */
export async function deleteLimit(redis: Redis, spec: string, prefix: string = DEFAULT_PREFIX): Promise<boolean> {
  const canonical = formatLimitSpec(parseLimitSpec(spec));
  const k = limitKeys(prefix);
  return (await runScript(redis, k, 'deleteLimit', [k.grantedChannel, k.changedChannel, canonical])) === 1;
}

export interface LimitView {
  spec: string;
  key: string;
  value: string | null;
  perUniqueValue: boolean;
  limit: number;
  inUse: number;
  /** `KEY=*` limits: slots in use per tag value. */
  byValue?: Record<string, number>;
  holders: Array<{ runId: string; stepKey: string; attempt: number; bucket: string }>;
  /** Steps waiting that match this limit (they may be waiting on another limit too). */
  waiting: number;
}

interface LeaseData {
  buckets?: unknown;
  runId?: string;
  stepKey?: string;
  attempt?: number;
}

function pairs(flat: unknown): Array<[string, string]> {
  const list = Array.isArray(flat) ? (flat as string[]) : [];
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < list.length; i += 2) out.push([list[i] as string, list[i + 1] as string]);
  return out;
}

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** The global limits as defined (no usage): one HGETALL. */
export async function globalLimitDefs(redis: Redis, prefix: string = DEFAULT_PREFIX): Promise<TagConcurrencyLimit[]> {
  const defs = await redis.hgetall(limitKeys(prefix).defs);
  return Object.entries(defs).flatMap(([spec, limit]) => {
    try {
      return [{ ...parseLimitSpec(spec), limit: Number(limit) }];
    } catch {
      return [];
    }
  });
}

/**
 * What a step waits for, in words: every limit it matches with its size — global ones as
 * `coordinator limits list` names them, the run's own as `run limit`.
 */
export function describeLimitsFor(tags: Tags, global: readonly TagConcurrencyLimit[], run: readonly TagConcurrencyLimit[]): string {
  const named = (l: TagConcurrencyLimit): string => formatLimitSpec(l);
  const parts = [
    ...global.filter((l) => bucketsFor(tags, [l]).length > 0).map((l) => `limit ${named(l)} (${l.limit} slot${l.limit === 1 ? '' : 's'})`),
    ...run.filter((l) => bucketsFor(tags, [l]).length > 0).map((l) => `run limit ${named(l)} (${l.limit} slot${l.limit === 1 ? '' : 's'})`),
  ];
  return parts.join(', ');
}

/** Every global limit with its slots in use, holders and waiting steps; dead leases expired first. */
export async function listLimits(redis: Redis, prefix: string = DEFAULT_PREFIX): Promise<LimitView[]> {
  const k = limitKeys(prefix);
  const [defs, used, leases, waiters] = (await runScript(redis, k, 'snapshot', [k.grantedChannel])) as unknown[];
  const usedBy = new Map(pairs(used).map(([bucket, n]) => [bucket, Number(n)]));
  const leaseList = pairs(leases).flatMap(([, json]) => {
    const d = parseJson<LeaseData>(json);
    return d ? [{ ...d, buckets: Array.isArray(d.buckets) ? (d.buckets as string[]) : [] }] : [];
  });
  const waiterTags = pairs(waiters).map(([, json]) => parseJson<{ tags?: Tags }>(json)?.tags ?? {});

  const views: LimitView[] = [];
  for (const [spec, limitText] of pairs(defs).sort(([a], [b]) => a.localeCompare(b))) {
    let parsed: LimitSpec;
    try {
      parsed = parseLimitSpec(spec);
    } catch {
      continue; // not written by setLimit: nothing we can match
    }
    const limit = Number(limitText);
    const perValue = `${parsed.key}=*:`;
    const matches = (bucket: string): boolean => (parsed.perUniqueValue ? bucket.startsWith(perValue) : bucket === spec);
    const view: LimitView = {
      spec,
      key: parsed.key,
      value: parsed.value ?? null,
      perUniqueValue: parsed.perUniqueValue === true,
      limit,
      inUse: 0,
      holders: [],
      waiting: waiterTags.filter((tags) => bucketsFor(tags, [{ ...parsed, limit }]).length > 0).length,
    };
    if (view.perUniqueValue) view.byValue = {};
    for (const [bucket, n] of usedBy) {
      if (!matches(bucket)) continue;
      view.inUse += n;
      if (view.byValue) view.byValue[bucket.slice(perValue.length)] = n;
    }
    for (const l of leaseList) {
      for (const bucket of l.buckets.filter(matches)) {
        view.holders.push({ runId: l.runId ?? '', stepKey: l.stepKey ?? '', attempt: l.attempt ?? 0, bucket });
      }
    }
    views.push(view);
  }
  return views;
}

/** Returns every slot held and drops every waiter queued by one run's steps; how many slots. */
export async function releaseRunSlots(redis: Redis, runId: string, prefix: string = DEFAULT_PREFIX): Promise<number> {
  return releaseRunCall(redis, limitKeys(prefix), runId);
}
