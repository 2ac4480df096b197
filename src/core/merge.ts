import type { Json, JsonObject } from './types.js';

/** A JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `override` deep-merged over `base`, as Dagster merges config: plain objects merge key by key
 * recursively; arrays, scalars and null replace. Neither argument is modified and the result
 * shares no objects or arrays with them. `undefined` values in `override` count as absent.
 */
export function deepMerge(base: JsonObject, override: JsonObject | undefined): JsonObject {
  const out = cloneJson(base) as JsonObject;
  if (override === undefined) return out;
  for (const key in override) {
    const value = override[key];
    if (!Object.hasOwn(override, key) || value === undefined) continue;
    const prev = Object.hasOwn(out, key) ? out[key] : undefined;
    setOwn(out, key, isJsonObject(prev) && isJsonObject(value) ? deepMerge(prev, value) : cloneJson(value));
  }
  return out;
}

/** A deep copy of a JSON value. */
export function cloneJson(value: Json): Json {
  if (Array.isArray(value)) return value.map(cloneJson);
  if (isJsonObject(value)) {
    const out: JsonObject = {};
    for (const key in value) if (Object.hasOwn(value, key)) setOwn(out, key, cloneJson(value[key] as Json));
    return out;
  }
  return value;
}

/** Plain assignment of `__proto__` (a legal JSON key) would change the prototype instead. */
function setOwn(obj: JsonObject, key: string, value: Json): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}
