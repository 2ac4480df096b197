import type { Command } from 'commander';
import { getRunOrFail, STORAGE_OPTION, withInstance } from '../instance-option.js';
import { REDIS_OPTION } from '../redis-option.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('the status of a recorded run (distributed, or local with --storage), from any machine that reaches its storage')
    .argument('<runId>')
    .option(...REDIS_OPTION)
    .option(...STORAGE_OPTION)
    .option('--json', 'print the same object as `run --json`, with the current status')
    .action(async (runId: string, flags: { redis?: string; storage?: string; json?: boolean }) => {
      await withInstance(flags, async (instance) => {
        const run = await getRunOrFail(instance, runId, flags);
        const statuses = Object.fromEntries(Object.entries(run.steps).map(([key, s]) => [key, s.status]));
        if (flags.json) {
          // Additions to the run --json object: what holds WAITING steps back, and failed steps' errors.
          const waiting = Object.fromEntries(Object.entries(run.steps).flatMap(([key, s]) => (s.waiting ? [[key, s.waiting]] : [])));
          const errors = Object.fromEntries(
            Object.entries(run.steps).flatMap(([key, s]) => (s.status === 'FAILURE' && s.error ? [[key, { message: s.error.message, ...(s.error.stack ? { stack: s.error.stack } : {}) }]] : [])),
          );
          const extra = { ...(Object.keys(waiting).length > 0 ? { waiting } : {}), ...(Object.keys(errors).length > 0 ? { errors } : {}) };
          process.stdout.write(`${JSON.stringify({ runId, job: run.job, status: run.status, steps: statuses, ...extra })}\n`);
          return;
        }
        const started = run.startedAt ?? run.createdAt;
        const lines = [`run ${runId}  job ${run.job}  ${run.status}  started ${started}${run.endedAt ? `  ended ${run.endedAt}` : ''}`];
        for (const [key, st] of Object.entries(run.steps)) {
          lines.push(`  ${key.padEnd(24)} ${st.status}${st.attempt > 1 ? ` (attempt ${st.attempt})` : ''}${st.worker ? `  on ${st.worker}` : ''}`);
          if (st.waiting) lines.push(`  ${''.padEnd(24)} ${st.waiting}`);
          if (st.status === 'FAILURE' && st.error) lines.push(`  ${''.padEnd(24)} ${st.error.message}`);
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      });
    });
}
