/**
 * The web UI's browser tests: Debian's Chromium (`/usr/bin/chromium`) driven by playwright-core
 * (Playwright's own browser download cannot work here), against a UI server in this process
 * over a local instance, on a free port. Screenshots go to test-artifacts/ (git-ignored).
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { openInstance, type Instance } from '../../src/index.js';
import { startUiServer, type UiServer, type UiServerOptions } from '../../src/ui-server/server.js';
import { ROOT } from './cli.js';
import { tempDir } from './distributed.js';

export const CHROMIUM = process.env.BATON_CHROMIUM ?? '/usr/bin/chromium';
export const UI_FIXTURES = path.join(ROOT, 'test/fixtures/ui');
export const ARTIFACTS = path.join(ROOT, 'test-artifacts');

/** Why browser tests cannot run here, or undefined. Under CI a missing browser is a failure, not a skip. */
export function browserSkipReason(): string | undefined {
  if (existsSync(CHROMIUM) || process.env.CI) return undefined;
  return `${CHROMIUM} is missing (apt-get install -y chromium); browser tests skipped`;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
}

export interface TestUi {
  instance: Instance;
  server: UiServer;
  url: string;
  /** Stops the HTTP server: every open stream drops (the instance and its runs go on). */
  stopServer(): Promise<void>;
  /** Starts it again on the same port. */
  startServer(): Promise<void>;
  close(): Promise<void>;
}

/** A UI server over a fresh local instance (or one in `storageDir`), or (with `redis`) over that Redis. */
export async function startTestUi(options: Partial<UiServerOptions> & { redis?: string; storageDir?: string } = {}): Promise<TestUi> {
  const instance = await openInstance(options.redis ? { redis: options.redis } : { storageDir: options.storageDir ?? tempDir() });
  const settings: UiServerOptions = { instance, jobPaths: [UI_FIXTURES], port: 0, uiDir: path.join(ROOT, 'dist/ui'), ...options };
  const ui: TestUi = {
    instance,
    server: await startUiServer(settings),
    get url() {
      return this.server.url;
    },
    async stopServer() {
      await this.server.close();
    },
    async startServer() {
      this.server = await startUiServer({ ...settings, port: this.server.port });
    },
    async close() {
      await this.server.close();
      await instance.close();
    },
  };
  return ui;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}
