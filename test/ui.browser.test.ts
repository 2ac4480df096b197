/**
 * The web UI in a real browser (Debian's Chromium through playwright-core) against a UI server
 * over a local instance: what a person does on each page, by the accessible names the issue
 * fixes. Screenshots of every page go to test-artifacts/.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { browserSkipReason, launchChromium, screenshot, startTestUi, UI_FIXTURES, type TestUi } from './helpers/browser.js';
import { tempDir } from './helpers/distributed.js';

const skip = browserSkipReason();
if (skip) console.warn(skip);

const LONG = 45_000;
const DEMO = path.join(UI_FIXTURES, 'demo.yaml');
const CHATTY = path.join(UI_FIXTURES, 'chatty.yaml');

describe.skipIf(skip !== undefined)('web UI in Chromium', () => {
  let ui: TestUi;
  let browser: Browser;
  let page: Page;
  let scratch: string;

  beforeAll(async () => {
    ui = await startTestUi();
    browser = await launchChromium();
    scratch = tempDir();
  });
  afterAll(async () => {
    await browser?.close();
    await ui?.close();
  });
  beforeEach(async () => {
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(LONG);
  });
  afterEach(async () => {
    await page.close();
  });

  const markerConfig = (marker: string) => ({ execution: { config: { in_process: {} } }, ops: { risky: { config: { marker } } } });
  const stepRow = (step: string) => page.locator(`tr[data-step="${step}"]`);
  const runStatus = () => page.getByTestId('run-status');

  it('launches a run from the Launchpad after fixing a config error shown inline', async () => {
    const marker = path.join(scratch, 'launchpad-ok');
    writeFileSync(marker, 'ok');
    await page.goto(ui.url);
    await page.getByRole('link', { name: 'Jobs' }).click();
    await screenshot(page, 'jobs');
    await page.getByRole('link', { name: 'ui_demo' }).click();
    await page.locator('svg.graph g.node').first().waitFor();
    await screenshot(page, 'job-overview');
    await page.getByRole('link', { name: 'Launchpad' }).click();

    const editor = page.getByRole('textbox', { name: 'Run config' });
    const bad = `execution:\n  config:\n    in_process: { max_concurent: 2 }\nops:\n  risky:\n    config: { marker: ${JSON.stringify(marker)} }\n`;
    await editor.fill(bad);
    const problems = page.getByRole('list', { name: 'Problems' });
    await expect.poll(() => problems.textContent(), { timeout: LONG }).toContain('max_concurent');
    expect(await problems.textContent()).toContain('line 3');
    await page.locator('.cm-lintRange-error').first().waitFor();
    const launch = page.getByRole('button', { name: 'Launch Run' });
    expect(await launch.isDisabled()).toBe(true);

    await page.getByRole('textbox', { name: 'Op selection' }).fill('*report');
    await page.getByText('3 ops selected').waitFor();
    expect(await page.locator('svg.graph g.node.picked').count()).toBe(3);
    await screenshot(page, 'launchpad-error');

    await editor.fill(bad.replace('{ max_concurent: 2 }', '{}'));
    await expect.poll(() => launch.isEnabled(), { timeout: LONG }).toBe(true);
    expect(await problems.locator('li').count()).toBe(0);
    await launch.click();
    await page.waitForURL(/#\/runs\/[0-9a-f-]{36}$/);
    await expect.poll(() => runStatus().textContent(), { timeout: LONG }).toBe('SUCCESS');
    expect(await stepRow('report').textContent()).toContain('SUCCESS');
    expect(await stepRow('side').count()).toBe(0); // not selected
    const runId = decodeURIComponent(page.url().split('/').pop() as string);
    expect((await ui.instance.getRun(runId))?.selection).toEqual(['*report']);
  });

  it('completes run-config keys from the schema and scaffolds what a selection needs', async () => {
    await page.goto(`${ui.url}#/jobs/ui_demo/launchpad`);
    const editor = page.getByRole('textbox', { name: 'Run config' });
    await editor.fill('execution:\n  config:\n    mul');
    await page.keyboard.press('Control+Space');
    const options = page.locator('.cm-tooltip-autocomplete');
    await expect.poll(() => options.textContent(), { timeout: LONG }).toContain('multiprocess');
    await options.getByText('multiprocess', { exact: true }).click();
    await expect.poll(() => editor.textContent(), { timeout: LONG }).toContain('multiprocess:');

    await editor.fill('');
    await page.getByRole('textbox', { name: 'Op selection' }).fill('risky');
    await page.getByText('1 ops selected').waitFor();
    await page.getByRole('button', { name: 'Scaffold missing config' }).click();
    await expect.poll(() => editor.textContent(), { timeout: LONG }).toContain('prepare: null');
    await expect.poll(() => page.getByRole('button', { name: 'Launch Run' }).isEnabled(), { timeout: LONG }).toBe(true);
    await screenshot(page, 'launchpad-scaffolded');
  });

  it('keeps an unsent config across a reload', async () => {
    await page.goto(`${ui.url}#/jobs/ui_chatty/launchpad`);
    const editor = page.getByRole('textbox', { name: 'Run config' });
    expect(await editor.textContent()).toContain('in_process'); // pre-filled with the job's own run config
    await editor.fill('ops:\n  talk:\n    config: { lines: 7 }\n');
    await page.getByText('2 ops selected').waitFor();
    await page.reload();
    await expect.poll(() => page.getByRole('textbox', { name: 'Run config' }).textContent(), { timeout: LONG }).toContain('lines: 7');
  });

  it('shows a run live, step by step, to its end', async () => {
    const { runId } = await ui.instance.launchRun(DEMO, {
      runConfig: { ...markerConfig(DEMO), ops: { prepare: { config: { ms: 2500 } }, risky: { config: { marker: DEMO } } } },
    });
    await page.goto(`${ui.url}#/runs/${runId}`);
    await expect.poll(() => stepRow('prepare').textContent(), { timeout: LONG }).toContain('IN_PROGRESS');
    expect(await stepRow('report').textContent()).toContain('NOT_STARTED');
    expect(await runStatus().textContent()).toBe('STARTED');
    await screenshot(page, 'run-in-progress');
    await expect.poll(() => runStatus().textContent(), { timeout: LONG }).toBe('SUCCESS');
    for (const step of ['prepare', 'risky', 'report', 'side']) expect(await stepRow(step).textContent()).toContain('SUCCESS');
    expect(await page.locator('svg.gantt rect.bar').count()).toBe(4);
    await screenshot(page, 'run-success');
  });

  it('cancels a run', async () => {
    const { runId } = await ui.instance.launchRun(DEMO, {
      runConfig: { ...markerConfig(DEMO), ops: { prepare: { config: { ms: 120_000 } }, risky: { config: { marker: DEMO } } } },
    });
    await page.goto(`${ui.url}#/runs/${runId}`);
    await expect.poll(() => stepRow('prepare').textContent(), { timeout: LONG }).toContain('IN_PROGRESS');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => runStatus().textContent(), { timeout: LONG }).toBe('CANCELED');
    expect(await page.getByRole('button', { name: 'Cancel' }).isDisabled()).toBe(true);
    await screenshot(page, 'run-canceled');
  });

  it('re-executes a run from its failure', async () => {
    const marker = path.join(scratch, 'reexecute-ok');
    const { runId } = await ui.instance.launchRun(DEMO, { runConfig: markerConfig(marker) });
    await page.goto(`${ui.url}#/runs/${runId}`);
    await expect.poll(() => runStatus().textContent(), { timeout: LONG }).toBe('FAILURE');
    expect(await stepRow('risky').textContent()).toContain('FAILURE');
    expect(await stepRow('risky').textContent()).toContain('marker file missing');
    expect(await stepRow('report').textContent()).toMatch(/SKIPPED|NOT_STARTED/);
    await screenshot(page, 'run-failure');

    writeFileSync(marker, 'ok');
    await page.getByRole('button', { name: 'Re-execute from failure' }).click();
    await page.waitForURL((u) => /#\/runs\/[0-9a-f-]{36}$/.test(u.hash) && !u.hash.includes(runId));
    await expect.poll(() => runStatus().textContent(), { timeout: LONG }).toBe('SUCCESS');
    const child = decodeURIComponent(page.url().split('/').pop() as string);
    const detail = await ui.instance.getRun(child);
    expect(detail?.parentRunId).toBe(runId);
    expect(Object.keys(detail?.steps ?? {})).not.toContain('prepare');
    expect(await page.getByRole('link', { name: runId.slice(0, 8) }).count()).toBe(1);
  });

  it('loses and regains the event stream without losing or repeating an event', async () => {
    const { runId } = await ui.instance.launchRun(CHATTY, {
      runConfig: { execution: { config: { in_process: {} } }, ops: { talk: { config: { lines: 600, every: 10, pauseMs: 60 } } } },
    });
    await page.goto(`${ui.url}#/runs/${runId}`);
    await expect.poll(() => stepRow('talk').textContent(), { timeout: LONG }).toContain('IN_PROGRESS');
    await page.getByText(/^\d+ events$/).waitFor();
    await ui.stopServer();
    await page.getByRole('status').filter({ hasText: 'Connection lost, reconnecting' }).waitFor();
    await screenshot(page, 'run-connection-lost');
    await new Promise((r) => setTimeout(r, 1000)); // the run goes on meanwhile
    await ui.startServer();
    await expect.poll(() => runStatus().textContent(), { timeout: LONG }).toBe('SUCCESS');
    const { events } = await ui.instance.getEvents(runId, { limit: 100_000 });
    await page.getByText(`${events.length} events`, { exact: true }).waitFor();
    expect(await page.getByRole('status').filter({ hasText: 'Connection lost' }).count()).toBe(0);
    // The log shows the last line logged, once.
    await page.getByRole('textbox', { name: 'Filter by text' }).fill('line 600');
    await page.getByText('1 of', { exact: false }).waitFor();
  });

  it("shows a job file that no longer loads on the job's page, with its located problems", async () => {
    const dir = tempDir();
    const file = path.join(dir, 'broken.yaml');
    writeFileSync(file, 'name: broken_job\nops:\n  a:\n    fn: ./ops.mjs#a\n    retry: { max_retries: -1 }\n');
    const other = await startTestUi({ jobPaths: [dir] });
    try {
      await page.goto(`${other.url}#/jobs/broken_job`);
      const alert = page.getByRole('alert');
      await expect.poll(() => alert.textContent(), { timeout: LONG }).toContain('broken.yaml:5');
      expect(await alert.textContent()).toContain('ops.a.retry.max_retries');
      await screenshot(page, 'job-does-not-load');
    } finally {
      await other.close();
    }
  });

  it('asks once for the access token when the API needs one', async () => {
    const guarded = await startTestUi({ authToken: 's3cret' });
    try {
      await page.goto(`${guarded.url}#/jobs`);
      await page.getByLabel('Access token').fill('s3cret');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByRole('link', { name: 'ui_demo' }).waitFor();
      await page.reload();
      await page.getByRole('link', { name: 'ui_chatty' }).waitFor();
      expect(await page.getByLabel('Access token').count()).toBe(0);
    } finally {
      await guarded.close();
    }
  });

  it('lists runs with filters kept in the URL, each linked by its id', async () => {
    await page.goto(`${ui.url}#/runs`);
    await page.getByRole('combobox', { name: 'Status' }).selectOption('FAILURE');
    await page.waitForURL(/status=FAILURE/);
    const failed = (await ui.instance.getRuns({ statuses: ['FAILURE'] })).runs;
    expect(failed.length).toBeGreaterThan(0);
    const link = page.getByRole('link', { name: (failed[0]?.runId ?? '').slice(0, 8) });
    await link.waitFor();
    await expect.poll(() => page.locator('table.runs tbody tr').count(), { timeout: LONG }).toBe(failed.length);
    await screenshot(page, 'runs-filtered');
    await page.reload();
    expect(await page.getByRole('combobox', { name: 'Status' }).inputValue()).toBe('FAILURE');
    await link.click();
    await page.waitForURL(new RegExp(`#/runs/${failed[0]?.runId}$`));
    await page.getByRole('link', { name: 'Limits' }).click();
    await page.getByRole('heading', { name: 'Limits' }).waitFor();
    await screenshot(page, 'limits');
    await page.getByRole('link', { name: 'Workers' }).click();
    await page.getByRole('heading', { name: 'Workers' }).waitFor();
    await screenshot(page, 'workers');
  });
});
