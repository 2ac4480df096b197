/**
 * The web UI over a Redis instance, in Chromium: a step held back by a shared limit shows
 * WAITING with the limit that holds it; the Limits page shows the waiter and edits the limit;
 * the Workers page shows the instance's workers.
 */
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserSkipReason, launchChromium, screenshot, startTestUi, UI_FIXTURES, type TestUi } from './helpers/browser.js';
import { uniqueQueue } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorkers, stopAllWorkers } from './helpers/workers.js';

const skip = browserSkipReason();
const LONG = 45_000;

describe.skipIf(skip !== undefined)('web UI over Redis in Chromium', () => {
  let redis: TestRedis;
  let ui: TestUi;
  let browser: Browser;
  let page: Page;
  const queue = uniqueQueue();

  beforeAll(async () => {
    redis = await startTestRedis();
    await startWorkers(1, { redisUrl: redis.url, jobs: [UI_FIXTURES], queue });
    ui = await startTestUi({ redis: redis.url });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(LONG);
  });
  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await stopAllWorkers();
    await redis?.close();
  });

  it('shows a step WAITING on the limit that holds it, and lets the Limits page release it', async () => {
    await ui.instance.limits.set('database=warehouse', 0);
    const { runId } = await ui.instance.launchRun(path.join(UI_FIXTURES, 'demo.yaml'), {
      runConfig: { execution: { config: { distributed: { queue } } }, ops: { risky: { config: { marker: path.join(UI_FIXTURES, 'demo.yaml') } } } },
    });
    await page.goto(`${ui.url}#/runs/${runId}`);
    const prepare = page.locator('tr[data-step="prepare"]');
    await expect.poll(() => prepare.textContent(), { timeout: LONG }).toContain('WAITING');
    expect(await prepare.textContent()).toContain('database=warehouse');
    await screenshot(page, 'redis-run-waiting');

    await page.getByRole('link', { name: 'Limits' }).click();
    const row = page.locator('tr', { hasText: 'database=warehouse' });
    await expect.poll(() => row.textContent(), { timeout: LONG }).toContain(runId.slice(0, 8));
    expect(await row.textContent()).toContain('0 / 0');
    await screenshot(page, 'redis-limits');
    await row.getByRole('button', { name: 'Edit' }).click();
    expect(await page.getByRole('textbox', { name: 'Limit key' }).inputValue()).toBe('database=warehouse');
    await page.getByRole('spinbutton', { name: 'Slots' }).fill('1');
    await page.getByRole('button', { name: 'Set limit' }).click();
    await expect.poll(async () => (await ui.instance.getRun(runId))?.status, { timeout: LONG }).toBe('SUCCESS');

    // The Workers page shows what workers.list() gives (the worker registry is issue 11's).
    await page.getByRole('link', { name: 'Workers' }).click();
    await page.getByRole('heading', { name: 'Workers' }).waitFor();
    const listed = await ui.instance.workers.list();
    if (listed.length > 0) await page.getByText(listed[0]?.id ?? '?', { exact: false }).first().waitFor();
    await screenshot(page, 'redis-workers');

    await page.getByRole('link', { name: 'Limits' }).click();
    await row.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => ui.instance.limits.list(), { timeout: LONG }).toEqual([]);
  });
});
