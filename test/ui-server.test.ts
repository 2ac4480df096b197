/**
 * `coordinator ui` as a process, through its JSON API: the contract's shapes, job files re-read
 * when they change, validation located in the text sent, SSE resumed after Last-Event-ID, the
 * same-origin rule for state-changing requests, the token beyond loopback, and the base path.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, runCli } from './helpers/cli.js';
import { tempDir, waitFor } from './helpers/distributed.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/ui');
const children: ChildProcess[] = [];

/** Starts `coordinator ui ...args` and resolves with its URL once it prints it. */
function startUi(args: string[], env: Record<string, string> = {}): Promise<string> {
  const child = spawn(process.execPath, [CLI, 'ui', '--port', '0', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^baton UI: (http:\/\/\S+)$/m.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`coordinator ui exited ${code}: ${out}`)));
  });
}

afterAll(() => {
  for (const c of children) c.kill('SIGTERM');
});

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

interface SseEvent {
  id: string;
  data: { type: string; cursor: string };
}

/** Reads an SSE response to its end: the events, and whether it ended with `event: end`. */
async function readSse(res: Response): Promise<{ events: SseEvent[]; ended: boolean }> {
  const text = await res.text();
  const events: SseEvent[] = [];
  let ended = false;
  for (const block of text.split('\n\n')) {
    const id = /^id: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (/^event: end$/m.test(block)) ended = true;
    else if (id !== undefined && data !== undefined) events.push({ id, data: JSON.parse(data) as SseEvent['data'] });
  }
  return { events, ended };
}

describe('coordinator ui (local instance)', () => {
  let url: string;
  let jobsDir: string;

  beforeAll(async () => {
    jobsDir = tempDir();
    copyFileSync(path.join(FIXTURES, 'ops.mjs'), path.join(jobsDir, 'ops.mjs'));
    copyFileSync(path.join(FIXTURES, 'demo.yaml'), path.join(jobsDir, 'demo.yaml'));
    url = await startUi(['--jobs', jobsDir, '--storage', tempDir()]);
  });

  it('answers /healthz, serves the page, and lists jobs with their ops', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(await (await fetch(`${url}healthz`)).json()).toEqual({ ok: true });
    expect(await (await fetch(`${url}api/daemons`)).json()).toEqual({ daemons: [] }); // a local instance has no serve
    expect(await (await fetch(url)).text()).toContain('<div id="app">');
    const { jobs } = (await (await fetch(`${url}api/jobs`)).json()) as { jobs: Array<{ name: string; hash: string; ops: Array<{ name: string; upstream: string[]; tags: object }> }> };
    expect(jobs.map((j) => j.name)).toEqual(['ui_demo']);
    expect(jobs[0]?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(jobs[0]?.ops.find((o) => o.name === 'risky')).toMatchObject({ upstream: ['prepare'], tags: {} });
  });

  it('re-reads a job file that changed, and shows a broken one with its located problems', async () => {
    const file = path.join(jobsDir, 'demo.yaml');
    const good = readFileSync(file, 'utf8');
    const jobs = async () => ((await (await fetch(`${url}api/jobs`)).json()) as { jobs: Array<{ name: string; description: string; problems?: Array<{ line?: number; message: string }> }> }).jobs;
    writeFileSync(file, good.replace('A small job', 'An edited job'));
    await waitFor('the edit', async () => ((await jobs())[0]?.description.startsWith('An edited') ? true : undefined));
    writeFileSync(file, good.replace('    ins: [prepare]', '    ins: [prepare]\n    retry: { max_retries: -1 }'));
    const broken = await waitFor('the problem', async () => ((await jobs())[0]?.problems ? (await jobs())[0] : undefined));
    expect(broken.name).toBe('ui_demo');
    expect(broken.problems?.[0]).toMatchObject({ line: 12, message: expect.stringContaining('>= 0') });
    writeFileSync(file, good);
    await waitFor('the fix', async () => ((await jobs())[0]?.problems ? undefined : true));
  });

  it('validates like coordinator validate, located in the text sent, with the ops selected', async () => {
    const runConfig = 'execution:\n  config:\n    in_process:\n      max_concurent: 2\n';
    const res = await fetch(`${url}api/validate`, json({ job: 'ui_demo', selection: ['*report'], runConfig }));
    const answer = (await res.json()) as { ok: boolean; selectedOps: string[]; problems: Array<{ message: string; path: string; line: number; column: number }> };
    expect(answer.ok).toBe(false);
    expect(answer.selectedOps).toEqual(['prepare', 'risky', 'report']);
    expect(answer.problems).toEqual([expect.objectContaining({ path: 'execution.config.in_process.max_concurent', line: 4, column: 7 })]);
    const cli = await runCli(['validate', path.join(jobsDir, 'demo.yaml'), '-c', writeTemp('rc.yaml', runConfig)]);
    expect(cli.stderr).toContain(answer.problems[0]?.message);
    const sel = (await (await fetch(`${url}api/validate`, json({ job: 'ui_demo', selection: ['nope+'] }))).json()) as { ok: boolean; problems: Array<{ path: string; message: string }> };
    expect(sel).toMatchObject({ ok: false, problems: [{ path: 'selection', message: expect.stringContaining('unknown op "nope"') }] });
  });

  it('refuses state-changing requests that are not same-origin JSON', async () => {
    const form = await fetch(`${url}api/runs`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'job=ui_demo' });
    expect(form.status).toBe(415);
    const cross = await fetch(`${url}api/runs`, { ...json({ job: 'ui_demo' }), headers: { 'content-type': 'application/json', origin: 'http://evil.example' } });
    expect(cross.status).toBe(403);
    // A DNS name rebound to 127.0.0.1 (fetch cannot set Host, node:http can).
    const rebound = await new Promise<number | undefined>((resolve, reject) =>
      get(`${url}api/jobs`, { headers: { host: 'evil.example' } }, (r) => (r.resume(), resolve(r.statusCode))).on('error', reject),
    );
    expect(rebound).toBe(403);
    expect(((await (await fetch(`${url}api/runs`)).json()) as { runs: unknown[] }).runs).toEqual([]);
  });

  it('launches a run, answers 400 with problems for a bad one, and streams its events resumably', async () => {
    const bad = await fetch(`${url}api/runs`, json({ job: 'ui_demo', runConfig: 'ops: { nope: {} }' }));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { problems: Array<{ line: number }> }).problems[0]).toMatchObject({ line: 1, message: expect.stringContaining('unknown op "nope"') });

    const runConfig = `execution: { config: { in_process: {} } }\nops: { risky: { config: { marker: ${JSON.stringify(path.join(jobsDir, 'ops.mjs'))} } } }\n`;
    const res = await fetch(`${url}api/runs`, json({ job: 'ui_demo', runConfig, tags: { who: 'test' } }));
    expect(res.status).toBe(201);
    const { runId } = (await res.json()) as { runId: string };
    const all = await readSse(await fetch(`${url}api/runs/${runId}/events`));
    expect(all.ended).toBe(true);
    expect(all.events.at(-1)?.data.type).toBe('RUN_SUCCESS');
    expect(all.events.every((e) => e.id === e.data.cursor)).toBe(true);
    const third = all.events[2] as SseEvent;
    const rest = await readSse(await fetch(`${url}api/runs/${runId}/events`, { headers: { 'last-event-id': third.id } }));
    expect(rest.events.map((e) => e.id)).toEqual(all.events.slice(3).map((e) => e.id));

    const run = (await (await fetch(`${url}api/runs/${runId}`)).json()) as { status: string; tags: object; steps: object };
    expect(run).toMatchObject({ runId, job: 'ui_demo', status: 'SUCCESS', tags: { who: 'test' }, steps: { prepare: 'SUCCESS', risky: 'SUCCESS', report: 'SUCCESS', side: 'SUCCESS' } });
    const page = (await (await fetch(`${url}api/runs?status=SUCCESS&tag=who=test`)).json()) as { runs: Array<{ runId: string }> };
    expect(page.runs.map((r) => r.runId)).toEqual([runId]);
    expect((await fetch(`${url}api/runs/no-such-run`)).status).toBe(404);
  });

  function writeTemp(name: string, text: string): string {
    const file = path.join(tempDir(), name);
    writeFileSync(file, text);
    return file;
  }
});

describe('coordinator ui beyond loopback and behind a proxy', () => {
  it('refuses to bind beyond loopback without a token', async () => {
    const r = await runCli(['ui', '--host', '0.0.0.0', '--port', '0', '--jobs', FIXTURES], { env: { BATON_UI_TOKEN: '' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--auth-token');
  });

  it('asks for the bearer token on the API, not on /healthz', async () => {
    const url = await startUi(['--host', '0.0.0.0', '--jobs', FIXTURES, '--storage', tempDir()], { BATON_UI_TOKEN: 's3cret' });
    const local = url.replace('0.0.0.0', '127.0.0.1');
    expect((await fetch(`${local}healthz`)).status).toBe(200);
    expect((await fetch(`${local}api/jobs`)).status).toBe(401);
    expect((await fetch(`${local}api/jobs`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${local}api/jobs`, { headers: { authorization: 'Bearer s3cret' } })).status).toBe(200);
  });

  it('serves everything under --base-path', async () => {
    const url = await startUi(['--base-path', '/tools/baton', '--jobs', FIXTURES, '--storage', tempDir()]);
    expect(url).toMatch(/\/tools\/baton\/$/);
    expect((await fetch(`${url}healthz`)).status).toBe(200);
    const html = await (await fetch(url)).text();
    const asset = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    expect((await fetch(`${url}${asset}`)).status).toBe(200);
    expect((await fetch(`${url}api/jobs`)).status).toBe(200);
    expect((await fetch(url.replace('/tools/baton/', '/api/jobs'))).status).toBe(404);
  });
});
