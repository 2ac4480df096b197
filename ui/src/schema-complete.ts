/**
 * Completion of run-config YAML keys from its JSON Schema: the key path at the cursor is read
 * from the indentation of the lines above it, then the schema is walked along that path.
 */
import type { CompletionContext, CompletionResult } from '@codemirror/autocomplete';

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
}

const KEY_LINE = /^(\s*)(- )?([A-Za-z0-9_.-]+)\s*:/;

/** The map keys that lead to line `lineNo` (0-based) whose key starts at column `indent`. */
function pathAt(lines: string[], lineNo: number, indent: number): string[] {
  const path: string[] = [];
  let limit = indent;
  for (let i = lineNo - 1; i >= 0 && limit > 0; i--) {
    const m = KEY_LINE.exec(lines[i] ?? '');
    if (!m) continue;
    const keyCol = (m[1] ?? '').length + (m[2] ?? '').length;
    if (keyCol >= limit) continue;
    // A key inside a list item: the item is one level, its key another.
    path.unshift(m[3] as string);
    if (m[2]) path.splice(1, 0, '[]');
    limit = (m[1] ?? '').length;
  }
  return path;
}

function step(schema: JsonSchema | undefined, key: string): JsonSchema | undefined {
  if (!schema) return undefined;
  for (const alt of [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])]) {
    const found = step(alt, key);
    if (found) return found;
  }
  if (key === '[]') return schema.items;
  if (schema.properties?.[key]) return schema.properties[key];
  return typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
}

function keysOf(schema: JsonSchema | undefined): string[] {
  if (!schema) return [];
  const alts = [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])];
  return [...Object.keys(schema.properties ?? {}), ...alts.flatMap(keysOf)];
}

/** A CodeMirror completion source over `getSchema()` (which may change as the job loads). */
export function schemaCompletion(getSchema: () => JsonSchema | undefined) {
  return (ctx: CompletionContext): CompletionResult | null => {
    const line = ctx.state.doc.lineAt(ctx.pos);
    const before = line.text.slice(0, ctx.pos - line.from);
    const m = /^(\s*)(- )?([A-Za-z0-9_]*)$/.exec(before);
    if (!m || (!ctx.explicit && (m[3] ?? '') === '' && before.trim() === '' && line.text.trim() !== '')) return null;
    const indent = (m[1] ?? '').length + (m[2] ?? '').length;
    const lines = ctx.state.doc.toString().split('\n');
    const path = pathAt(lines, line.number - 1, indent);
    if (m[2]) path.push('[]');
    let node = getSchema();
    for (const key of path) node = step(node, key);
    const keys = [...new Set(keysOf(node))];
    if (keys.length === 0) return null;
    return {
      from: ctx.pos - (m[3] ?? '').length,
      options: keys.map((k) => ({ label: k, type: 'property', apply: `${k}: ` })),
      validFor: /^[A-Za-z0-9_]*$/,
    };
  };
}
