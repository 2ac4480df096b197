import type { RunConfig, Tags } from '../core/types.js';
import { InputError } from '../errors.js';

/** The run tag that caps a run's runtime, like Dagster's `dagster/max_runtime`. */
export const MAX_RUNTIME_TAG = 'baton/max_runtime';

/** A run's runtime cap in seconds: the run config's `max_runtime_seconds`, else the `baton/max_runtime` tag. */
export function maxRuntimeOf(runConfig: Pick<RunConfig, 'maxRuntimeSeconds'>, tags: Tags | undefined): number | undefined {
  if (runConfig.maxRuntimeSeconds !== undefined) return runConfig.maxRuntimeSeconds;
  const tag = tags?.[MAX_RUNTIME_TAG];
  if (tag === undefined) return undefined;
  const seconds = Number(tag);
  if (tag.trim() === '' || !(seconds > 0)) {
    throw new InputError('RUN_CONFIG_INVALID', [
      { path: `tags.${MAX_RUNTIME_TAG}`, message: `expected a number of seconds > 0, got "${tag}"` },
    ]);
  }
  return seconds;
}
