import type { Command } from 'commander';
import type { RunConfig } from '../../src/core/types.js';
import { redactRunConfig } from '../../src/distributed/recorded-config.js';
import { InputError, type Problem } from '../../src/errors.js';
import { loadJob } from '../../src/job/load-job.js';
import { loadRunConfig } from '../../src/job/run-config.js';
import { verifyJobOps } from '../../src/run/execute-job.js';
import { redactProblems } from '../../common/exit-codes.js';
import { collect } from '../../common/options.js';

interface ValidateFlags {
  config: string[];
  json?: boolean;
}

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description("check a job file, its run config and its ops' code (exit 0, or 2 listing every problem)")
    .argument('<job>', 'job file (job.yaml)')
    .option('-c, --config <file>', 'run config YAML (repeatable; deep-merged in order over the job\'s own run_config)', collect, [])
    .option('--json', 'print {"ok","runConfig","problems"} (runConfig: the merged run config, null when it has problems)')
    .action(async (jobPath: string, flags: ValidateFlags) => {
      let runConfig: RunConfig | undefined;
      const problems: Problem[] = [];
      let code: InputError['code'] | undefined;
      const check = async <T>(fn: () => T | Promise<T>): Promise<T | undefined> => {
        try {
          return await fn();
        } catch (e) {
          if (!(e instanceof InputError)) throw e;
          code ??= e.code;
          problems.push(...e.problems);
          return undefined;
        }
      };
      const job = await check(() => loadJob(jobPath)); // nothing else can be checked without the job
      if (job) {
        // Run config and the ops' code are checked independently, so every problem shows.
        runConfig = await check(() => loadRunConfig(flags.config, job));
        await check(() => verifyJobOps(job, job.ops.keys()));
        // No plan is built: with every op selected no input can be missing, and loading the job
        // already refused cycles and unknown ops, so the plan of a loaded job always holds.
      }
      if (flags.json) {
        const ok = code === undefined;
        const shown = runConfig ? redactRunConfig(runConfig.raw) : null;
        process.stdout.write(`${JSON.stringify({ ok, runConfig: shown, problems: redactProblems(problems) })}\n`);
      }
      if (code) throw new InputError(code, problems);
      if (flags.json || !job) return;
      process.stdout.write(
        `ok: job "${job.name}" (${job.ops.size} ops, ${job.ops.size} planned), executor ${runConfig?.executor.kind}\n`,
      );
    });
}
