import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { JobDefinition } from '../core/types.js';
import type { Problem } from '../errors.js';
import { SourceIndex } from './locate.js';
import { parsePath } from './problem.js';

/** The job file as a person would name it: relative to the working directory when inside it. */
export function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

/**
 * Problems found after loading (an op's module or export, say) carry a dotted path into the job
 * file; this gives them the file's display name and the line and column of that path.
 */
export function locateJobProblems(job: JobDefinition, problems: readonly Problem[]): Problem[] {
  let index: SourceIndex | undefined;
  try {
    index = new SourceIndex(readFileSync(job.sourcePath, 'utf8'));
  } catch {
    index = undefined;
  }
  return problems.map((p) => {
    if (p.file !== job.sourcePath || !p.path) return p;
    const pos = index?.position(parsePath(p.path));
    return { ...p, file: displayPath(job.sourcePath), ...(pos ? { line: pos.line, column: pos.column } : {}) };
  });
}
