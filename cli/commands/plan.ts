import type { Command } from 'commander';
import { loadInputs, type CommonInput } from '../load-inputs.js';
import { collect } from '../../common/options.js';

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description('print the execution plan: steps in topological order with their dependencies')
    .argument('<job>', 'job file (job.yaml)')
    .option('-s, --select <query>', 'op selection, Dagster syntax (repeatable; unioned)', collect, [])
    .option('--op-selection <query>', 'alias of --select', collect, [])
    .option('-c, --config <file>', 'run config YAML (repeatable; deep-merged in order)', collect, [])
    .option('--json', 'print {"job","ops","steps":[{"key","deps"}]}')
    .action(async (jobPath: string, flags: CommonInput & { json?: boolean }) => {
      const { plan, runConfig } = await loadInputs(jobPath, flags);
      const steps = plan.steps.map((s) => ({ key: s.key, deps: s.upstream }));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ job: plan.job, ops: plan.steps.map((s) => s.op), steps })}\n`);
        return;
      }
      const out: string[] = [`job ${plan.job}: ${plan.steps.length} steps, executor ${runConfig.executor.kind}`];
      for (const s of steps) out.push(`  ${s.key}${s.deps.length ? `  ← ${s.deps.join(', ')}` : ''}`);
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
