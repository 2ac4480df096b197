/**
 * The semaphore's Lua scripts, called through the Lua gateway (lua-loader.ts), with their
 * negative replies mapped to typed errors.
 */
import type { Redis } from 'ioredis';
import { BatonError, type ErrorCode } from '../../errors.js';
import { scriptCommand } from '../lua-loader.js';
import { type LimitKeys, scriptKeys } from './limit-keys.js';

export const SCRIPTS = {
  acquire: 'acquire-8',
  release: 'release-8',
  releaseTake: 'release-take-8',
  releaseRun: 'release-run-8',
  renew: 'renew-8',
  claim: 'claim-8',
  sweep: 'sweep-8',
  setLimit: 'set-limit-8',
  deleteLimit: 'delete-limit-8',
  snapshot: 'snapshot-8',
} as const;
export type ScriptName = keyof typeof SCRIPTS;

/** Expected failures: scripts return small negative integers, mapped here to typed errors. */
const SCRIPT_ERRORS: Readonly<Record<number, { code: ErrorCode; message: string }>> = {
  [-1]: { code: 'LIMIT_INVALID', message: 'a limit must be an integer >= 0' },
  [-2]: { code: 'LIMIT_INVALID', message: 'a limit spec must name a tag key' },
  [-3]: { code: 'LIMIT_INVALID', message: 'malformed slot request' },
};


/** Runs one script with the standard keys; negative integer replies become BatonErrors. */
export async function runScript(
  redis: Redis,
  keys: LimitKeys,
  name: ScriptName,
  args: ReadonlyArray<string | number>,
): Promise<unknown> {
  const reply = await scriptCommand(redis, SCRIPTS[name])(...scriptKeys(keys), ...args);
  if (typeof reply === 'number' && reply < 0) {
    const known = SCRIPT_ERRORS[reply];
    throw new BatonError(known?.code ?? 'LIMIT_INVALID', known?.message ?? `semaphore script ${name} failed (${reply})`);
  }
  return reply;
}
