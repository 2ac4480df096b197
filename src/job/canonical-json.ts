/**
 * JSON with object keys in sorted order at every level, for hashing: equal documents give equal
 * text whatever their key order, whitespace or comments. One native JSON.stringify pass; the
 * replacer swaps in a sorted copy only for objects whose keys are not already sorted. (Measured
 * against a JS walk that stringifies sorted subtrees natively, or a sorted view then a plain
 * stringify: no faster.) Integer-like keys still come first, as JSON.stringify always puts them:
 * the order is a function of the key set, so the text stays canonical.
 *
 * YAML aliases (`*name`) share one object, so a small file can expand to billions of nodes:
 * `maxNodes` bounds the walk, and undefined is returned when it is exceeded.
 */
export function canonicalJson(value: unknown, maxNodes: number): string | undefined {
  let left = maxNodes;
  try {
    return JSON.stringify(value, (_key, v: unknown) => {
      if (--left < 0) throw OVER_BUDGET;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
      const keys = Object.keys(v);
      if (isSorted(keys)) return v;
      keys.sort();
      const copy: Record<string, unknown> = {};
      for (const k of keys) {
        const x = (v as Record<string, unknown>)[k];
        if (k === '__proto__') Object.defineProperty(copy, k, { value: x, enumerable: true });
        else copy[k] = x;
      }
      return copy;
    });
  } catch (err) {
    if (err === OVER_BUDGET) return undefined;
    throw err;
  }
}

const OVER_BUDGET = Symbol('over budget');

function isSorted(keys: readonly string[]): boolean {
  for (let i = 1; i < keys.length; i++) if ((keys[i - 1] as string) > (keys[i] as string)) return false;
  return true;
}
