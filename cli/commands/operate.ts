import type { Command } from 'commander';
import { driveWithProgress } from '../drive.js';
import { STORAGE_OPTION, withInstance } from '../instance-option.js';
import { collect } from '../../common/options.js';
import { getRunOrFail, REDIS_OPTION, redisUrlOf, withRunStore } from '../redis-option.js';

/** Steps in the stored plan, for the progress display. */
async function stepCount(redis: string | undefined, runId: string): Promise<number> {
  return withRunStore(redis, async (store) => (await getRunOrFail(store, runId)).plan.steps.length);
}

export function registerOperate(program: Command): void {
  program
    .command('cancel')
    .description('cancel a run from any machine: queued steps removed, running steps aborted, slots released')
    .argument('<runId>')
    .option(...REDIS_OPTION)
    .option(...STORAGE_OPTION)
    .option('--json', 'print {"runId","status","by"}')
    .action(async (runId: string, flags: { redis?: string; storage?: string; json?: boolean }) => {
      const r = await withInstance(flags, (instance) => instance.cancelRun(runId));
      const text = r.by === 'nobody (already ended)' ? `run ${runId} had already ended ${r.status}: nothing to cancel` : `run ${runId}: ${r.status} (by ${r.by})`;
      process.stdout.write(flags.json ? `${JSON.stringify({ runId, ...r })}\n` : `${text}\n`);
    });

  program
    .command('resume')
    .description('adopt a run whose coordinator died and finish it (same progress, exit codes and --json as run)')
    .argument('<runId>')
    .option(...REDIS_OPTION)
    .option('--job <path>', 'the job file on this machine (default: the path recorded with the run)')
    .option('--json', 'print one JSON summary object on stdout')
    .option('--verbose', "show a failed step's whole stack (default: its last lines)")
    .action(async (runId: string, flags: { redis?: string; job?: string; json?: boolean; verbose?: boolean }) => {
      const redisUrl = redisUrlOf(flags.redis);
      const total = await stepCount(flags.redis, runId);
      const { resumeRun } = await import('../../src/distributed/operate.js');
      process.exitCode = await driveWithProgress(total, flags.json, (signal, onEvent) =>
        resumeRun(runId, { redisUrl, signal, onEvent, ...(flags.job ? { jobPath: flags.job } : {}) }),
        { verbose: flags.verbose === true },
      );
    });

  program
    .command('reexecute')
    .description('run a finished run again as a new run linked to it; unselected upstream outputs come from the parent')
    .argument('<runId>')
    .option(...REDIS_OPTION)
    .option('--from-failure', 'run the failed, interrupted and not-run steps and everything downstream of them')
    .option('-s, --select <query>', 'run these ops (Dagster syntax; repeatable)', collect, [])
    .option('--job <path>', 'the job file on this machine (default: the path recorded with the run)')
    .option('--json', 'print one JSON summary object on stdout')
    .option('--verbose', "show a failed step's whole stack (default: its last lines)")
    .action(async (runId: string, flags: { redis?: string; fromFailure?: boolean; select: string[]; job?: string; json?: boolean; verbose?: boolean }) => {
      const redisUrl = redisUrlOf(flags.redis);
      const total = await stepCount(flags.redis, runId);
      const { reexecuteRun } = await import('../../src/distributed/operate.js');
      process.exitCode = await driveWithProgress(total, flags.json, (signal, onEvent) =>
        reexecuteRun(runId, {
          redisUrl,
          signal,
          onEvent,
          select: flags.select,
          ...(flags.fromFailure ? { fromFailure: true } : {}),
          ...(flags.job ? { jobPath: flags.job } : {}),
        }),
        { verbose: flags.verbose === true },
      );
    });
}
