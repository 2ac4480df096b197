import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli, tempDir } from './helpers/cli.js';
import { uniqueQueue } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorker, stopAllWorkers, WORKER_BIN } from './helpers/workers.js';

const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterEach(stopAllWorkers);
afterAll(async () => redis?.close());

function worker(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WORKER_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A directory with one good job and two bad ones (a schema problem, a YAML syntax error). */
function jobsDir(): { dir: string; bad: string; broken: string } {
  const dir = tempDir();
  copyFileSync(path.join(ROOT, 'test/fixtures/isolation/isolation.yaml'), path.join(dir, 'good.yaml'));
  copyFileSync(path.join(ROOT, 'test/fixtures/isolation/ops.mjs'), path.join(dir, 'ops.mjs'));
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, 'name: bad\nops:\n  a:\n    fn: ./ops.mjs#ok\n    retry: { max_retries: -1 }\n');
  const broken = path.join(dir, 'broken.yaml');
  writeFileSync(broken, 'name: broken\nops: [unclosed\n');
  return { dir, bad, broken };
}

describe('the worker command line', () => {
  it('worker with no --jobs prints its usage error (exit 2)', async () => {
    const r = await worker(['--redis', redis.url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('give the jobs this worker may run with --jobs PATH');
    expect(r.stderr).toContain('Usage: worker [options]');
  });

  it('--version on both bins', async () => {
    expect(await worker(['--version'])).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
    const c = await runCli(['--version']);
    expect(c.code).toBe(0);
    expect(c.stdout).toBe(`${VERSION}\n`);
  });

  it('worker --jobs DIR: bad job files are logged with their located problems and listed as load errors; the good ones load', async () => {
    const { dir, bad, broken } = jobsDir();
    const queue = uniqueQueue();
    const w = await startWorker({ redisUrl: redis.url, jobs: [dir], queue });
    expect(w.logs()).toContain(`could not load job file ${bad}`);
    expect(w.logs()).toMatch(/bad\.yaml:5:\d+/); // located: the retry line
    expect(w.logs()).toContain(`could not load job file ${broken}`);
    const r = await runCli(['workers', '--redis', redis.url, '--queue', queue, '--json']);
    const [listed] = JSON.parse(r.stdout) as Array<{ jobs: Array<{ name: string }>; loadErrors: Array<{ file: string; message: string }> }>;
    expect(listed?.jobs.map((j) => j.name)).toEqual(['isolation']);
    expect(listed?.loadErrors.map((e) => e.file).sort()).toEqual([bad, broken].sort());
    expect(listed?.loadErrors.find((e) => e.file === bad)?.message).toContain('max_retries');
    const text = await runCli(['workers', '--redis', redis.url, '--queue', queue]);
    expect(text.stdout).toContain(`load error: ${bad}`);
  });

  it('worker --jobs DIR --strict: any bad file is fatal (exit 2, located)', async () => {
    const { dir } = jobsDir();
    const r = await worker(['--redis', redis.url, '--jobs', dir, '--strict']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:5:\d+/);
  });
});
