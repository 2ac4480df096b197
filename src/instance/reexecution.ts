/** Which steps a re-execution runs, and which of their inputs come from the parent run. Pure. */
import { selectOps } from '../core/selection.js';
import type { ExecutionPlan, JobDefinition, Json, JsonObject, StepStatus } from '../core/types.js';
import { BatonError } from '../errors.js';

export interface ReexecutionRequest {
  fromFailure?: boolean;
  selection?: readonly string[];
}

export interface Reexecution {
  /** Op names that run again. */
  selected: Set<string>;
  /** op -> input -> the parent's step whose output it takes. */
  parentInputs: Map<string, Array<[input: string, upstream: string]>>;
}

export function planReexecution(
  job: JobDefinition,
  parent: { runId: string; status: string; plan: ExecutionPlan; steps: Readonly<Record<string, { status: StepStatus }>> },
  request: ReexecutionRequest,
): Reexecution {
  if (request.fromFailure && request.selection?.length) throw new BatonError('USAGE', 'give fromFailure or a selection, not both');
  if (request.fromFailure && parent.status !== 'FAILURE' && parent.status !== 'CANCELED') {
    throw new BatonError('RUN_NOT_RESUMABLE', `re-executing from failure needs a FAILURE or CANCELED run; run "${parent.runId}" is ${parent.status}`);
  }
  const planned = new Set(parent.plan.steps.map((s) => s.key));
  let selected: Set<string>;
  if (request.fromFailure) {
    const failed = parent.plan.steps.filter((s) => parent.steps[s.key]?.status !== 'SUCCESS').map((s) => `${s.key}*`);
    selected = new Set([...selectOps(job, failed)].filter((k) => planned.has(k)));
  } else {
    selected = request.selection?.length ? selectOps(job, request.selection) : new Set(planned);
  }
  if (selected.size === 0) throw new BatonError('RUN_NOT_RESUMABLE', `nothing to re-execute in run "${parent.runId}"`);
  const parentInputs = new Map<string, Array<[string, string]>>();
  for (const op of selected) {
    for (const [input, upstream] of Object.entries(job.ops.get(op)?.ins ?? {})) {
      if (selected.has(upstream)) continue;
      if (parent.steps[upstream]?.status !== 'SUCCESS') {
        throw new BatonError(
          'RUN_NOT_RESUMABLE',
          `op "${op}" needs input "${input}" from "${upstream}", which did not succeed in run "${parent.runId}"; select "${upstream}" too`,
        );
      }
      parentInputs.set(op, [...(parentInputs.get(op) ?? []), [input, upstream]]);
    }
  }
  return { selected, parentInputs };
}

/** The parent's upstream steps whose outputs are needed. */
export function neededOutputs(r: Reexecution): string[] {
  return [...new Set([...r.parentInputs.values()].flat().map(([, upstream]) => upstream))];
}

/** The run config with `ops.<op>.inputs.<input>` set to the parent's outputs. */
export function withParentInputs(raw: JsonObject, r: Reexecution, outputs: Readonly<Record<string, Json>>): JsonObject {
  const ops: JsonObject = { ...((raw.ops as JsonObject | undefined) ?? {}) };
  for (const [op, pairs] of r.parentInputs) {
    const current = (ops[op] ?? {}) as JsonObject;
    const values = Object.fromEntries(pairs.map(([input, upstream]) => [input, outputs[upstream] ?? null]));
    ops[op] = { ...current, inputs: { ...((current.inputs as JsonObject | undefined) ?? {}), ...values } };
  }
  return { ...raw, ops };
}
