/**
 * The execution planner: selected ops -> steps in topological order, with each input wired to
 * an upstream step or to a value from run config, and config merged. Pure; linear in the job
 * size, plus O(n log n) ordering when the declaration order is not already topological.
 */
import { InputError, type Problem } from '../errors.js';
import { graphOf, topoOrder, upstreamOf } from './graph.js';
import { deepMerge } from './merge.js';
import { OpSelection } from './selection.js';
import type { ExecutionPlan, JobDefinition, OpRunConfig, PlanStep, RunConfig, StepInputSource } from './types.js';

export { upstreamOf };

/**
 * Plans `selected` (every op when undefined). Throws InputError: 'PLAN_INVALID' listing every
 * input whose upstream op is not selected and that run config does not provide (or a selected
 * name that is not an op), 'DEPENDENCY_CYCLE' if the selected ops still contain a cycle.
 */
export function buildPlan(
  job: JobDefinition,
  selected: ReadonlySet<string> | undefined,
  runConfig: Pick<RunConfig, 'ops'>,
): ExecutionPlan {
  const { names, index, upStart, upList, insStart, insList } = graphOf(job.ops);
  const problems: Problem[] = [];

  // Position of each op's step in declaration order, -1 when the op is not selected.
  const stepOf = new Int32Array(names.length).fill(-1);
  const marks = selected instanceof OpSelection ? selected.marksFor(job.ops) : undefined;
  if (selected === undefined || marks === 'all') {
    stepOf.fill(1);
  } else if (marks !== undefined && marks.length === names.length) {
    for (let i = 0; i < marks.length; i++) if (marks[i] === 1) stepOf[i] = 1;
  } else {
    for (const name of selected) {
      const i = index.get(name);
      if (i === undefined) problems.push({ message: `selected op "${name}" is not an op of job "${job.name}"` });
      else stepOf[i] = 1;
    }
  }
  let count = 0;
  for (let i = 0; i < stepOf.length; i++) if (stepOf[i] === 1) stepOf[i] = count++;

  // Run config names few ops: index it rather than probe it once per op. Own keys only, so an
  // op named `constructor` does not find Object.prototype's.
  const opRuns: (OpRunConfig | undefined)[] = [];
  for (const name of Object.keys(runConfig.ops)) {
    const i = index.get(name);
    if (i !== undefined) opRuns[i] = runConfig.ops[name];
  }

  const steps: PlanStep[] = [];
  // Upstreams of each step as step positions, in CSR form for topoOrder.
  const stepUpStart = new Int32Array(count + 1);
  const stepUps: number[] = [];
  let i = -1;
  for (const op of job.ops.values()) {
    if ((stepOf[++i] as number) < 0) continue;
    // An unselected upstream is dropped: inputs from it must come from run config (below), and
    // an unselected dep is only an ordering constraint on a step that will not run.
    const upstream: string[] = [];
    for (let k = upStart[i] as number; k < (upStart[i + 1] as number); k++) {
      const u = upList[k] as number;
      if ((stepOf[u] as number) < 0) continue;
      upstream.push(names[u] as string);
      stepUps.push(stepOf[u] as number);
    }
    stepUpStart[steps.length + 1] = stepUps.length;

    const opRun = opRuns[i];
    const given = opRun?.inputs;
    const inputs: Record<string, StepInputSource> = {};
    let k = insStart[i] as number; // walks the graph's ins entries, which are in this key order
    for (const input in op.ins) {
      if (!Object.hasOwn(op.ins, input)) continue;
      const from = op.ins[input] as string;
      const u = insList[k++] as number;
      if (u >= 0 && (stepOf[u] as number) >= 0) {
        inputs[input] = { fromStep: from };
      } else if (given !== undefined && given !== null && Object.hasOwn(given, input)) {
        inputs[input] = { value: given[input] ?? null };
      } else {
        const path = `ops.${op.name}.inputs.${input}`;
        problems.push({
          path,
          message:
            `op "${op.name}" needs input "${input}" from op "${from}", which is not selected; ` +
            `provide it in run config at ${path}`,
        });
      }
    }
    steps.push({
      key: op.name,
      op: op.name,
      upstream,
      inputs,
      config: deepMerge(op.config, opRun?.config),
      tags: { ...op.tags },
      retry: op.retry === null ? null : { ...op.retry },
    });
  }
  if (problems.length > 0) throw new InputError('PLAN_INVALID', problems);

  const result = topoOrder(stepUpStart, Int32Array.from(stepUps));
  if ('cycle' in result) {
    const cyclic = result.cycle.map((p) => `"${steps[p]?.key}"`);
    const shown =
      cyclic.length > 10 ? `${cyclic.slice(0, 10).join(', ')} and ${cyclic.length - 10} more` : cyclic.join(', ');
    throw new InputError('DEPENDENCY_CYCLE', [
      { message: `job "${job.name}" has a dependency cycle: ops ${shown} are in or behind it and can never run` },
    ]);
  }
  const ordered: PlanStep[] = new Array<PlanStep>(count);
  for (let p = 0; p < count; p++) ordered[p] = steps[result.order[p] as number] as PlanStep;
  return { job: job.name, steps: ordered };
}
