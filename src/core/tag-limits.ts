import type { TagConcurrencyLimit, Tags } from './types.js';

/**
 * The limit buckets a step with these tags counts against, as stable names:
 * `database=redshift` (key and value), `heavy` (key only), `team=*:a` (per unique value).
 * Dagster's TagConcurrencyLimitsCounter semantics; pure, shared by every executor.
 */
export interface LimitBucket {
  name: string;
  limit: number;
}

export function bucketsFor(tags: Tags, limits: readonly TagConcurrencyLimit[]): LimitBucket[] {
  const buckets: LimitBucket[] = [];
  for (const l of limits) {
    if (!Object.hasOwn(tags, l.key)) continue;
    const tagValue = tags[l.key] as string;
    if (l.perUniqueValue) buckets.push({ name: `${l.key}=*:${tagValue}`, limit: l.limit });
    else if (l.value === undefined) buckets.push({ name: l.key, limit: l.limit });
    else if (l.value === tagValue) buckets.push({ name: `${l.key}=${l.value}`, limit: l.limit });
  }
  return buckets;
}

/** In-memory per-run slot counts: a step may start only when every bucket it matches has room. */
export class TagConcurrencyCounter {
  private readonly inUse = new Map<string, number>();
  constructor(private readonly limits: readonly TagConcurrencyLimit[]) {}

  get active(): boolean {
    return this.limits.length > 0;
  }

  canStart(tags: Tags): boolean {
    return bucketsFor(tags, this.limits).every((b) => (this.inUse.get(b.name) ?? 0) < b.limit);
  }

  acquire(tags: Tags): void {
    for (const b of bucketsFor(tags, this.limits)) this.inUse.set(b.name, (this.inUse.get(b.name) ?? 0) + 1);
  }

  release(tags: Tags): void {
    for (const b of bucketsFor(tags, this.limits)) {
      const n = (this.inUse.get(b.name) ?? 0) - 1;
      if (n > 0) this.inUse.set(b.name, n);
      else this.inUse.delete(b.name);
    }
  }
}
