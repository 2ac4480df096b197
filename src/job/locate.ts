/**
 * Finds the line and column of a path inside YAML text, on the error path only.
 *
 * Built from js-yaml's event stream (the same parser that loaded the document, so the structure
 * always agrees with the loaded value) rather than the `yaml` package: `yaml` needs ~15 s to parse
 * a 100,000-op job even with `uniqueKeys: false`, js-yaml's events take ~0.3 s.
 */
import { EVENT_ID, SCALAR_STYLE, getScalarValue, parseEvents, type Event } from 'js-yaml';
import type { Problem } from '../errors.js';
import { formatPath, type PathProblem, type PathSeg } from './problem.js';

interface Entry {
  keyOffset: number;
  node: YNode;
}
interface YNode {
  offset: number;
  entries?: Map<string, Entry>;
  items?: YNode[];
  /** An alias: the anchor it points at. */
  alias?: string;
}

export interface Position {
  line: number;
  column: number;
}

export interface DuplicateKey {
  path: PathSeg[];
  offset: number;
  firstOffset: number;
}

export class SourceIndex {
  readonly duplicates: DuplicateKey[] = [];
  private readonly root: YNode | undefined;
  private readonly anchors = new Map<string, YNode>();
  private events: Event[] = [];
  private pos = 0;
  private lineStarts: number[] | undefined;

  constructor(private readonly text: string) {
    try {
      this.events = parseEvents(text, {});
    } catch {
      return; // unparsable text: no positions
    }
    if (this.events[0]?.type === EVENT_ID.DOCUMENT && this.events.length > 1) {
      this.pos = 1;
      this.root = this.build([], 0);
    }
    this.events = []; // only the tree is needed from now on
  }

  /** Position of the node at `path` (of its key when `atKey`), or of its deepest existing ancestor. */
  position(path: readonly PathSeg[], atKey = false): Position | undefined {
    let node = this.root;
    if (!node) return undefined;
    let offset = node.offset;
    for (let i = 0; i < path.length; i++) {
      node = this.deref(node);
      const seg = path[i] as PathSeg;
      let next: YNode | undefined;
      if (node.entries) {
        const entry = node.entries.get(String(seg));
        if (entry && atKey && i === path.length - 1) return this.lineCol(entry.keyOffset);
        next = entry?.node;
      } else if (node.items && typeof seg === 'number') {
        next = node.items[seg];
      }
      if (!next) break;
      node = next;
      offset = node.offset;
    }
    return this.lineCol(offset);
  }

  lineCol(offset: number): Position {
    const starts = (this.lineStarts ??= lineStartsOf(this.text));
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - (starts[lo] as number) + 1 };
  }

  private deref(node: YNode): YNode {
    for (let hops = 0; node.alias !== undefined && hops < 100; hops++) {
      const target = this.anchors.get(node.alias);
      if (!target) break;
      node = target;
    }
    return node;
  }

  /** Builds the node starting at the current event; `fallback` is used for empty scalars. */
  private build(path: PathSeg[], fallback: number): YNode {
    const e = this.events[this.pos++] as Event;
    let node: YNode;
    if (e.type === EVENT_ID.SCALAR) {
      node = { offset: scalarOffset(e, fallback) };
    } else if (e.type === EVENT_ID.ALIAS) {
      return { offset: e.anchorStart - 1, alias: this.text.slice(e.anchorStart, e.anchorEnd) };
    } else if (e.type === EVENT_ID.MAPPING) {
      node = { offset: e.start, entries: new Map() };
      this.buildEntries(node, path);
    } else if (e.type === EVENT_ID.SEQUENCE) {
      node = { offset: e.start, items: [] };
      while (this.events[this.pos]?.type !== EVENT_ID.POP && this.pos < this.events.length) {
        path.push(node.items!.length);
        node.items!.push(this.build(path, e.start));
        path.pop();
      }
      this.pos++;
    } else {
      return { offset: fallback };
    }
    if ('anchorStart' in e && e.anchorStart >= 0) this.anchors.set(this.text.slice(e.anchorStart, e.anchorEnd), node);
    return node;
  }

  private buildEntries(node: YNode, path: PathSeg[]): void {
    const entries = node.entries!;
    while (this.events[this.pos]?.type !== EVENT_ID.POP && this.pos < this.events.length) {
      const k = this.events[this.pos] as Event;
      let key: string;
      let keyOffset = node.offset;
      if (k.type === EVENT_ID.SCALAR) {
        this.pos++;
        key = k.valueStart < 0 ? 'null' : getScalarValue(this.text, k);
        keyOffset = scalarOffset(k, node.offset);
      } else {
        key = '\u0000complex key'; // complex keys never match a path segment
        this.build(path, node.offset);
      }
      path.push(key);
      const value = this.build(path, keyOffset);
      const first = entries.get(key);
      if (first) this.duplicates.push({ path: [...path], offset: keyOffset, firstOffset: first.keyOffset });
      else entries.set(key, { keyOffset, node: value });
      path.pop();
    }
    this.pos++;
  }
}

function scalarOffset(e: Extract<Event, { type: typeof EVENT_ID.SCALAR }>, fallback: number): number {
  if (e.valueStart < 0) return fallback;
  // Quoted scalars start at their opening quote, one before the value.
  const quoted = e.style === SCALAR_STYLE.SINGLE_QUOTED || e.style === SCALAR_STYLE.DOUBLE_QUOTED;
  return quoted ? e.valueStart - 1 : e.valueStart;
}

function lineStartsOf(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

/** Turns path problems into `Problem`s of `file`, positioned in `text` when it is given. */
export function locateProblems(problems: readonly PathProblem[], file: string | undefined, text?: string): Problem[] {
  const index = text === undefined ? undefined : new SourceIndex(text);
  const located = problems.map((p) => toProblem(p, file, index));
  // Reading order; problems without a position (e.g. a summary line) stay last.
  const pos = (p: Problem) => (p.line === undefined ? Infinity : p.line * 1e6 + (p.column ?? 0));
  return located.sort((a, b) => pos(a) - pos(b));
}

export function toProblem(p: PathProblem, file: string | undefined, index: SourceIndex | undefined): Problem {
  const out: Problem = { message: p.message };
  if (file !== undefined) out.file = file;
  const pos = p.nowhere ? undefined : index?.position(p.path, p.atKey);
  if (pos) {
    out.line = pos.line;
    out.column = pos.column;
  }
  if (p.path.length > 0) out.path = formatPath(p.path);
  if (p.hint) out.hint = p.hint;
  return out;
}
