import type { ErrorCode } from '../errors.js';
import type { Json, SerializedError, StepOutcome } from '../core/types.js';

/** Any thrown value as a plain object that survives JSON, IPC and Redis. */
export function serializeError(value: unknown, depth = 0): SerializedError {
  if (!isErrorLike(value)) return { name: 'Error', message: describe(value) };
  const e = value as Error & Record<string, unknown>;
  const out: SerializedError = {
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' ? e.message : describe(e.message),
  };
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = String(e.code);
  let stack = typeof e.stack === 'string' ? e.stack : undefined;
  // Node's stacks omit the cause chain, which is often the useful part.
  if (e.cause !== undefined && depth < 3) {
    const cause = serializeError(e.cause, depth + 1);
    stack = `${stack ?? `${out.name}: ${out.message}`}\nCaused by: ${cause.stack ?? `${cause.name}: ${cause.message}`}`;
  }
  if (stack !== undefined) out.stack = stack;
  if (typeof e.exitCode === 'number' || e.exitCode === null) out.exitCode = e.exitCode;
  if (typeof e.signal === 'string' || e.signal === null) out.signal = e.signal;
  if (typeof e.stderrTail === 'string') out.stderrTail = e.stderrTail;
  if (typeof e.retryable === 'boolean') out.retryable = e.retryable;
  return out;
}

/** A failed outcome raised by baton itself (not by the op's code). */
export function failure(code: ErrorCode, message: string, extra: Partial<SerializedError> = {}): StepOutcome {
  return { ok: false, error: { name: 'BatonError', message, code, ...extra } };
}

export function canceled(request: { stepKey: string; attempt: number }): StepOutcome {
  return failure('STEP_CANCELED', `step "${request.stepKey}" (attempt ${request.attempt}) was canceled`, {
    retryable: false,
  });
}

/**
 * A deep copy of `value` as JSON, or a TypeError naming the first offending path. Stricter than
 * JSON.stringify, which silently drops functions and symbols and turns NaN into null.
 */
export function toJson(value: unknown): Json {
  return walk(value, '$', new Set());
}

function walk(v: unknown, path: string, seen: Set<object>): Json {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      if (!Number.isFinite(v)) throw notJson(path, String(v));
      return v;
    case 'object':
      break;
    default:
      throw notJson(path, `a ${typeof v}`);
  }
  if (v === null) return null;
  const obj = v as { toJSON?: () => unknown };
  if (typeof obj.toJSON === 'function') return walk(obj.toJSON(), path, seen);
  if (seen.has(v)) throw notJson(path, 'a circular reference');
  if (v instanceof Map || v instanceof Set || v instanceof WeakMap || v instanceof WeakSet || v instanceof Promise) {
    throw notJson(path, `a ${v.constructor.name}`);
  }
  seen.add(v);
  let out: Json;
  if (Array.isArray(v)) {
    out = v.map((item: unknown, i) => (item === undefined ? null : walk(item, `${path}[${i}]`, seen)));
  } else {
    const o: Record<string, Json> = {};
    for (const [k, item] of Object.entries(v)) {
      if (item !== undefined) o[k] = walk(item, `${path}.${k}`, seen);
    }
    out = o;
  }
  seen.delete(v); // shared (non-circular) references are fine
  return out;
}

function notJson(path: string, what: string): TypeError {
  return new TypeError(`${what} at ${path} is not JSON-serialisable`);
}

function isErrorLike(v: unknown): boolean {
  if (v instanceof Error) return true;
  // Errors from other realms (vm, worker) fail instanceof.
  return typeof v === 'object' && v !== null && typeof (v as Error).message === 'string' && 'stack' in v;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return v;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
