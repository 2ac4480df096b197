/**
 * Loads the semaphore's Lua scripts (inlining `-- @include "name"` lines from lua/includes/)
 * and registers them once per connection with ioredis `defineCommand`, which sends EVALSHA
 * and falls back to EVAL after a script-cache flush.
 */
import type { Redis } from 'ioredis';
import { BatonError, type ErrorCode } from '../../errors.js';
import { keyCount, loadScript } from '../lua-loader.js';
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

type ScriptFn = (...args: Array<string | number>) => Promise<unknown>;
const defined = new WeakSet<Redis>();
const commandName = (name: ScriptName): string => `batonLimits_${name}`;

function define(redis: Redis): void {
  if (defined.has(redis)) return;
  for (const [name, file] of Object.entries(SCRIPTS) as Array<[ScriptName, string]>) {
    redis.defineCommand(commandName(name), { numberOfKeys: keyCount(file), lua: loadScript(file) });
  }
  defined.add(redis);
}

/** Runs one script with the standard keys; negative integer replies become BatonErrors. */
export async function runScript(
  redis: Redis,
  keys: LimitKeys,
  name: ScriptName,
  args: ReadonlyArray<string | number>,
): Promise<unknown> {
  define(redis);
  const fn = (redis as unknown as Record<string, ScriptFn>)[commandName(name)] as ScriptFn;
  const reply = await fn.call(redis, ...scriptKeys(keys), ...args);
  if (typeof reply === 'number' && reply < 0) {
    const known = SCRIPT_ERRORS[reply];
    throw new BatonError(known?.code ?? 'LIMIT_INVALID', known?.message ?? `semaphore script ${name} failed (${reply})`);
  }
  return reply;
}
