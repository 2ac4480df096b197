/**
 * The UI's code location: the jobs found under its `--jobs` paths, re-read when a file changes
 * (like `dagster dev`). A file that no longer loads keeps its place, under the job's last known
 * name, with its located problems, instead of vanishing.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { load } from 'js-yaml';
import type { JobDefinition } from '../core/types.js';
import { InputError, type Problem } from '../errors.js';
import { displayPath } from '../job/locate-job-problems.js';
import { loadJob } from '../job/load-job.js';

export interface CatalogEntry {
  /** The job's name (last known for a file that no longer loads; else the file's base name). */
  name: string;
  file: string;
  job?: JobDefinition;
  /** Why the file does not load, located in it. */
  problems?: Problem[];
}

interface FileState {
  stamp: string;
  entry: CatalogEntry;
}

export class JobCatalog {
  private readonly files = new Map<string, FileState>();
  private refreshing: Promise<void> | undefined;

  constructor(private readonly paths: readonly string[]) {}

  /** Every job, re-reading the files that changed since the last call. */
  async list(): Promise<CatalogEntry[]> {
    await this.refresh();
    const entries = [...this.files.values()].map((f) => f.entry);
    return entries.sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<CatalogEntry | undefined> {
    return (await this.list()).find((e) => e.name === name);
  }

  private refresh(): Promise<void> {
    // Concurrent requests share one pass over the files.
    this.refreshing ??= this.scan().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async scan(): Promise<void> {
    const found = new Set<string>();
    for (const path of this.paths) {
      const info = await stat(path).catch(() => undefined);
      const files = info?.isDirectory() ? await findJobFiles(path) : [path];
      for (const f of files) found.add(resolve(f));
    }
    for (const file of this.files.keys()) if (!found.has(file)) this.files.delete(file);
    for (const file of found) {
      const info = await stat(file).catch(() => undefined);
      const stamp = info ? `${info.mtimeMs}:${info.size}` : 'missing';
      const known = this.files.get(file);
      if (known?.stamp === stamp) continue;
      this.files.set(file, { stamp, entry: await loadEntry(file, known?.entry.name) });
    }
  }
}

async function loadEntry(file: string, lastName: string | undefined): Promise<CatalogEntry> {
  try {
    const job = await loadJob(file);
    return { name: job.name, file: displayPath(file), job };
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    const name = lastName ?? (await nameInFile(file)) ?? basename(file).replace(/\.ya?ml$/, '');
    return { name, file: displayPath(file), problems: e.problems };
  }
}

async function nameInFile(file: string): Promise<string | undefined> {
  try {
    const doc = load(await readFile(file, 'utf8')) as { name?: unknown } | null;
    return typeof doc?.name === 'string' ? doc.name : undefined;
  } catch {
    return undefined;
  }
}

/** YAML files under `dir` that look like jobs (a top-level `name` and `ops`), so run configs beside them are passed over. */
async function findJobFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (e.name.startsWith('.') || e.name === 'node_modules') continue;
    const full = join(dir, e.name);
    if (e.isDirectory()) found.push(...(await findJobFiles(full)));
    else if (/\.ya?ml$/.test(e.name) && (await looksLikeJob(full))) found.push(full);
  }
  return found;
}

async function looksLikeJob(file: string): Promise<boolean> {
  const text = await readFile(file, 'utf8').catch(() => '');
  // A file that no longer parses is still a job if it once was one; a quick look at its keys suffices.
  return /^name\s*:/m.test(text) && /^ops\s*:/m.test(text);
}
