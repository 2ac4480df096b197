/** The UI's calls to its own server's JSON API (relative URLs: they work under any base path). */
import type { LimitInfo, RunDetail, RunSummary, StepView, WorkerInfo } from '../../src/instance/types.js';

export type { LimitInfo, RunSummary, StepView, WorkerInfo };

export interface ApiProblem {
  message: string;
  path?: string;
  line?: number;
  column?: number;
  file?: string;
}

export interface OpInfo {
  name: string;
  upstream: string[];
  ins: Record<string, string>;
  tags: Record<string, string>;
  kind: 'fn' | 'command';
  retry: { maxRetries: number; delaySeconds: number; backoff: string | null; jitter: string | null } | null;
  config: Record<string, unknown>;
  description?: string;
}

export interface JobInfo {
  name: string;
  file: string;
  description: string | null;
  hash: string | null;
  tags: Record<string, string>;
  ops: OpInfo[];
  /** The job's own run config as YAML text, when it has one. */
  runConfigYaml?: string;
  problems?: ApiProblem[];
}

export interface ValidateAnswer {
  ok: boolean;
  selectedOps: string[];
  problems: ApiProblem[];
}

export type RunJson = Omit<RunDetail, 'steps'> & { steps: Record<string, string>; stepDetails: Record<string, StepView> };

const TOKEN_KEY = 'baton.authToken';

export const authToken = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY) ?? localStorage.getItem(TOKEN_KEY),
  set: (token: string) => localStorage.setItem(TOKEN_KEY, token),
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: { error?: string; problems?: ApiProblem[] },
  ) {
    super(body.error ?? body.problems?.map((p) => p.message).join('; ') ?? `HTTP ${status}`);
  }
}

export function authHeaders(): Record<string, string> {
  const token = authToken.get();
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** `path` below `api/`; a body makes it a same-origin JSON request. */
export async function api<T>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const method = init.method ?? (init.body === undefined ? 'GET' : 'POST');
  const res = await fetch(`api/${path}`, {
    method,
    headers: { ...authHeaders(), ...(method === 'GET' ? {} : { 'content-type': 'application/json' }) },
    ...(method === 'GET' ? {} : { body: JSON.stringify(init.body ?? {}) }),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const body = (await res.json().catch(() => ({}))) as unknown;
  if (res.status === 401) window.dispatchEvent(new Event('baton:auth'));
  if (!res.ok) throw new ApiError(res.status, body as ApiError['body']);
  return body as T;
}

export { RUN_STATUSES, TERMINAL_RUN_STATUSES } from '../../src/core/status.js';

let kind: Promise<'redis' | 'local'> | undefined;

/** Which instance the server runs on: 'local' (no Redis; no shared limits or workers) or 'redis'. */
export function instanceKind(): Promise<'redis' | 'local'> {
  kind ??= api<{ instance: 'redis' | 'local' }>('info').then((i) => i.instance, (e: unknown) => {
    kind = undefined;
    throw e;
  });
  return kind;
}
