import { readFileSync } from 'node:fs';

let version: string | undefined;

/** baton's version, from its package.json (next to `src/` in the source tree, or to `dist/`). */
export function batonVersion(): string {
  if (version) return version;
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'baton' && pkg.version) return (version = pkg.version);
    } catch {
      // try the next place
    }
  }
  return (version = 'unknown');
}
