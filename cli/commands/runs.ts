import { type Command, InvalidArgumentError } from 'commander';
import { RUN_STATUSES, TERMINAL_RUN_STATUSES } from '../../src/core/status.js';
import type { RunStatus } from '../../src/core/types.js';
import type { Instance, RunSummary, RunsFilter } from '../../src/instance/types.js';
import { STORAGE_OPTION, withInstance } from '../instance-option.js';
import { collect, parseTags } from '../../common/options.js';
import { REDIS_OPTION } from '../redis-option.js';

interface RunsFlags {
  redis?: string;
  storage?: string;
  status?: RunStatus;
  job?: string;
  tag: string[];
  limit: number;
  json?: boolean;
  prune?: boolean;
}

export function registerRuns(program: Command): void {
  program
    .command('runs')
    .description('recent runs, newest first; --prune removes finished runs now')
    .option(...REDIS_OPTION)
    .option(...STORAGE_OPTION)
    .option('--status <status>', `only runs with this status (${RUN_STATUSES.join(', ')})`, (v: string) => {
      if (!RUN_STATUSES.includes(v as RunStatus)) throw new InvalidArgumentError(`expected one of ${RUN_STATUSES.join(', ')}`);
      return v as RunStatus;
    })
    .option('--job <name>', 'only runs of this job')
    .option('--tag <key=value>', 'only runs with this tag (repeatable: every one must match)', collect, [])
    .option('--limit <n>', 'at most this many runs (default 20)', positiveInt, 20)
    .option('--json', 'print an array of run objects')
    .option('--prune', 'remove the finished runs that match (records, events and outputs) instead of listing them')
    .action(async (flags: RunsFlags) => {
      const filter: RunsFilter = {
        ...(flags.status ? { statuses: [flags.status] } : {}),
        ...(flags.job !== undefined ? { job: flags.job } : {}),
        ...(flags.tag.length > 0 ? { tags: parseTags(flags.tag) } : {}),
      };
      await withInstance(flags, async (instance) => {
        if (flags.prune) return prune(instance, filter, flags.json);
        const { runs } = await instance.getRuns({ ...filter, limit: flags.limit });
        const rows = runs.map(row);
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(rows)}\n`);
          return;
        }
        if (rows.length === 0) process.stdout.write('no runs\n');
        for (const r of rows) {
          const steps = Object.entries(r.steps).map(([s, n]) => `${n} ${s.toLowerCase()}`).join(', ');
          process.stdout.write(`${r.runId}  ${r.job.padEnd(20)} ${r.status.padEnd(9)} ${r.startedAt}  ${r.durationSeconds.toFixed(1)}s  ${r.queueReason !== undefined ? `waits: ${r.queueReason}` : steps}\n`);
        }
      });
    });
}

/** The `runs --json` object (a public contract; `tags` added with the runs API). */
function row(r: RunSummary) {
  const startedAt = r.startedAt ?? r.createdAt;
  return {
    runId: r.runId,
    job: r.job,
    status: r.status,
    startedAt,
    ...(r.endedAt ? { endedAt: r.endedAt } : {}),
    durationSeconds: ((r.endedAt ? Date.parse(r.endedAt) : Date.now()) - Date.parse(startedAt)) / 1000,
    steps: r.stepCounts,
    ...(r.parentRunId ? { parentRunId: r.parentRunId } : {}),
    tags: r.tags,
    ...(r.queueReason !== undefined ? { queueReason: r.queueReason } : {}),
  };
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** Every finished run that matches (a running run is never pruned). */
async function prune(instance: Instance, filter: RunsFilter, json: boolean | undefined): Promise<void> {
  const statuses = (filter.statuses ?? [...TERMINAL_RUN_STATUSES]).filter((s) => TERMINAL_RUN_STATUSES.has(s));
  const ids: string[] = [];
  if (statuses.length > 0) {
    let cursor: string | null = null;
    do {
      const page: { runs: RunSummary[]; cursor: string | null } = await instance.getRuns({ ...filter, statuses, limit: 500, ...(cursor ? { cursor } : {}) });
      ids.push(...page.runs.map((r) => r.runId));
      cursor = page.cursor;
    } while (cursor);
  }
  for (const id of ids) await instance.deleteRun(id);
  process.stdout.write(json ? `${JSON.stringify({ pruned: ids })}\n` : `pruned ${ids.length} finished run(s)\n`);
}
