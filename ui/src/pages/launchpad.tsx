/**
 * The Launchpad: a job's run config in a YAML editor checked by `/api/validate` as you type
 * (answers to older text are dropped), an op selection with its ops highlighted on the graph,
 * tags, and Launch Run (disabled while invalid). Unsent input is kept per job in localStorage.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { parseDocument } from 'yaml';
import { api, ApiError, type ApiProblem, type JobInfo, type ValidateAnswer } from '../api.js';
import { createYamlEditor, type YamlEditor } from '../editor.js';
import { OpGraph } from '../graph.js';
import { navigate } from '../router.js';
import type { JsonSchema } from '../schema-complete.js';

interface Draft {
  runConfig: string;
  selection: string;
  tags: string;
}

const storageKey = (job: string) => `baton.launchpad.${job}`;

function loadDraft(job: JobInfo): Draft {
  try {
    const saved = JSON.parse(localStorage.getItem(storageKey(job.name)) ?? 'null') as Draft | null;
    if (saved && typeof saved.runConfig === 'string') return saved;
  } catch {
    // A draft that does not parse is dropped.
  }
  return { runConfig: job.runConfigYaml ?? '', selection: '', tags: '' };
}

function parseTags(text: string): { tags: Record<string, string>; bad: string[] } {
  const tags: Record<string, string> = {};
  const bad: string[] = [];
  for (const pair of text.split(/[,\n]/).map((s) => s.trim()).filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) bad.push(pair);
    else tags[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return { tags, bad };
}

/** Adds what the selected ops may need and the text lacks: their default config, and inputs from unselected ops. */
export function scaffold(text: string, job: JobInfo, selected: ReadonlySet<string>): string {
  const doc = parseDocument(text);
  if (!doc.hasIn(['execution'])) doc.setIn(['execution', 'config', 'multiprocess'], doc.createNode({}));
  for (const op of job.ops) {
    if (!selected.has(op.name)) continue;
    if (Object.keys(op.config).length > 0 && !doc.hasIn(['ops', op.name, 'config'])) doc.setIn(['ops', op.name, 'config'], doc.createNode(op.config));
    for (const [input, from] of Object.entries(op.ins)) {
      if (!selected.has(from) && !doc.hasIn(['ops', op.name, 'inputs', input])) doc.setIn(['ops', op.name, 'inputs', input], null);
    }
  }
  return doc.toString();
}

export function Launchpad({ job }: { job: JobInfo }) {
  const [draft, setDraft] = useState(() => loadDraft(job));
  const [answer, setAnswer] = useState<(ValidateAnswer & { for: Draft }) | null>(null);
  const [launchError, setLaunchError] = useState<ApiProblem[] | null>(null);
  const [launching, setLaunching] = useState(false);
  const [schema, setSchema] = useState<JsonSchema>();
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<YamlEditor>();
  const schemaRef = useRef<JsonSchema>();
  schemaRef.current = schema;

  useEffect(() => {
    void api<JsonSchema>(`schema/run-config?job=${encodeURIComponent(job.name)}`).then(setSchema, () => undefined);
  }, [job.name]);

  useEffect(() => {
    if (!host.current) return;
    editor.current = createYamlEditor(host.current, draft.runConfig, (runConfig) => setDraft((d) => ({ ...d, runConfig })), () => schemaRef.current);
    return () => editor.current?.view.destroy();
  }, [job.name]);

  // Keep the unsent draft, and ask the server about it; only the answer to the latest text counts.
  useEffect(() => {
    localStorage.setItem(storageKey(job.name), JSON.stringify(draft));
    const abort = new AbortController();
    const timer = setTimeout(() => {
      const selection = draft.selection.split(/\s+/).filter(Boolean);
      api<ValidateAnswer>('validate', { body: { job: job.name, selection, runConfig: draft.runConfig }, signal: abort.signal })
        .then((a) => !abort.signal.aborted && setAnswer({ ...a, for: draft }))
        .catch((e: unknown) => {
          if (abort.signal.aborted) return;
          const problems = e instanceof ApiError ? (e.body.problems ?? [{ message: e.message }]) : [{ message: String(e) }];
          setAnswer({ ok: false, selectedOps: [], problems, for: draft });
        });
    }, 150);
    return () => {
      clearTimeout(timer);
      abort.abort();
    };
  }, [draft, job.name]);

  useEffect(() => editor.current?.showProblems(answer?.problems ?? []), [answer]);

  const current = answer?.for === draft ? answer : null;
  const { tags, bad } = parseTags(draft.tags);
  const selected = useMemo(() => new Set(answer?.selectedOps ?? []), [answer]);
  const canLaunch = !!current?.ok && bad.length === 0 && !launching;

  const launch = async () => {
    setLaunching(true);
    setLaunchError(null);
    try {
      const selection = draft.selection.split(/\s+/).filter(Boolean);
      const { runId } = await api<{ runId: string }>('runs', { body: { job: job.name, selection, runConfig: draft.runConfig, tags } });
      localStorage.removeItem(storageKey(job.name));
      navigate(['runs', runId]);
    } catch (e) {
      setLaunchError(e instanceof ApiError ? (e.body.problems ?? [{ message: e.message }]) : [{ message: String(e) }]);
    } finally {
      setLaunching(false);
    }
  };

  const problems = answer?.problems ?? [];
  return (
    <div class="launchpad">
      <div class="launchpad-left">
        <div class="toolbar">
          <label>
            Op selection{' '}
            <input type="text" aria-label="Op selection" placeholder="* (every op), e.g. *report or extract+" value={draft.selection}
              onInput={(e) => setDraft((d) => ({ ...d, selection: e.currentTarget.value }))} />
          </label>
          <span class="count" aria-live="polite">{answer ? `${answer.selectedOps.length} ops selected` : '…'}</span>
          <button type="button" onClick={() => editor.current?.setText(scaffold(draft.runConfig, job, selected))}>Scaffold missing config</button>
        </div>
        <div class="editor" ref={host} />
        <label class="tags">
          Tags{' '}
          <input type="text" aria-label="Tags" placeholder="team=data, priority=10" value={draft.tags}
            onInput={(e) => setDraft((d) => ({ ...d, tags: e.currentTarget.value }))} />
        </label>
        {bad.length > 0 && <p class="error">Tags must be key=value: {bad.join(', ')}</p>}
        <ul class="problems" aria-label="Problems">
          {problems.map((p, i) => (
            <li key={i} class="error">
              {p.line !== undefined && !p.file ? `line ${p.line}${p.column ? `:${p.column}` : ''}: ` : p.file ? `${p.file}${p.line ? `:${p.line}` : ''}: ` : ''}
              {p.path ? <code>{p.path}</code> : null} {p.message}
            </li>
          ))}
        </ul>
        {launchError && <ul class="problems">{launchError.map((p, i) => <li key={i} class="error">{p.message}</li>)}</ul>}
        <button type="button" class="primary" disabled={!canLaunch} onClick={() => void launch()}>Launch Run</button>
        {!current && <span class="muted"> checking…</span>}
      </div>
      <div class="launchpad-graph">
        <OpGraph ops={job.ops} selected={selected} />
      </div>
    </div>
  );
}
