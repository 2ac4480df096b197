/**
 * Graph helpers shared by selection and planning. Ops are integer indices (their position in
 * declaration order) and edges live in flat typed arrays, so a 100k-op job stays linear, makes
 * few allocations and no traversal recurses.
 */
import type { OpDefinition } from './types.js';

/** An op's upstream op names: its `ins` upstreams then its `deps`, deduped, first occurrence kept. */
export function upstreamOf(op: OpDefinition): string[] {
  // Called once per op of 100k-op jobs: one allocation, no Object.keys/Set for short lists.
  const out: string[] = [];
  for (const input in op.ins) if (Object.hasOwn(op.ins, input)) out.push(op.ins[input] as string);
  for (const dep of op.deps) out.push(dep);
  if (out.length > 16) return [...new Set(out)];
  let kept = 0;
  for (let r = 0; r < out.length; r++) {
    const name = out[r] as string;
    let dup = false;
    for (let j = 0; j < kept && !dup; j++) dup = out[j] === name;
    if (!dup) out[kept++] = name;
  }
  out.length = kept;
  return out;
}

/**
 * A job's ops as an index graph in compressed sparse row form: the upstreams of op `i` (exactly
 * `upstreamOf`, as indices) are `upList[upStart[i] .. upStart[i + 1])`, likewise downstreams
 * (in declaration order). Names that are not ops of the job have no edge.
 */
export interface OpGraph {
  /** Op names in declaration order; an op's index is its position here. */
  names: string[];
  index: Map<string, number>;
  upStart: Int32Array;
  upList: Int32Array;
  downStart: Int32Array;
  downList: Int32Array;
  /** Per op, the upstream index of each `ins` entry in key order (-1: not an op), same CSR form. */
  insStart: Int32Array;
  insList: Int32Array;
}

// Selection and planning of one job share one graph. A job's `ops` map is read-only once
// loaded, so the map's identity is the cache key; the size check catches misuse cheaply.
const cache = new WeakMap<ReadonlyMap<string, OpDefinition>, OpGraph>();

export function graphOf(ops: ReadonlyMap<string, OpDefinition>): OpGraph {
  let graph = cache.get(ops);
  if (graph === undefined || graph.names.length !== ops.size) {
    graph = buildGraph(ops);
    cache.set(ops, graph);
  }
  return graph;
}

function buildGraph(ops: ReadonlyMap<string, OpDefinition>): OpGraph {
  const n = ops.size;
  const names: string[] = new Array<string>(n);
  const index = new Map<string, number>();
  let i = 0;
  for (const name of ops.keys()) {
    names[i] = name;
    index.set(name, i++);
  }
  // Same edges as `upstreamOf`, but resolved and deduped by index in one pass: name lookups in
  // a 100k-entry map are the dominant cost, so each name is looked up once. `last[u] === i + 1`
  // means u is already an upstream of op i.
  const last = new Int32Array(n);
  const upStart = new Int32Array(n + 1);
  const insStart = new Int32Array(n + 1);
  const ups: number[] = [];
  const insUps: number[] = [];
  const addUp = (u: number | undefined): number => {
    if (u === undefined) return -1;
    if (last[u] !== i + 1) {
      last[u] = i + 1;
      ups.push(u);
    }
    return u;
  };
  i = 0;
  for (const op of ops.values()) {
    for (const input in op.ins) {
      if (Object.hasOwn(op.ins, input)) insUps.push(addUp(index.get(op.ins[input] as string)));
    }
    for (const dep of op.deps) addUp(index.get(dep));
    upStart[i + 1] = ups.length;
    insStart[i + 1] = insUps.length;
    i++;
  }
  const upList = Int32Array.from(ups);
  const { start: downStart, list: downList } = invert(upStart, upList);
  return { names, index, upStart, upList, downStart, downList, insStart, insList: Int32Array.from(insUps) };
}

/** The reverse of a CSR adjacency; each row comes out in ascending (declaration) order. */
export function invert(start: Int32Array, list: Int32Array): { start: Int32Array; list: Int32Array } {
  const n = start.length - 1;
  const outStart = new Int32Array(n + 1);
  for (let k = 0; k < list.length; k++) outStart[(list[k] as number) + 1]!++;
  for (let i = 0; i < n; i++) outStart[i + 1]! += outStart[i] as number;
  const fill = outStart.slice(0, n);
  const out = new Int32Array(list.length);
  for (let i = 0; i < n; i++) {
    for (let k = start[i] as number; k < (start[i + 1] as number); k++) {
      const u = list[k] as number;
      out[fill[u]!++] = i;
    }
  }
  return { start: outStart, list: out };
}

/** Scratch space for `markReachable`, sized for one graph and reusable across calls. */
export interface Scratch {
  seen: Int32Array;
  queue: Int32Array;
  stamp: number;
}

export function scratchFor(n: number): Scratch {
  return { seen: new Int32Array(n), queue: new Int32Array(n), stamp: 0 };
}

/**
 * Sets `mark[j] = 1` for every node within `maxHops` hops (Infinity: unbounded) of `from` along
 * the CSR edges, `from` included. Iterative breadth-first search over one flat queue: each node
 * is reached first at its shortest distance, so the hop limit is exact.
 */
export function markReachable(
  start: Int32Array,
  list: Int32Array,
  from: number,
  maxHops: number,
  mark: Uint8Array,
  scratch: Scratch,
): void {
  const { seen, queue } = scratch;
  const stamp = ++scratch.stamp;
  seen[from] = stamp;
  mark[from] = 1;
  queue[0] = from;
  let head = 0;
  let tail = 1;
  // Each pass of the outer loop expands one hop: the nodes queued in [head, levelEnd).
  for (let hop = 0; hop < maxHops && head < tail; hop++) {
    const levelEnd = tail;
    for (; head < levelEnd; head++) {
      const node = queue[head] as number;
      for (let k = start[node] as number; k < (start[node + 1] as number); k++) {
        const j = list[k] as number;
        if (seen[j] === stamp) continue;
        seen[j] = stamp;
        mark[j] = 1;
        queue[tail++] = j;
      }
    }
  }
}

/**
 * Kahn's algorithm over nodes 0..n-1 with the CSR upstream adjacency `upStart`/`upList`
 * (distinct upstreams per node). The ready set is a min-heap on the index, so among the nodes
 * ready at any moment the one declared first goes first: a graph whose declaration order is
 * already topological comes back unchanged, and independent nodes keep their relative order.
 * Returns the order, or `{ cycle }` with the nodes that could never become ready.
 */
export function topoOrder(upStart: Int32Array, upList: Int32Array): { order: Int32Array } | { cycle: number[] } {
  const n = upStart.length - 1;
  // Common case, and exactly what the heap would produce: every edge points backwards.
  let sorted = true;
  for (let i = 0; i < n && sorted; i++) {
    for (let k = upStart[i] as number; k < (upStart[i + 1] as number); k++) {
      if ((upList[k] as number) >= i) {
        sorted = false;
        break;
      }
    }
  }
  const order = new Int32Array(n);
  if (sorted) {
    for (let i = 0; i < n; i++) order[i] = i;
    return { order };
  }

  const { start: downStart, list: downList } = invert(upStart, upList);
  const pending = new Int32Array(n);
  const heap = new MinHeap();
  for (let i = 0; i < n; i++) {
    pending[i] = (upStart[i + 1] as number) - (upStart[i] as number);
    if (pending[i] === 0) heap.push(i);
  }
  let done = 0;
  while (heap.size > 0) {
    const i = heap.pop();
    order[done++] = i;
    for (let k = downStart[i] as number; k < (downStart[i + 1] as number); k++) {
      const d = downList[k] as number;
      if (--pending[d]! === 0) heap.push(d);
    }
  }
  if (done === n) return { order };
  const cycle: number[] = [];
  for (let i = 0; i < n; i++) if ((pending[i] as number) > 0) cycle.push(i);
  return { cycle };
}

/** A binary min-heap of integers. */
class MinHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  push(value: number): void {
    const a = this.items;
    let i = a.length;
    a.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = a[parent] as number;
      if (p <= value) break;
      a[i] = p;
      i = parent;
    }
    a[i] = value;
  }

  /** Callers check `size` first. */
  pop(): number {
    const a = this.items;
    const top = a[0] as number;
    const last = a.pop() as number;
    const n = a.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (a[r] as number) < (a[l] as number) ? r : l;
      const child = a[c] as number;
      if (child >= last) break;
      a[i] = child;
      i = c;
    }
    a[i] = last;
    return top;
  }
}
