/**
 * One evaluation of a sensor: its function loaded through the op module loader (.mjs, .js or
 * .ts, wherever it lives), called with `{ cursor, lastRunKey, log, signal }` under its timeout,
 * and its answer checked: `{ runs: [{ run_key, run_config?, tags? }], cursor?, skip? }`.
 */
import type { Logger } from 'pino';
import type { JsonObject, SensorDefinition, Tags } from '../core/types.js';
import { isJsonObject } from '../core/merge.js';
import { BatonError } from '../errors.js';
import { importModule } from '../executors/op-module.js';

export interface SensorContext {
  /** The cursor the sensor returned last (saved once that tick's runs were recorded). */
  cursor: string | undefined;
  /** The run key of the last run this sensor launched. */
  lastRunKey: string | undefined;
  log: Logger;
  /** Fired when the evaluation runs past its timeout. */
  signal: AbortSignal;
}

export interface SensorRunRequest {
  runKey: string;
  runConfig?: JsonObject;
  tags?: Tags;
}

export interface SensorEvaluation {
  runs: SensorRunRequest[];
  /** Saved after the tick's runs are recorded; absent: unchanged. */
  cursor?: string;
  /** Why nothing is asked for (a SKIPPED tick's reason). */
  skip?: string;
}

const fail = (message: string): BatonError => new BatonError('SENSOR_FAILED', message);

async function sensorFunction(s: SensorDefinition): Promise<(ctx: SensorContext) => unknown> {
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(s.fn.module);
  } catch (e) {
    throw fail(`could not load the sensor's module ${s.fn.ref}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const fn = mod[s.fn.exportName];
  if (typeof fn !== 'function') throw fail(`${s.fn.ref}: the module has no function export "${s.fn.exportName}"`);
  return fn as (ctx: SensorContext) => unknown;
}

/** The function's answer as a `SensorEvaluation`, or SENSOR_FAILED saying what is wrong with it. */
export function checkSensorResult(value: unknown): SensorEvaluation {
  const shape = 'expected the sensor to return { runs: [{ run_key, run_config?, tags? }], cursor?, skip? }';
  if (value === undefined || value === null) return { runs: [] };
  if (!isJsonObject(value)) throw fail(`${shape}, got ${Array.isArray(value) ? 'a list' : typeof value}`);
  const out: SensorEvaluation = { runs: [] };
  const { runs, cursor, skip } = value;
  if (runs !== undefined && runs !== null && !Array.isArray(runs)) throw fail(`${shape}: runs is not a list`);
  for (const [i, r] of (runs ?? []).entries()) {
    if (!isJsonObject(r)) throw fail(`${shape}: runs[${i}] is not an object`);
    if (typeof r.run_key !== 'string' || r.run_key === '') throw fail(`${shape}: runs[${i}].run_key is not a non-empty string`);
    const req: SensorRunRequest = { runKey: r.run_key };
    if (r.run_config !== undefined && r.run_config !== null) {
      if (!isJsonObject(r.run_config)) throw fail(`${shape}: runs[${i}].run_config is not an object`);
      req.runConfig = r.run_config;
    }
    if (r.tags !== undefined && r.tags !== null) {
      if (!isJsonObject(r.tags) || !Object.values(r.tags).every((t) => typeof t === 'string')) throw fail(`${shape}: runs[${i}].tags is not a map of strings`);
      req.tags = r.tags as Tags;
    }
    out.runs.push(req);
  }
  if (cursor !== undefined && cursor !== null) {
    if (typeof cursor !== 'string') throw fail(`${shape}: cursor is not a string (JSON.stringify what you keep in it)`);
    out.cursor = cursor;
  }
  if (skip !== undefined && skip !== null && skip !== false) out.skip = typeof skip === 'string' ? skip : 'skipped by the sensor';
  return out;
}

/** Runs the sensor's function once; throws SENSOR_FAILED (its error, a bad answer, or its timeout). */
export async function evaluateSensor(s: SensorDefinition, ctx: Omit<SensorContext, 'signal'>): Promise<SensorEvaluation> {
  const fn = await sensorFunction(s);
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(fail(`the evaluation took longer than ${s.timeoutSeconds} s (timeout_seconds)`));
    }, s.timeoutSeconds * 1000);
  });
  try {
    const value = await Promise.race([Promise.resolve().then(() => fn({ ...ctx, signal: controller.signal })), timeout]);
    return checkSensorResult(value);
  } catch (e) {
    if (e instanceof BatonError && e.code === 'SENSOR_FAILED') throw e;
    throw fail(e instanceof Error ? e.message : String(e));
  } finally {
    clearTimeout(timer);
  }
}
