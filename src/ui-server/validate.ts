/**
 * The Launchpad's checks: the same as `coordinator validate` (run config, the ops' code, the
 * plan) plus the op selection, with each problem located in the YAML text that was sent.
 */
import type { JobDefinition, JsonObject, RunConfig } from '../core/types.js';
import { buildPlan } from '../core/plan.js';
import { selectOps } from '../core/selection.js';
import { InputError, type Problem } from '../errors.js';
import { resolveRunConfigText } from '../job/run-config.js';
import { verifyJobOps } from '../run/execute-job.js';

/** What `/api/validate` answers (a public contract). */
export interface ValidateAnswer {
  ok: boolean;
  selectedOps: string[];
  problems: ApiProblem[];
}

export interface ApiProblem {
  message: string;
  path?: string;
  line?: number;
  column?: number;
  hint?: string;
  file?: string;
}

export interface ValidateRequest {
  selection?: string[];
  /** YAML text; absent or empty: the defaults. */
  runConfig?: string;
}

/** The name problems in the Launchpad's text carry, as a file name does on the CLI. */
export const RUN_CONFIG_LABEL = 'run config';

export interface Validated extends ValidateAnswer {
  /** The parsed run config, as sent (when it is valid). */
  runConfig?: JsonObject;
}

export async function validateLaunch(job: JobDefinition, request: ValidateRequest): Promise<Validated> {
  const problems: ApiProblem[] = [];
  const check = async <T>(fn: () => T | Promise<T>, path?: string): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      problems.push(...e.problems.map((p) => toApiProblem(p, path)));
      return undefined;
    }
  };
  const selection = (request.selection ?? []).map((q) => q.trim()).filter(Boolean);
  const selected = await check(() => selectOps(job, selection), 'selection');
  const runConfig: RunConfig | undefined = await check(() => resolveRunConfigText(request.runConfig ?? '', job, RUN_CONFIG_LABEL));
  if (selected) await check(() => verifyJobOps(job, selected));
  if (selected && runConfig) await check(() => buildPlan(job, selected, runConfig));
  return {
    ok: problems.length === 0,
    selectedOps: selected ? [...selected] : [],
    problems,
    ...(runConfig ? { runConfig: runConfig.raw } : {}),
  };
}

function toApiProblem(p: Problem, path: string | undefined): ApiProblem {
  const message = p.hint ? `${p.message} (${p.hint})` : p.message;
  const out: ApiProblem = { message };
  const where = p.path ?? path;
  if (where !== undefined) out.path = where;
  // A problem in the text sent has no file; one in the job file (an op's module, say) names it.
  if (p.file !== undefined && p.file !== RUN_CONFIG_LABEL) out.file = p.file;
  if (p.line !== undefined) out.line = p.line;
  if (p.column !== undefined) out.column = p.column;
  if (p.hint !== undefined) out.hint = p.hint;
  return out;
}
