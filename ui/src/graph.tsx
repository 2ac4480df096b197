/** A job's op graph (laid out by dagre off the main thread), with a selection or step statuses shown. */
import { useEffect, useState } from 'preact/hooks';
import type { OpInfo } from './api.js';
import type { LayoutAnswer, LayoutRequest } from './layout-worker.js';

let worker: Worker | undefined;
let nextId = 1;
const waiting = new Map<number, (a: LayoutAnswer) => void>();

function layout(ops: OpInfo[]): Promise<LayoutAnswer> {
  if (!worker) {
    worker = new Worker(new URL('./layout-worker.ts', import.meta.url), { type: 'module' });
    worker.onmessage = (m: MessageEvent<LayoutAnswer>) => {
      waiting.get(m.data.id)?.(m.data);
      waiting.delete(m.data.id);
    };
  }
  const id = nextId++;
  const request: LayoutRequest = {
    id,
    nodes: ops.map((op) => ({ name: op.name, width: Math.max(80, op.name.length * 7.5 + 24) })),
    edges: ops.flatMap((op) => op.upstream.map((u): [string, string] => [u, op.name])),
  };
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    worker?.postMessage(request);
  });
}

export interface GraphProps {
  ops: OpInfo[];
  /** Ops shown as selected (the others dimmed). */
  selected?: ReadonlySet<string>;
  /** Step statuses, shown as each node's colour. */
  statuses?: Record<string, string>;
  onPick?: (op: string) => void;
}

export function OpGraph({ ops, selected, statuses, onPick }: GraphProps) {
  const [answer, setAnswer] = useState<LayoutAnswer | null>(null);
  useEffect(() => {
    let live = true;
    void layout(ops).then((a) => live && setAnswer(a));
    return () => void (live = false);
  }, [ops]);
  if (!answer) return <p class="muted">Laying out {ops.length} ops…</p>;
  return (
    <svg class="graph" role="img" aria-label="Op graph" viewBox={`0 0 ${answer.width} ${answer.height}`} width={answer.width} height={answer.height}>
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" class="arrow" />
        </marker>
      </defs>
      {answer.edges.map((e) => (
        <polyline key={`${e.from}>${e.to}`} class="edge" marker-end="url(#arrow)" points={e.points.map((p) => `${p.x},${p.y}`).join(' ')} />
      ))}
      {ops.map((op) => {
        const n = answer.nodes[op.name];
        if (!n) return null;
        const dim = selected && !selected.has(op.name);
        const status = statuses?.[op.name];
        const cls = `node${dim ? ' dim' : ''}${selected && !dim ? ' picked' : ''}${status ? ` s-${status}` : ''}`;
        return (
          <g key={op.name} class={cls} data-op={op.name} transform={`translate(${n.x - n.width / 2},${n.y - n.height / 2})`} onClick={() => onPick?.(op.name)}>
            <rect width={n.width} height={n.height} rx="6" />
            <text x={n.width / 2} y={n.height / 2 + 4} text-anchor="middle">{op.name}</text>
          </g>
        );
      })}
    </svg>
  );
}
