import { spawn } from 'node:child_process';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { workerKey } from '../src/distributed/keys.js';
import { liveJobHashes, noLiveWorkerReason } from '../src/distributed/worker-registry.js';
import { CLI, ROOT, runCli } from './helpers/cli.js';
import { distributedConfig, uniqueQueue, waitFor } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorkers, stopAllWorkers } from './helpers/workers.js';

const JOB = path.join(ROOT, 'test/fixtures/isolation/isolation.yaml');
const HEARTBEAT_MS = 500;

interface Listed {
  id: string;
  host: string;
  pid: number;
  queue: string;
  isolation: string;
  concurrency: number;
  jobs: Array<{ name: string; hash: string }>;
  loadErrors: unknown[];
  running: number;
  runningSteps: Array<{ runId: string; stepKey: string; since: string }>;
  startedAt: string;
  lastSeen: string;
  version: string;
}

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterEach(stopAllWorkers);
afterAll(async () => redis?.close());

async function listed(queue: string): Promise<Listed[]> {
  const r = await runCli(['workers', '--redis', redis.url, '--queue', queue, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Listed[];
}

describe('the worker registry', () => {
  it('coordinator workers --json lists the live workers with their jobs and running steps; a dead one drops out', async () => {
    const queue = uniqueQueue();
    const workers = await startWorkers(2, { redisUrl: redis.url, jobs: [JOB], queue, concurrency: 3, args: ['--heartbeat', String(HEARTBEAT_MS)] });
    const all = await listed(queue);
    expect(all.map((w) => w.pid).sort()).toEqual(workers.map((w) => w.pid).sort());
    const version = (JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))) as { version: string }).version;
    for (const w of all) {
      expect(w).toMatchObject({ queue, isolation: 'process', concurrency: 3, running: 0, runningSteps: [], loadErrors: [], version });
      expect(w.jobs).toEqual([{ name: 'isolation', hash: expect.stringMatching(/^[0-9a-f]{16,}$/) }]);
      expect(typeof w.host).toBe('string');
      expect(Date.parse(w.lastSeen)).toBeGreaterThanOrEqual(Date.parse(w.startedAt));
    }

    // A running step shows up on the worker that runs it.
    const cfg = distributedConfig(redis.url, queue, { ops: { ok: { config: { ms: 60_000 } } } });
    // A coordinator this test ends itself, once it has seen what it needs.
    const run = spawn(process.execPath, [CLI, 'run', JOB, '-s', 'ok', '-c', cfg], { env: { ...process.env, REDIS_URL: redis.url }, stdio: 'ignore' });
    const runEnded = new Promise((resolve) => run.once('exit', resolve));
    const busy = await waitFor('a worker to report the running step', async () => (await listed(queue)).find((w) => w.running === 1));
    expect(busy.runningSteps).toEqual([{ runId: expect.any(String), stepKey: 'ok', since: expect.any(String) }]);

    // The human listing names it too.
    const text = await runCli(['workers', '--redis', redis.url, '--queue', queue]);
    expect(text.stdout).toContain(`${busy.id}  `);
    expect(text.stdout).toContain('running ok of run');

    // A registration lives at most 3 heartbeats past its last.
    const probe = new Redis(redis.url);
    try {
      expect(await probe.pttl(workerKey(busy.id))).toBeLessThanOrEqual(3 * HEARTBEAT_MS);
    } finally {
      probe.disconnect();
    }
    const victim = workers.find((w) => w.pid === busy.pid);
    victim?.kill('SIGKILL');
    await victim?.exited;
    const killedAt = Date.now();
    const left = await waitFor('the dead worker to drop out', async () => {
      const now = await listed(queue);
      return now.some((w) => w.pid === busy.pid) ? undefined : now;
    });
    expect(left.map((w) => w.pid)).toEqual(workers.filter((w) => w !== victim).map((w) => w.pid));
    // Generous on a loaded machine, but far below "never".
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    run.kill('SIGKILL');
    await runEnded;
  });

  it('says which live workers on a queue have a job, and at which hashes', async () => {
    const queue = uniqueQueue();
    const workers = await startWorkers(2, { redisUrl: redis.url, jobs: [JOB], queue });
    const conn = new Redis(redis.url);
    try {
      const found = await liveJobHashes(conn, queue, 'isolation');
      expect(found.workers).toBe(2);
      const [hash, ids] = [...found.byHash][0] ?? [];
      expect(ids?.sort()).toEqual(workers.map((w) => w.id).sort());
      expect(noLiveWorkerReason(found, hash as string)).toBeUndefined();
      expect(noLiveWorkerReason(found, '58494eef00')).toBe(
        `no live worker on queue \`${queue}\` has job \`isolation\` at hash 58494eef; 2 workers have it at ${(hash as string).slice(0, 8)}`,
      );
      const none = await liveJobHashes(conn, uniqueQueue(), 'isolation');
      expect(noLiveWorkerReason(none, 'abc')).toMatch(/no worker is on the queue/);
    } finally {
      conn.disconnect();
    }
  });

  it('worker --metrics-port serves Prometheus metrics over HTTP: steps, durations by job and op, failures, queue depth, heartbeat', async () => {
    const queue = uniqueQueue();
    const [worker] = await startWorkers(1, { redisUrl: redis.url, jobs: [JOB], queue, args: ['--metrics-port', '0', '--metrics-host', '127.0.0.1'] });
    const port = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(worker?.logs() ?? '')?.[1]);
    expect(port).toBeGreaterThan(0);
    const cfg = distributedConfig(redis.url, queue);
    const r = await runCli(['run', JOB, '-s', 'ok', '-s', 'forgot_await', '-c', cfg, '--json'], { env: { REDIS_URL: redis.url } });
    expect(r.code, r.stderr).toBe(1);
    // A global limit: its waiters and slots in use are scraped too.
    expect((await runCli(['limits', 'set', `lane=${queue}`, '3', '--redis', redis.url])).code).toBe(0);
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    // One sample: its name and labels (in any order) -> its value.
    const value = (name: string, labels: Record<string, string> = {}): number => {
      for (const line of text.split('\n')) {
        const m = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
        if (got.queue === queue && Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
      }
      return NaN;
    };
    const job = 'isolation';
    expect(value('baton_worker_steps_running')).toBe(0);
    expect(value('baton_worker_step_duration_seconds_count', { job, op: 'ok', outcome: 'success' })).toBe(1);
    expect(value('baton_worker_step_duration_seconds_count', { job, op: 'forgot_await', outcome: 'failure' })).toBe(1);
    expect(value('baton_worker_steps_failed_total', { job, op: 'forgot_await', code: 'OP_FAILED' })).toBe(1);
    expect(value('baton_worker_queue_depth')).toBe(0);
    expect(value('baton_slot_waiters', { limit: `lane=${queue}` })).toBe(0);
    expect(value('baton_slots_in_use', { limit: `lane=${queue}` })).toBe(0);
    expect(value('baton_worker_heartbeat_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(value('baton_worker_step_processes')).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^baton_worker_process_resident_memory_bytes/m);
    expect(text).toContain('# TYPE baton_worker_steps_retried_total counter');
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    await runCli(['limits', 'delete', `lane=${queue}`, '--redis', redis.url]);
  });
});
