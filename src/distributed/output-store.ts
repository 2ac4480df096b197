/** Step outputs shared between workers and the coordinator of a distributed run. */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Json, OutputStorage } from '../core/types.js';
import { BatonError } from '../errors.js';
import { DEFAULT_PREFIX, runKeys } from './keys.js';

export interface OutputStore {
  /** Stores an output directly (outside any attempt: tests, tools). */
  put(runId: string, stepKey: string, output: Json): Promise<void>;
  /** The output's JSON, checked against the size limit; throws like `put` would, before any I/O. */
  serialize(stepKey: string, output: Json): string;
  /**
   * What the run's `:outputs` hash is to hold for JSON from `serialize`: the JSON itself, or
   * (filesystem) a reference to a file written now, named for `attemptId` so that no other
   * attempt's file is ever overwritten. A step attempt's fenced end records it (see RunStore).
   */
  prepare(runId: string, stepKey: string, json: string, attemptId: string): Promise<string>;
  /** Throws when a requested step has no stored output. */
  getMany(runId: string, stepKeys: string[]): Promise<Record<string, Json>>;
}

/** What the `:outputs` hash holds for a step under filesystem storage. */
interface FileReference {
  $file: string;
}

/**
 * - `redis`: the output JSON in the run's `:outputs` hash, refused above `maxBytes`.
 * - `filesystem`: the JSON in `<baseDir>/<runId>/<stepKey>.<attempt id>.json` (written to a temp
 *   file then renamed, so a reader never sees half a file); the hash holds `{"$file": <absolute path>}`.
 */
export function createOutputStore(redis: Redis, storage: OutputStorage, prefix: string = DEFAULT_PREFIX): OutputStore {
  return {
    serialize(stepKey, output) {
      const json = toJson(stepKey, output);
      if (storage.kind === 'redis') checkSize(stepKey, json, storage.maxBytes);
      return json;
    },

    async prepare(runId, stepKey, json, attemptId) {
      if (storage.kind !== 'filesystem') return json;
      const file = outputPath(storage.baseDir, runId, stepKey, attemptId);
      await writeAtomically(file, json);
      return JSON.stringify({ $file: file } satisfies FileReference);
    },

    async put(runId, stepKey, output) {
      const stored = await this.prepare(runId, stepKey, this.serialize(stepKey, output), 'direct');
      await redis.hset(runKeys(runId, prefix).outputs, stepKey, stored);
    },

    async getMany(runId, stepKeys) {
      if (stepKeys.length === 0) return {};
      const values = await redis.hmget(runKeys(runId, prefix).outputs, ...stepKeys);
      const entries = await Promise.all(
        stepKeys.map(async (stepKey, i): Promise<[string, Json]> => {
          const stored = values[i];
          if (stored === null || stored === undefined) {
            throw new BatonError(
              'STEP_LOST',
              `no output stored for step "${stepKey}" of run "${runId}": the step has not succeeded or its output was deleted`,
            );
          }
          const value = JSON.parse(stored) as Json;
          const ref = storage.kind === 'filesystem' ? asReference(value) : null;
          return [stepKey, ref ? await readOutputFile(runId, stepKey, ref.$file) : value];
        }),
      );
      return Object.fromEntries(entries);
    },
  };
}

function toJson(stepKey: string, output: Json): string {
  const json = JSON.stringify(output) as string | undefined;
  if (json === undefined) {
    throw new BatonError('OP_OUTPUT_NOT_JSON', `output of step "${stepKey}" cannot be serialized as JSON`);
  }
  return json;
}

function checkSize(stepKey: string, json: string, maxBytes: number): void {
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes <= maxBytes) return;
  let size = formatBytes(bytes);
  let limit = formatBytes(maxBytes);
  // Rounding can make both read "8 MiB": show the exact counts then.
  if (size === limit) {
    size += ` (${bytes} bytes)`;
    limit += ` (${maxBytes} bytes)`;
  }
  throw new BatonError(
    'OP_OUTPUT_TOO_LARGE',
    `output of step "${stepKey}" is ${size}, over the ${limit} limit of output_storage.redis.max_bytes; ` +
      'use output_storage: { filesystem: { base_dir } } for large outputs',
  );
}

/** 9.1 MiB, 8 MiB, 512 KiB, 100 bytes. */
export function formatBytes(bytes: number): string {
  const units: Array<[string, number]> = [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ];
  for (const [unit, size] of units) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** A file name component that cannot climb out of its directory. */
function safeName(name: string): string {
  return encodeURIComponent(name).replace(/^\./, '%2E');
}

function outputPath(baseDir: string, runId: string, stepKey: string, attemptId: string): string {
  return path.resolve(baseDir, safeName(runId), `${safeName(stepKey)}.${safeName(attemptId)}.json`);
}

async function writeAtomically(file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, content, 'utf8');
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

function asReference(value: Json): FileReference | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const keys = Object.keys(value);
  return keys.length === 1 && typeof value.$file === 'string' ? { $file: value.$file } : null;
}

async function readOutputFile(runId: string, stepKey: string, file: string): Promise<Json> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new BatonError(
      'STEP_LOST',
      `output file of step "${stepKey}" of run "${runId}" is unreadable at ${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return JSON.parse(text) as Json;
}
