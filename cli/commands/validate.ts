import type { Command } from 'commander';
import { InputError, type Problem } from '../../src/errors.js';
import { loadJob } from '../../src/job/load-job.js';
import { loadRunConfig } from '../../src/job/run-config.js';
import { buildPlan } from '../../src/core/plan.js';
import { verifyJobOps } from '../../src/run/execute-job.js';
import { collect } from '../../common/options.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description("check a job file, its run config and its ops' code (exit 0, or 2 listing every problem)")
    .argument('<job>', 'job file (job.yaml)')
    .option('-c, --config <file>', 'run config YAML (repeatable; deep-merged in order)', collect, [])
    .action(async (jobPath: string, flags: { config: string[] }) => {
      const job = await loadJob(jobPath); // nothing else can be checked without the job
      const problems: Problem[] = [];
      let code: InputError['code'] | undefined;
      const check = async (fn: () => unknown): Promise<unknown> => {
        try {
          return await fn();
        } catch (e) {
          if (!(e instanceof InputError)) throw e;
          code ??= e.code;
          problems.push(...e.problems);
          return undefined;
        }
      };
      // Run config, the ops' code and the plan are checked independently, so every problem shows.
      const runConfig = (await check(() => loadRunConfig(flags.config, job))) as Awaited<ReturnType<typeof loadRunConfig>> | undefined;
      await check(() => verifyJobOps(job, job.ops.keys()));
      const plan = runConfig ? ((await check(() => buildPlan(job, undefined, runConfig))) as ReturnType<typeof buildPlan> | undefined) : undefined;
      if (code) throw new InputError(code, problems);
      process.stdout.write(
        `ok: job "${job.name}" (${job.ops.size} ops, ${plan?.steps.length ?? 0} planned), executor ${runConfig?.executor.kind}\n`,
      );
    });
}
