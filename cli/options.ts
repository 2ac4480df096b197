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
