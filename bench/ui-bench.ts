/**
 * The web UI's run view with a 50,000-line event log, in Debian's Chromium: how long the page
 * takes to receive and show every event, and the longest main-thread task (PerformanceObserver
 * 'longtask') while it loads, while the log is scrolled end to end, and while it is filtered.
 * The run is synthetic, served by an in-memory `Instance`: this measures the page, not storage.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { InstanceEvent, RunDetail } from '../src/instance/types.js';
import type { Instance } from '../src/instance/types.js';
import { startUiServer } from '../src/ui-server/server.js';
import type { Section } from './report.js';

const CHROMIUM = process.env.BATON_CHROMIUM ?? '/usr/bin/chromium';
const LINES = 50_000;

/** Long tasks seen since the last call, in ms (page scripts as text: this file has no DOM types). */
async function takeLongTasks(page: Page): Promise<number[]> {
  return page.evaluate<number[]>('(() => { const seen = window.__longTasks; window.__longTasks = []; return seen; })()');
}

const OBSERVE_LONG_TASKS = `window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push(e.duration);
}).observe({ type: 'longtask', buffered: true });`;

const SCROLL_END_TO_END = `(async () => {
  const box = document.querySelector('.log-rows');
  for (let i = 1; i <= 200; i++) {
    box.scrollTop = (box.scrollHeight * i) / 200;
    await new Promise((r) => requestAnimationFrame(r));
  }
})()`;

/** A finished run of two steps whose first logged LINES lines. */
function syntheticRun(): { run: RunDetail; events: InstanceEvent[] } {
  const runId = '5e1f0000-0000-4000-8000-000000000050';
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const at = (ms: number) => new Date(t0 + ms).toISOString();
  const events: InstanceEvent[] = [];
  const add = (e: Omit<InstanceEvent, 'cursor' | 'runId'>) => events.push({ ...e, runId, cursor: String(events.length + 1) });
  add({ type: 'RUN_START', timestamp: at(0), stepCount: 2, message: 'run of job "ui_chatty": 2 steps' });
  add({ type: 'STEP_START', timestamp: at(1), stepKey: 'talk', attempt: 1 });
  for (let i = 1; i <= LINES; i++) add({ type: 'LOG', timestamp: at(1 + i / 10), stepKey: 'talk', attempt: 1, level: 'info', message: `line ${i}` });
  add({ type: 'STEP_SUCCESS', timestamp: at(LINES / 10 + 2), stepKey: 'talk', attempt: 1 });
  add({ type: 'STEP_START', timestamp: at(LINES / 10 + 3), stepKey: 'after', attempt: 1 });
  add({ type: 'STEP_SUCCESS', timestamp: at(LINES / 10 + 60), stepKey: 'after', attempt: 1 });
  add({ type: 'RUN_SUCCESS', timestamp: at(LINES / 10 + 61) });
  const step = (updatedAt: string) => ({ status: 'SUCCESS' as const, attempt: 1, updatedAt });
  const run: RunDetail = {
    runId, job: 'ui_chatty', status: 'SUCCESS', tags: {}, selection: null, createdAt: at(0), startedAt: at(0), endedAt: at(LINES / 10 + 61),
    stepCounts: { SUCCESS: 2 }, jobHash: '0'.repeat(64), runConfig: {}, steps: { talk: step(at(LINES / 10 + 2)), after: step(at(LINES / 10 + 60)) },
  };
  return { run, events };
}

/** Just what the run view calls; anything else is not needed here. */
function instanceServing(run: RunDetail, events: InstanceEvent[]): Instance {
  const refuse = () => Promise.reject(new Error('not served by the bench instance'));
  return {
    kind: 'local',
    getRun: async (id) => (id === run.runId ? run : null),
    getEvents: async () => ({ events, cursor: null }),
    async *watchEvents(_id, options) {
      const from = options?.after ? Number(options.after) : 0;
      for (const e of events.slice(from)) yield e;
    },
    getRuns: async () => ({ runs: [run], cursor: null }),
    launchRun: refuse, submitRun: refuse, startQueuedRun: refuse, cancelRun: refuse, resumeRun: refuse, reexecuteRun: refuse, deleteRun: refuse,
    async *watchRuns() {},
    limits: { list: async () => [], set: refuse, delete: refuse },
    workers: { list: async () => [] },
    daemons: { list: async () => [] },
    close: async () => undefined,
  };
}

export async function benchUiRunView(root: string): Promise<Section> {
  const title = '8. Web UI: run view with 50,000 log lines';
  if (!existsSync(CHROMIUM)) return { title, figures: [], skipped: `${CHROMIUM} is missing (apt-get install -y chromium)` };
  const { chromium } = await import('playwright-core');
  const { run, events } = syntheticRun();
  const instance = instanceServing(run, events);
  const ui = await startUiServer({ instance, jobPaths: [join(root, 'test/fixtures/ui')], port: 0, uiDir: join(root, 'dist/ui') });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const { runId } = run;
    const total = events.length;
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.addInitScript({ content: OBSERVE_LONG_TASKS });
    const t0 = Date.now();
    await page.goto(`${ui.url}#/runs/${runId}`);
    await page.getByText(`${total} events`, { exact: true }).waitFor({ timeout: 120_000 });
    const loadMs = Date.now() - t0;
    const loadTasks = await takeLongTasks(page);
    // Scroll the log end to end in 200 steps, a frame apart, then back with the mouse wheel.
    await page.evaluate(SCROLL_END_TO_END);
    await page.locator('.log-rows').hover();
    for (let i = 0; i < 50; i++) await page.mouse.wheel(0, -4000);
    const lastRow = await page.locator('.log-row').count();
    const scrollTasks = await takeLongTasks(page);

    await page.getByRole('textbox', { name: 'Filter by text' }).fill('line 4999');
    await page.getByText(/^\d+ of \d+ events$/).waitFor();
    const filterTasks = await takeLongTasks(page);

    const max = (xs: number[]) => (xs.length ? Math.max(...xs) : 0);
    const target = { cmp: '<=' as const, limit: 200 };
    return {
      title,
      short: '8. UI run view, 50k lines',
      method: `${total} events over SSE into the run view in headless Chromium (${CHROMIUM}); longest main-thread task by PerformanceObserver; ${lastRow} log rows in the DOM`,
      figures: [
        { name: 'all events received and shown', value: loadMs, unit: 'ms' },
        { name: 'longest task while loading', value: max(loadTasks), unit: 'ms', target, note: `${loadTasks.length} tasks over 50 ms` },
        { name: 'longest task while scrolling end to end', value: max(scrollTasks), unit: 'ms', target, note: `${scrollTasks.length} tasks over 50 ms` },
        { name: 'longest task filtering by text', value: max(filterTasks), unit: 'ms', target },
      ],
    };
  } finally {
    await browser.close();
    await ui.close();
  }
}
