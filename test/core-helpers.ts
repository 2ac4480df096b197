import type { ExecutionPlan, PlanStep, RetryPolicy, Tags } from '../src/core/types.js';

/** A plan from `{ step: [upstream...] }`, in the given order, for tests of the pure core. */
export function planOf(
  graph: Record<string, string[]>,
  extra: Record<string, { tags?: Tags; retry?: RetryPolicy }> = {},
): ExecutionPlan {
  const steps: PlanStep[] = Object.entries(graph).map(([key, upstream]) => ({
    key,
    op: key,
    upstream,
    inputs: {},
    config: {},
    tags: extra[key]?.tags ?? {},
    retry: extra[key]?.retry ?? null,
  }));
  return { job: 'test', steps };
}
