/** Deep merge of run-config files, and which file a merged value came from. */
import { deepMerge as mergeJson } from '../core/merge.js';
import type { JsonObject } from '../core/types.js';
import { hasPath, isPlainMap, type PathSeg } from './problem.js';

/** Whole files merge like op config (core/merge.ts); a file that is not a map replaces what was there. */
export function deepMerge(base: unknown, over: unknown): unknown {
  return isPlainMap(base) && isPlainMap(over) ? mergeJson(base as JsonObject, over as JsonObject) : over;
}

/**
 * Index of the source that provided the merged value at `path`: later sources win, so it is the
 * last one holding the path; for a missing key, the last one holding its nearest ancestor.
 */
export function sourceOf(values: readonly unknown[], path: readonly PathSeg[]): number {
  for (let len = path.length; len >= 0; len--) {
    const prefix = path.slice(0, len);
    for (let i = values.length - 1; i >= 0; i--) if (hasPath(values[i], prefix)) return i;
  }
  return values.length - 1;
}
