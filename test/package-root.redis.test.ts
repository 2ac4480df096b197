import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';
import { tempDir, uniqueQueue } from './helpers/distributed.js';
import { DIAMOND } from './helpers/instance-suite.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorkers, stopAllWorkers } from './helpers/workers.js';

const run = promisify(execFile);
let redis: TestRedis;
let script: string;

beforeAll(async () => {
  redis = await startTestRedis();
  // A project of its own, outside the repo, that depends on baton (as `npm install` would link it).
  const project = tempDir();
  mkdirSync(path.join(project, 'node_modules'));
  symlinkSync(ROOT, path.join(project, 'node_modules', 'baton'), 'dir');
  script = path.join(project, 'script.mjs');
  copyFileSync(path.join(ROOT, 'test/fixtures/library/script.mjs'), script);
});
afterAll(async () => {
  await stopAllWorkers();
  await redis?.close();
});

interface ScriptOutput {
  ids: string[];
  types: string[];
  status: string;
  pages: string[][];
  kind: string;
}

async function runScript(args: string[], env: Record<string, string>): Promise<ScriptOutput> {
  const { stdout } = await run(process.execPath, [script, ...args], { cwd: path.dirname(script), env: { ...process.env, ...env }, timeout: 120_000 });
  return JSON.parse(stdout) as ScriptOutput;
}

function expectFinished(out: ScriptOutput): void {
  expect(out.types[0]).toBe('RUN_START');
  expect(out.types.at(-1)).toBe('RUN_SUCCESS');
  expect(out.status).toBe('SUCCESS');
  expect(out.pages.map((p) => p.length)).toEqual([2, 1]);
  expect(out.pages.flat()).toEqual([...out.ids].reverse());
}

it('opens a local instance through the package root, launches, follows the events and pages the runs', async () => {
  const out = await runScript([DIAMOND], { BATON_HOME: tempDir() });
  expect(out.kind).toBe('local');
  expectFinished(out);
});

it('does the same against Redis with two workers', async () => {
  const queue = uniqueQueue();
  await startWorkers(2, { redisUrl: redis.url, jobs: [DIAMOND], queue });
  const out = await runScript([DIAMOND, redis.url], { QUEUE: queue });
  expect(out.kind).toBe('redis');
  expectFinished(out);
});
