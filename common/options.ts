import { InvalidArgumentError } from 'commander';
import { BatonError } from '../src/errors.js';

/** Commander accumulator for repeatable options (`-s a -s b`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--tag k=v` pairs into a tag map; a malformed pair is a usage error. */
export function parseTags(pairs: readonly string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new BatonError('USAGE', `--tag expects key=value, got "${pair}"`);
    tags[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return tags;
}

/** Commander parser for a flag that takes a positive number (or, with `integer`, a positive integer). */
export function positive(name: string, integer = true) {
  return (v: string): number => {
    const n = Number(v);
    if (!(n > 0) || (integer && !Number.isInteger(n))) throw new InvalidArgumentError(`${name} must be a positive ${integer ? 'integer' : 'number'}`);
    return n;
  };
}

/** A code location: the `--jobs` paths given, else `$BATON_JOBS` (colon-separated). */
export function jobPathsOf(flags: readonly string[]): string[] {
  return flags.length > 0 ? [...flags] : (process.env.BATON_JOBS ?? '').split(':').filter(Boolean);
}
