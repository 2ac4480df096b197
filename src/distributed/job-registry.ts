import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { load } from 'js-yaml';
import type { JobDefinition } from '../core/types.js';
import { BatonError, InputError } from '../errors.js';
import { loadJob } from '../job/load-job.js';

/**
 * A worker's code location: the jobs it loaded itself from `--jobs` paths. Each path is a job
 * file, or a directory searched recursively for YAML files that look like jobs (a top-level
 * `name` and `ops`), so run-config files beside them are passed over.
 */
export async function loadJobRegistry(paths: readonly string[]): Promise<Map<string, JobDefinition>> {
  return (await loadJobLocation(paths, { strict: true })).jobs;
}

/** A job file a worker could not load, with its located problems. */
export interface JobLoadError {
  file: string;
  code: string;
  /** The problems, one per line, located (file:line:column path: message). */
  message: string;
}

/**
 * Like loadJobRegistry, but a bad job file does not stop the others: it is listed in `errors`
 * (unless `strict`, where the first one throws). A path that does not exist always throws.
 */
export async function loadJobLocation(
  paths: readonly string[],
  options: { strict: boolean },
): Promise<{ jobs: Map<string, JobDefinition>; errors: JobLoadError[] }> {
  const jobs = new Map<string, JobDefinition>();
  const errors: JobLoadError[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => {
      throw new InputError('FILE_UNREADABLE', [{ file: path, message: 'no such file or directory (given with --jobs)' }]);
    });
    const files = info.isDirectory() ? await findJobFiles(path) : [path];
    for (const file of files) {
      try {
        const job = await loadJob(file);
        const seen = jobs.get(job.name);
        if (seen && seen.hash !== job.hash) {
          throw new InputError('JOB_INVALID', [
            { file, path: 'name', message: `job "${job.name}" is also defined, differently, in ${seen.sourcePath}` },
          ]);
        }
        jobs.set(job.name, job);
      } catch (e) {
        if (options.strict || !(e instanceof BatonError)) throw e;
        errors.push({ file, code: e.code, message: e.message });
      }
    }
  }
  return { jobs, errors };
}

async function findJobFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    if (e.name.startsWith('.') || e.name === 'node_modules') continue;
    const full = join(dir, e.name);
    if (e.isDirectory()) found.push(...(await findJobFiles(full)));
    else if (/\.ya?ml$/.test(e.name) && (await looksLikeJob(full))) found.push(full);
  }
  return found;
}

/** A job (a top-level `name` and `ops`), or YAML that does not parse: loading it says what is wrong. */
async function looksLikeJob(file: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return true;
  }
  try {
    const doc = load(text) as unknown;
    return typeof doc === 'object' && doc !== null && 'name' in doc && 'ops' in doc;
  } catch {
    return true;
  }
}
