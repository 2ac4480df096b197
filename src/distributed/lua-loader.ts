/**
 * Reads Lua scripts from src/distributed/lua/ (copied next to the compiled code by the build),
 * inlining `-- @include "name"` lines from lua/includes/, each include at most once.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

const INCLUDE = /^--\s*@include\s+"([\w-]+)"\s*$/gm;
const sources = new Map<string, string>();

function readLua(relative: string): string {
  return readFileSync(new URL(`./lua/${relative}.lua`, import.meta.url), 'utf8');
}

/** A script's text with includes inlined (depth first). */
export function loadScript(file: string): string {
  const cached = sources.get(file);
  if (cached !== undefined) return cached;
  const seen = new Set<string>();
  const expand = (text: string): string =>
    text.replace(INCLUDE, (_line, name: string) => {
      if (seen.has(name)) return '';
      seen.add(name);
      return expand(readLua(`includes/${name}`));
    });
  const text = expand(readLua(file));
  sources.set(file, text);
  return text;
}

/** Number of keys a script takes, from its file name `<name>-<numberOfKeys>`. */
export function keyCount(file: string): number {
  return Number(file.slice(file.lastIndexOf('-') + 1));
}

type ScriptFn = (...args: Array<string | number>) => Promise<unknown>;

/**
 * The one gateway to baton's Lua scripts: each script is registered once per connection with
 * ioredis `defineCommand` (EVALSHA, falling back to EVAL after a script-cache flush) and called
 * as an ordinary command, ordered with the connection's other commands. A script named
 * `<name>-n` takes a variable number of keys: pass their count first.
 */
export function scriptCommand(redis: Redis, file: string): ScriptFn {
  const name = `baton_${file.replace(/-/g, '_')}`;
  const commands = redis as unknown as Record<string, ScriptFn | undefined>;
  if (!commands[name]) {
    const lua = loadScript(file);
    redis.defineCommand(name, file.endsWith('-n') ? { lua } : { numberOfKeys: keyCount(file), lua });
  }
  return (...args) => (commands[name] as ScriptFn).call(redis, ...args);
}
