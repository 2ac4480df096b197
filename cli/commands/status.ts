import type { Command } from 'commander';
import { getRunOrFail, REDIS_OPTION, withRunStore } from '../redis-option.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('the status of a distributed run, from any machine that reaches its Redis')
    .argument('<runId>')
    .option(...REDIS_OPTION)
    .option('--json', 'print the same object as `run --json`, with the current status')
    .action(async (runId: string, flags: { redis?: string; json?: boolean }) => {
      await withRunStore(flags.redis, async (store) => {
        const { record, plan, steps } = await getRunOrFail(store, runId);
        const statuses = Object.fromEntries(plan.steps.map((s) => [s.key, steps[s.key]?.status ?? 'NOT_STARTED']));
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ runId, job: record.job, status: record.status, steps: statuses })}\n`);
          return;
        }
        const lines = [`run ${runId}  job ${record.job}  ${record.status}  started ${record.startedAt}${record.endedAt ? `  ended ${record.endedAt}` : ''}`];
        for (const s of plan.steps) {
          const st = steps[s.key];
          lines.push(`  ${s.key.padEnd(24)} ${st?.status ?? 'NOT_STARTED'}${st && st.attempt > 1 ? ` (attempt ${st.attempt})` : ''}${st?.worker ? `  on ${st.worker}` : ''}`);
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      });
    });
}
