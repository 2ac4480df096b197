/**
 * The `execution.config.distributed` section of a run config as the user wrote it — the form
 * recorded with every distributed run — read and rewritten in one place.
 */
import type { JsonObject } from '../core/types.js';
import { redactRedisUrl } from '../redact.js';

/** The keys read here; the rest of the section is carried along untouched. */
export type DistributedSection = JsonObject & {
  redis?: string;
  retention_days?: number;
  output_storage?: { filesystem?: { base_dir?: string } };
};

export function distributedSection(raw: JsonObject): DistributedSection | undefined {
  const execution = raw.execution as { config?: { distributed?: DistributedSection } } | undefined;
  return execution?.config?.distributed;
}

/** A copy of `raw` whose distributed section is `change(section)` (created when missing). */
export function withDistributed(raw: JsonObject, change: (d: DistributedSection) => DistributedSection): JsonObject {
  const copy = structuredClone(raw);
  const execution = (copy.execution ?? {}) as JsonObject;
  const config = (execution.config ?? {}) as JsonObject;
  copy.execution = { ...execution, config: { ...config, distributed: change(distributedSection(copy) ?? {}) } };
  return copy;
}

/** The run config as it may be shown or stored: a password in the Redis URL replaced by `***`. */
export function redactRunConfig(raw: JsonObject): JsonObject {
  const redis = distributedSection(raw)?.redis;
  return typeof redis === 'string' ? withDistributed(raw, (d) => ({ ...d, redis: redactRedisUrl(redis) })) : structuredClone(raw);
}
