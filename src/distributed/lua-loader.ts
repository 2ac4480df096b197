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

/** The ioredis command name a script is defined under. */
function scriptName(file: string): string {
  return `baton_${file.replace(/-/g, '_')}`;
}

type ScriptFn = (...args: Array<string | number>) => Promise<unknown>;

/**
 * The one gateway to baton's Lua scripts: each script is registered once per connection with
 * ioredis `defineCommand` (EVALSHA, falling back to EVAL after a script-cache flush) and called
 * as an ordinary command, ordered with the connection's other commands. A script named
 * `<name>-n` takes a variable number of keys: pass their count first.
 */
export function scriptCommand(redis: Redis, file: string): ScriptFn {
  const name = scriptName(file);
  const commands = redis as unknown as Record<string, ScriptFn | undefined>;
  if (!commands[name]) {
    const lua = loadScript(file);
    redis.defineCommand(name, file.endsWith('-n') ? { lua } : { numberOfKeys: keyCount(file), lua });
  }
  return (...args) => (commands[name] as ScriptFn).call(redis, ...args);
}

interface QueuedCall {
  file: string;
  keys: string[];
  args: Array<string | number>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** The hash tag of a key (`{...}`), or the whole key: calls on one tag may share a pipeline, also on a Cluster. */
function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/**
 * Script calls made during one turn of the event loop, sent together: one pipeline per hash tag,
 * so one socket write for many (a coordinator deciding a batch of steps, a worker ending several
 * attempts). Calls keep their order among themselves; each gets its own reply or error.
 */
export function batchedScripts(redis: Redis): (file: string, keys: string[], args: Array<string | number>) => Promise<unknown> {
  let queued: QueuedCall[] = [];
  const flush = (): void => {
    const calls = queued;
    queued = [];
    const groups = new Map<string, QueuedCall[]>();
    for (const c of calls) {
      const tag = hashTagOf(c.keys[0] ?? '');
      const group = groups.get(tag);
      if (group) group.push(c);
      else groups.set(tag, [c]);
    }
    for (const group of groups.values()) {
      const fns = group.map((c) => scriptCommand(redis, c.file)); // defined before the pipeline copies them
      if (group.length === 1) {
        const c = group[0] as QueuedCall;
        (fns[0] as ScriptFn)(...c.keys, ...c.args).then(c.resolve, c.reject);
        continue;
      }
      // A pipeline's script commands queue the call and return the pipeline itself.
      type Queues = (...args: Array<string | number>) => unknown;
      const pipeline = redis.pipeline() as unknown as Record<string, Queues> & { exec(): Promise<Array<[Error | null, unknown]> | null> };
      for (const c of group) (pipeline[scriptName(c.file)] as Queues).call(pipeline, ...c.keys, ...c.args);
      void pipeline.exec().then(
        (results) =>
          group.forEach((c, i) => {
            const [err, value] = results?.[i] ?? [new Error('Redis pipeline aborted'), null];
            if (err) c.reject(err);
            else c.resolve(value);
          }),
        (err: unknown) => group.forEach((c) => c.reject(err)),
      );
    }
  };
  return (file, keys, args) =>
    new Promise<unknown>((resolve, reject) => {
      if (queued.length === 0) setImmediate(flush);
      queued.push({ file, keys, args, resolve, reject });
    });
}
