import type { OpDefinition } from '../core/types.js';

/**
 * Dependency cycles among ops, each as op names in run order (every op needs the one before it),
 * first op repeated at the end: `['a', 'b', 'c', 'a']`. Iterative depth-first search, linear in
 * ops + edges, so a 100,000-op chain cannot overflow the call stack. Reports at most `max`
 * cycles, none sharing an op with another. Self-dependencies and unknown ops are ignored here.
 */
export function findCycles(ops: ReadonlyMap<string, OpDefinition>, max = 10): string[][] {
  const names: string[] = [];
  const index = new Map<string, number>();
  for (const name of ops.keys()) index.set(name, names.push(name) - 1);
  // Upstream edges in one flat array (op i's are edges[first[i]..first[i+1]]): no array per op.
  const first = new Int32Array(names.length + 1);
  const edges: number[] = [];
  let i = 0;
  for (const op of ops.values()) {
    first[i++] = edges.length;
    for (const input in op.ins) addEdge(edges, index, op.name, op.ins[input] as string);
    for (const up of op.deps) addEdge(edges, index, op.name, up);
  }
  first[names.length] = edges.length;

  const NEW = 0;
  const ON_STACK = 1;
  const DONE = 2;
  const state = new Uint8Array(names.length);
  const stack = new Int32Array(names.length);
  const nextEdge = new Int32Array(names.length);
  const depthOf = new Int32Array(names.length);
  const inReported = new Uint8Array(names.length);
  const cycles: string[][] = [];

  for (let start = 0; start < names.length && cycles.length < max; start++) {
    if (state[start] !== NEW) continue;
    let depth = 0;
    stack[0] = start;
    depthOf[start] = 0;
    state[start] = ON_STACK;
    nextEdge[start] = first[start] as number;
    while (depth >= 0) {
      const top = stack[depth] as number;
      const e = nextEdge[top] as number;
      if (e < (first[top + 1] as number)) {
        nextEdge[top] = e + 1;
        const next = edges[e] as number;
        if (state[next] === NEW) {
          state[next] = ON_STACK;
          nextEdge[next] = first[next] as number;
          stack[++depth] = next;
          depthOf[next] = depth;
        } else if (state[next] === ON_STACK && cycles.length < max) {
          // stack[d..depth]: each op depends on the one after it, the last on stack[d].
          const d = depthOf[next] as number;
          const members = Array.from(stack.subarray(d, depth + 1));
          if (!members.some((m) => inReported[m])) {
            members.forEach((m) => (inReported[m] = 1));
            const order = [members[0] as number, ...members.slice(1).reverse(), members[0] as number];
            cycles.push(order.map((i) => names[i] as string));
          }
        }
      } else {
        state[top] = DONE;
        depth--;
      }
    }
  }
  return cycles;
}

function addEdge(edges: number[], index: ReadonlyMap<string, number>, op: string, up: string): void {
  const j = index.get(up);
  if (j !== undefined && up !== op) edges.push(j);
}
