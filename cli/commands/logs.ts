import type { Command } from 'commander';
import type { RunEvent } from '../../src/core/types.js';
import { getRunOrFail, REDIS_OPTION, withRunStore } from '../redis-option.js';
import { createReporter } from '../reporter.js';

const FINAL: ReadonlySet<RunEvent['type']> = new Set(['RUN_SUCCESS', 'RUN_FAILURE', 'RUN_CANCELED']);

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("print a distributed run's events and op logs, from any machine that reaches its Redis")
    .argument('<runId>')
    .option(...REDIS_OPTION)
    .option('-f, --follow', 'keep printing new events until the run ends')
    .option('--json', 'one JSON event per line')
    .action(async (runId: string, flags: { redis?: string; follow?: boolean; json?: boolean }) => {
      await withRunStore(flags.redis, async (store) => {
        const { plan } = await getRunOrFail(store, runId);
        const human = createReporter(plan.steps.length, process.stdout);
        let after: string | undefined;
        for (;;) {
          const batch = await store.readEvents(runId, after, flags.follow ? { blockMs: 1000, count: 500 } : { count: 10_000 });
          for (const { id, event } of batch) {
            after = id;
            if (event.type === 'STEP_ATTEMPT_END') continue; // the coordinator's decision follows it
            if (flags.json) process.stdout.write(`${JSON.stringify(event)}\n`);
            else human(event);
            if (FINAL.has(event.type)) return;
          }
          if (!flags.follow && batch.length === 0) return;
        }
      });
    });
}
