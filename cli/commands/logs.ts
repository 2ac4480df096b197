import type { Command } from 'commander';
import { isFinalRunEvent } from '../../src/core/status.js';
import type { RunEvent } from '../../src/core/types.js';
import type { InstanceEvent } from '../../src/instance/types.js';
import { getRunOrFail, STORAGE_OPTION, withInstance } from '../instance-option.js';
import { REDIS_OPTION } from '../redis-option.js';
import { createReporter } from '../reporter.js';

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("print a recorded run's events and op logs (distributed, or local with --storage), from any machine that reaches its storage")
    .argument('<runId>')
    .option(...REDIS_OPTION)
    .option(...STORAGE_OPTION)
    .option('-f, --follow', 'keep printing new events until the run ends')
    .option('--json', 'one JSON event per line')
    .action(async (runId: string, flags: { redis?: string; storage?: string; follow?: boolean; json?: boolean }) => {
      await withInstance(flags, async (instance) => {
        const run = await getRunOrFail(instance, runId, flags);
        // A record of what happened: every line, and each failure's whole stack.
        const human = createReporter(Object.keys(run.steps).length, { out: process.stdout, mode: 'lines', stack: 'full' });
        /** Prints one event; true once the run's last event is printed. */
        const print = ({ cursor: _cursor, ...event }: InstanceEvent): boolean => {
          if (event.type === 'STEP_ATTEMPT_END') return false; // the coordinator's decision follows it
          if (flags.json) process.stdout.write(`${JSON.stringify(event satisfies RunEvent)}\n`);
          else human(event);
          return isFinalRunEvent(event);
        };
        if (flags.follow) {
          for await (const e of instance.watchEvents(runId)) if (print(e)) return;
          return;
        }
        let after: string | undefined;
        for (;;) {
          const page = await instance.getEvents(runId, { limit: 10_000, ...(after !== undefined ? { after } : {}) });
          for (const e of page.events) if (print(e)) return;
          if (page.events.length === 0) return;
          after = page.cursor ?? undefined;
        }
      });
    });
}
