/** Lays out a job's graph with dagre in a Web Worker, so a big graph never blocks the page. */
import dagre from '@dagrejs/dagre';

export interface LayoutRequest {
  id: number;
  nodes: Array<{ name: string; width: number }>;
  edges: Array<[from: string, to: string]>;
}

export interface LayoutAnswer {
  id: number;
  width: number;
  height: number;
  nodes: Record<string, { x: number; y: number; width: number; height: number }>;
  edges: Array<{ from: string; to: string; points: Array<{ x: number; y: number }> }>;
}

export const NODE_HEIGHT = 34;

self.onmessage = (msg: MessageEvent<LayoutRequest>) => {
  const { id, nodes, edges } = msg.data;
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 40, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.name, { width: n.width, height: NODE_HEIGHT });
  for (const [from, to] of edges) g.setEdge(from, to);
  dagre.layout(g);
  const answer: LayoutAnswer = { id, width: g.graph().width ?? 0, height: g.graph().height ?? 0, nodes: {}, edges: [] };
  for (const name of g.nodes()) {
    const n = g.node(name);
    answer.nodes[name] = { x: n.x, y: n.y, width: n.width, height: n.height };
  }
  for (const e of g.edges()) answer.edges.push({ from: e.v, to: e.w, points: g.edge(e).points ?? [] });
  (self as unknown as Worker).postMessage(answer);
};
