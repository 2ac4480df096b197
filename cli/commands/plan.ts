import type { Command } from 'commander';
import type { Json, RunConfig } from '../../src/core/types.js';
import { redactRunConfig } from '../../src/distributed/recorded-config.js';
import { loadInputs, type CommonInput } from '../load-inputs.js';
import { collect } from '../../common/options.js';

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description('print the execution plan: steps in topological order with their dependencies, and where the executor settings came from')
    .argument('<job>', 'job file (job.yaml)')
    .option('-s, --select <query>', 'op selection, Dagster syntax (repeatable; unioned)', collect, [])
    .option('--op-selection <query>', 'alias of --select', collect, [])
    .option('-c, --config <file>', 'run config YAML (repeatable; deep-merged in order over the job\'s own run_config)', collect, [])
    .option('--json', 'print {"job","ops","steps":[{"key","deps"}],"runConfig"} (runConfig: the merged run config)')
    .action(async (jobPath: string, flags: CommonInput & { json?: boolean }) => {
      const { plan, runConfig } = await loadInputs(jobPath, flags);
      const steps = plan.steps.map((s) => ({ key: s.key, deps: s.upstream }));
      const raw = redactRunConfig(runConfig.raw);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ job: plan.job, ops: plan.steps.map((s) => s.op), steps, runConfig: raw })}\n`);
        return;
      }
      const out: string[] = [`job ${plan.job}: ${plan.steps.length} steps, executor ${runConfig.executor.kind}`];
      const settings = executorSettings(runConfig, raw);
      if (settings.length > 0) out.push(...settings, 'steps:');
      for (const s of steps) out.push(`  ${s.key}${s.deps.length ? `  ← ${s.deps.join(', ')}` : ''}`);
      process.stdout.write(`${out.join('\n')}\n`);
    });
}

/**
 * Which file set the executor and each of its settings (the job's own run config, or a `-c`
 * file); nothing when no file named one (the default executor).
 */
function executorSettings(runConfig: RunConfig, raw: RunConfig['raw']): string[] {
  const kind = runConfig.executor.kind;
  const base = `execution.config.${kind}`;
  const from = runConfig.origins?.[base];
  if (from === undefined) return [];
  const lines = [`executor ${kind}: from ${from}`];
  const execution = raw.execution as { config?: Record<string, Json> } | undefined;
  const section = execution?.config?.[kind];
  if (section && typeof section === 'object' && !Array.isArray(section)) {
    for (const [key, value] of Object.entries(section)) {
      const origin = runConfig.origins?.[`${base}.${key}`];
      lines.push(`  ${key}: ${JSON.stringify(value)}${origin !== undefined ? `  (from ${origin})` : ''}`);
    }
  }
  return lines;
}
