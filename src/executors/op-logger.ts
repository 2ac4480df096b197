import { createRequire } from 'node:module';
import type pino from 'pino';
import type { JsonObject, LogLevel, OpLogRecord } from '../core/types.js';

const require = createRequire(import.meta.url);

/** Keys pino writes itself or that the logger binds: everything else on a line is a field. */
const RESERVED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'runId', 'op', 'attempt']);

export interface OpLogBindings {
  runId: string;
  op: string;
  attempt: number;
}

/**
 * A pino logger bound to `{runId, op, attempt}` whose lines are parsed back into OpLogRecords
 * and handed to `onLog`. pino is required synchronously and only here, so a step whose op never
 * touches `context.log` does not pay for loading it.
 */
export function createOpLogger(bindings: OpLogBindings, onLog: (record: OpLogRecord) => void): pino.Logger {
  const create = require('pino') as typeof pino;
  const destination = {
    write(line: string): void {
      const record = parseLine(line);
      if (!record) return;
      try {
        onLog(record);
      } catch {
        // A faulty listener must not break the op that logged.
      }
    },
  };
  return create({ level: 'trace', base: { ...bindings } }, destination);
}

export function parseLine(line: string): OpLogRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const obj = parsed as JsonObject;
  const fields: JsonObject = {};
  let any = false;
  for (const [k, v] of Object.entries(obj)) {
    if (RESERVED.has(k)) continue;
    fields[k] = v;
    any = true;
  }
  const record: OpLogRecord = {
    level: levelName(obj.level),
    msg: typeof obj.msg === 'string' ? obj.msg : '',
    time: typeof obj.time === 'number' ? obj.time : Date.now(),
  };
  if (any) record.fields = fields;
  return record;
}

function levelName(level: unknown): LogLevel {
  const n = typeof level === 'number' ? level : 30;
  if (n >= 60) return 'fatal';
  if (n >= 50) return 'error';
  if (n >= 40) return 'warn';
  if (n >= 30) return 'info';
  if (n >= 20) return 'debug';
  return 'trace';
}
