/**
 * What the job file's `schedules:` and `sensors:` have in common: a map of named entries, each
 * with an optional run config (inline or `run_config_file:`, not both) checked against the job's
 * ops, with every problem located in the job file.
 */
import * as z from 'zod';
import type { JobDefinition, JobRunConfig, JsonObject, OpDefinition } from '../core/types.js';
import { runConfigFileRefAt, readRunConfigFileSync, type RunConfigFileRef } from './job-run-config.js';
import { NAME_RE, nameHint, tagsSchema } from './job-schema.js';
import { isPlainMap, type PathProblem } from './problem.js';
import { runConfigProblems } from './run-config.js';
import { errorMap, issuesToProblems } from './zod-problems.js';

/** The keys a schedule and a sensor share: how their runs are made, and whether they start running. */
export const launchFields = {
  run_config: z.unknown().optional(),
  run_config_file: z
    .string({ error: 'expected the path of a run-config file, relative to this job file' })
    .min(1, { error: 'expected the path of a run-config file, relative to this job file' })
    .optional(),
  tags: tagsSchema.optional(),
  selection: z.array(z.string({ error: 'expected an op-selection query' }), { error: 'expected a list of op-selection queries' }).optional(),
  status: z.enum(['running', 'stopped'], { error: 'expected "running" or "stopped"' }).optional(),
};

/** Problems of `doc[key]` (a map of name -> entry) as paths in the job file. `ops` undefined: op names are not checked. */
export function namedEntriesProblems(
  doc: Record<string, unknown>,
  key: 'schedules' | 'sensors',
  mapSchema: z.ZodType,
  ops: ReadonlyMap<string, OpDefinition> | undefined,
): PathProblem[] {
  const raw = doc[key];
  if (raw === undefined || raw === null) return [];
  const parsed = mapSchema.safeParse(raw, { error: errorMap });
  const problems = parsed.success ? [] : issuesToProblems(parsed.error.issues, raw, mapSchema).map((p) => ({ ...p, path: [key, ...p.path] }));
  if (!isPlainMap(raw)) return problems;
  const word = key === 'schedules' ? 'schedule' : 'sensor';
  for (const [name, s] of Object.entries(raw)) {
    if (!NAME_RE.test(name)) {
      const hint = nameHint(name);
      const message = `expected a ${word} name made of letters, digits and underscores, got ${JSON.stringify(name)}`;
      problems.push({ path: [key, name], atKey: true, message, ...(hint ? { hint } : {}) });
    }
    if (!isPlainMap(s)) continue;
    if (s.run_config !== undefined && s.run_config !== null && s.run_config_file !== undefined) {
      const hint = 'keep the run config in one place: inline, or in the file';
      problems.push({ path: [key, name, 'run_config_file'], atKey: true, message: 'expected run_config or run_config_file, not both', hint });
    }
    if (!isPlainMap(s.run_config)) continue;
    problems.push(...runConfigProblems(s.run_config, ops).map((p) => ({ ...p, path: [key, name, 'run_config', ...p.path] })));
  }
  return problems;
}

/** Where an entry's run config comes from once the file is checked. */
export interface EntryRunConfig {
  inline?: JobRunConfig;
  file?: RunConfigFileRef;
}

export function entryRunConfig(
  key: 'schedules' | 'sensors',
  name: string,
  entry: { run_config?: unknown; run_config_file?: string | undefined },
  where: { file: string; sourcePath: string; baseDir: string; text: string },
): EntryRunConfig {
  const out: EntryRunConfig = {};
  if (isPlainMap(entry.run_config)) {
    out.inline = { value: entry.run_config as JsonObject, file: where.file, sourcePath: where.sourcePath, path: [key, name, 'run_config'] };
  }
  if (entry.run_config_file !== undefined) {
    out.file = runConfigFileRefAt(entry.run_config_file, [key, name, 'run_config_file'], where.file, where.baseDir, where.text);
  }
  return out;
}

/** Reads each entry's `run_config_file:` (checked against the job's ops) into its definition. */
export function readEntryFiles(files: ReadonlyMap<string, RunConfigFileRef>, defs: ReadonlyMap<string, { runConfig?: JobRunConfig }>, job: JobDefinition): void {
  for (const [name, ref] of files) {
    const def = defs.get(name);
    if (def) def.runConfig = readRunConfigFileSync(ref, job);
  }
}
