/**
 * The Schedules and Sensors pages in a real browser, over a UI server that runs schedules and
 * sensors itself on a local instance (what `coordinator ui` without Redis does): a stopped
 * schedule is switched on and its ticks make runs; a failing sensor's FAILURE tick shows its
 * error; a directory sensor's run is linked from its tick.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalAutomationStores } from '../src/automation/local-tick-store.js';
import { browserSkipReason, launchChromium, screenshot, startTestUi, type TestUi } from './helpers/browser.js';
import { tempDir } from './helpers/distributed.js';
import { sensorJob } from './helpers/serve.js';

const skip = browserSkipReason();
if (skip) console.warn(skip);

const LONG = 90_000;
const IN_PROCESS = 'run_config: { execution: { config: { in_process: {} } } }';

describe.skipIf(skip !== undefined)('Schedules and Sensors pages in Chromium', () => {
  let ui: TestUi;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    const { dir: jobs, inbox } = sensorJob(
      'auto_ui',
      `  broken:\n    fn: ./sensors.mjs#broken\n    interval_seconds: 1\n    status: running\n  inbox:\n    fn: ./sensors.mjs#newFiles\n    interval_seconds: 1\n    status: running\n    ${IN_PROCESS}\n`,
      `schedules:\n  every2:\n    cron: "*/2 * * * * *"\n    ${IN_PROCESS}\n`,
    );
    writeFileSync(path.join(inbox, 'report.csv'), 'r');
    const storageDir = tempDir();
    const { pino } = await import('pino');
    ui = await startTestUi({
      jobPaths: [jobs],
      storageDir,
      automation: { stores: openLocalAutomationStores(storageDir), run: true, intervalMs: 250, logger: pino({ level: 'silent' }) },
    });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(LONG);
  });
  afterAll(async () => {
    await browser?.close();
    await ui?.close();
  });

  const row = (id: string) => page.locator(`tr[data-id="${id}"]`);

  it('switches a schedule on and shows its ticks and runs', async () => {
    await page.goto(ui.url);
    await page.getByRole('link', { name: 'Schedules' }).click();
    const schedule = row('auto_ui/every2');
    const toggle = schedule.getByRole('switch', { name: 'Running' });
    await expect.poll(() => toggle.getAttribute('aria-checked'), { timeout: LONG }).toBe('false');
    await expect.poll(() => schedule.getByRole('list', { name: 'Next ticks' }).getByRole('listitem').count(), { timeout: LONG }).toBe(5);
    await toggle.click();
    await expect.poll(() => toggle.getAttribute('aria-checked'), { timeout: LONG }).toBe('true');
    await schedule.locator('tr[data-tick-status="SUCCESS"]').first().getByRole('link').first().waitFor();
    await schedule.getByRole('list', { name: 'Runs launched' }).getByRole('link').first().waitFor();
    await screenshot(page, 'schedules');
    await toggle.click();
    await expect.poll(() => toggle.getAttribute('aria-checked'), { timeout: LONG }).toBe('false');
    const runs = await ui.instance.getRuns({ tags: { 'baton/schedule': 'every2' } });
    expect(runs.runs.length).toBeGreaterThanOrEqual(1);
  });

  it("shows a failing sensor's FAILURE tick with its error, and a sensor's run linked from its tick", async () => {
    await page.getByRole('link', { name: 'Sensors' }).click();
    const broken = row('auto_ui/broken');
    await expect.poll(() => broken.getByRole('switch', { name: 'Running' }).getAttribute('aria-checked'), { timeout: LONG }).toBe('true');
    await broken.locator('tr[data-tick-status="FAILURE"]').filter({ hasText: 'the inbox is unreachable' }).first().waitFor();
    const launched = row('auto_ui/inbox').getByRole('list', { name: 'Runs launched' }).getByRole('listitem').filter({ hasText: 'report.csv' });
    await launched.waitFor();
    await screenshot(page, 'sensors');
    await launched.getByRole('link').click();
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: LONG }).toMatch(/SUCCESS|STARTED/);
  });
});
