import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import type { RunStatus } from '../../src/core/types.js';
import { distributedSection } from '../../src/distributed/recorded-config.js';
import type { RunRecord, RunStore } from '../../src/distributed/run-store.js';
import { REDIS_OPTION, withRunStore } from '../redis-option.js';

const STATUSES: readonly RunStatus[] = ['STARTED', 'CANCELING', 'SUCCESS', 'FAILURE', 'CANCELED'];
const FINISHED: ReadonlySet<RunStatus> = new Set(['SUCCESS', 'FAILURE', 'CANCELED']);

interface RunsFlags {
  redis?: string;
  status?: RunStatus;
  job?: string;
  limit: number;
  json?: boolean;
  prune?: boolean;
}

export function registerRuns(program: Command): void {
  program
    .command('runs')
    .description('recent distributed runs, newest first; --prune removes finished runs now')
    .option(...REDIS_OPTION)
    .option('--status <status>', `only runs with this status (${STATUSES.join(', ')})`, (v: string) => {
      if (!STATUSES.includes(v as RunStatus)) throw new InvalidArgumentError(`expected one of ${STATUSES.join(', ')}`);
      return v as RunStatus;
    })
    .option('--job <name>', 'only runs of this job')
    .option('--limit <n>', 'at most this many runs (default 20)', positiveInt, 20)
    .option('--json', 'print an array of run objects')
    .option('--prune', 'remove the finished runs that match (records, events and outputs) instead of listing them')
    .action(async (flags: RunsFlags) => {
      await withRunStore(flags.redis, async (store) => {
        if (flags.prune) return prune(store, flags);
        const runs = await findRuns(store, flags, flags.limit);
        const counts = await store.stepCounts(runs.map((r) => r.runId));
        const rows = runs.map((r, i) => ({
          runId: r.runId,
          job: r.job,
          status: r.status,
          startedAt: r.startedAt,
          ...(r.endedAt ? { endedAt: r.endedAt } : {}),
          durationSeconds: ((r.endedAt ? Date.parse(r.endedAt) : Date.now()) - Date.parse(r.startedAt)) / 1000,
          steps: counts[i] ?? {},
          ...(r.parentRunId ? { parentRunId: r.parentRunId } : {}),
        }));
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(rows)}\n`);
          return;
        }
        if (rows.length === 0) process.stdout.write('no runs\n');
        for (const r of rows) {
          const steps = Object.entries(r.steps).map(([s, n]) => `${n} ${s.toLowerCase()}`).join(', ');
          process.stdout.write(`${r.runId}  ${r.job.padEnd(20)} ${r.status.padEnd(9)} ${r.startedAt}  ${r.durationSeconds.toFixed(1)}s  ${steps}\n`);
        }
      });
    });
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** Newest first, filtered before the limit is applied (so filters do not shrink the result). */
async function findRuns(store: RunStore, f: RunsFlags, limit: number): Promise<RunRecord[]> {
  const all = await store.listRuns({ limit: 100_000 });
  return all.filter((r) => (!f.status || r.status === f.status) && (!f.job || r.job === f.job)).slice(0, limit);
}

async function prune(store: RunStore, f: RunsFlags): Promise<void> {
  const runs = (await findRuns(store, f, Number.MAX_SAFE_INTEGER)).filter((r) => FINISHED.has(r.status));
  for (const r of runs) {
    await store.deleteRun(r.runId);
    const dir = filesystemOutputs(r);
    if (dir) await rm(join(dir, r.runId), { recursive: true, force: true });
  }
  process.stdout.write(f.json ? `${JSON.stringify({ pruned: runs.map((r) => r.runId) })}\n` : `pruned ${runs.length} finished run(s)\n`);
}

/** Where a run kept outputs on shared storage, if it did (its run config, relative to its job file). */
function filesystemOutputs(r: RunRecord): string | undefined {
  const base = distributedSection(r.runConfig)?.output_storage?.filesystem?.base_dir;
  return base ? resolve(dirname(r.jobPath), base) : undefined;
}
