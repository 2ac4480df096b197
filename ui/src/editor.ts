/** The Launchpad's YAML editor: CodeMirror 6 with schema completion and the server's problems inline. */
import { autocompletion } from '@codemirror/autocomplete';
import { yaml } from '@codemirror/lang-yaml';
import { lintGutter, setDiagnostics, type Diagnostic } from '@codemirror/lint';
import { EditorView, basicSetup } from 'codemirror';
import type { ApiProblem } from './api.js';
import { schemaCompletion, type JsonSchema } from './schema-complete.js';

export interface YamlEditor {
  view: EditorView;
  setText(text: string): void;
  showProblems(problems: ApiProblem[]): void;
}

export function createYamlEditor(parent: HTMLElement, text: string, onChange: (text: string) => void, getSchema: () => JsonSchema | undefined): YamlEditor {
  const view = new EditorView({
    doc: text,
    parent,
    extensions: [
      basicSetup,
      yaml(),
      autocompletion({ override: [schemaCompletion(getSchema)], activateOnTyping: true }),
      lintGutter(),
      EditorView.contentAttributes.of({ 'aria-label': 'Run config', 'aria-multiline': 'true' }),
      EditorView.updateListener.of((u) => {
        if (u.docChanged) onChange(u.state.doc.toString());
      }),
    ],
  });
  return {
    view,
    setText(next) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: next } });
    },
    showProblems(problems) {
      const doc = view.state.doc;
      const diagnostics: Diagnostic[] = [];
      for (const p of problems) {
        if (p.file !== undefined || p.line === undefined || p.line > doc.lines) continue;
        const line = doc.line(p.line);
        const from = Math.min(line.to, line.from + Math.max(0, (p.column ?? 1) - 1));
        const to = from < line.to ? line.to : from;
        diagnostics.push({ from, to, severity: 'error', message: p.message });
      }
      view.dispatch(setDiagnostics(view.state, diagnostics));
    },
  };
}
