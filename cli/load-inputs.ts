import type { JobDefinition, RunConfig } from '../src/core/types.js';
import { loadJob } from '../src/job/load-job.js';
import { loadRunConfig } from '../src/job/run-config.js';
import { prepareRun, type PreparedRun } from '../src/run/execute-job.js';

export interface CommonInput {
  select?: string[];
  opSelection?: string[];
  config?: string[];
}

/** Job, run config and plan from the command line's files: every input error surfaces here. */
export async function loadInputs(jobPath: string, o: CommonInput): Promise<PreparedRun & { job: JobDefinition; runConfig: RunConfig }> {
  const job = await loadJob(jobPath);
  const runConfig = await loadRunConfig(o.config ?? [], job);
  const select = [...(o.select ?? []), ...(o.opSelection ?? [])];
  const prepared = await prepareRun(job, { select, runConfig });
  return { job, ...prepared };
}
