import path from 'node:path';
import type { Instance, RunDetail } from '../src/instance/types.js';
import { BatonError } from '../src/errors.js';
import { redisUrlOf } from './redis-option.js';

export const STORAGE_OPTION = ['--storage <dir>', 'a local instance: runs recorded under this directory (default: $BATON_HOME; else the Redis instance)'] as const;

export interface InstanceFlags {
  redis?: string;
  storage?: string;
}

/**
 * Where the command looks for runs: `--storage DIR` (a local instance), `--redis URL`, else
 * `$BATON_HOME` (local), else the Redis at `$REDIS_URL` or the default.
 */
export function storageDirOf(flags: InstanceFlags): string | undefined {
  if (flags.storage !== undefined && flags.redis !== undefined) throw new BatonError('USAGE', 'give --redis or --storage, not both');
  if (flags.storage !== undefined) return path.resolve(flags.storage);
  if (flags.redis !== undefined) return undefined;
  return process.env.BATON_HOME ? path.resolve(process.env.BATON_HOME) : undefined;
}

/** Opens the instance the flags name, runs `fn`, and always closes it. */
export async function withInstance<T>(flags: InstanceFlags, fn: (instance: Instance) => Promise<T>): Promise<T> {
  const storageDir = storageDirOf(flags);
  // Loaded here, not at start-up: commands that never touch storage stay fast.
  const { openInstance } = await import('../src/instance/open-instance.js');
  const instance = await openInstance(storageDir !== undefined ? { storageDir } : { redis: redisUrlOf(flags.redis) });
  try {
    return await fn(instance);
  } finally {
    await instance.close();
  }
}

/** The run, or RUN_NOT_FOUND saying where to look. */
export async function getRunOrFail(instance: Instance, runId: string, flags: InstanceFlags): Promise<RunDetail> {
  const run = await instance.getRun(runId);
  if (run) return run;
  const dir = storageDirOf(flags);
  throw new BatonError('RUN_NOT_FOUND', dir ? `no run "${runId}" in ${dir} (check --storage or $BATON_HOME, and the run id)` : `no run "${runId}" in this Redis (check --redis and the run id)`);
}
