/**
 * The run queue with real `coordinator serve` processes, real CLI commands and a real Redis:
 * `run --submit` records a QUEUED run and exits 0; a waiting run says which limit holds it;
 * `max_concurrent_runs: 1` never has two runs started at once across two serves; queued runs
 * start in priority then FIFO order; schedules submit QUEUED runs that the queue then starts;
 * `serve --status` lists the live serves and drops a killed one.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { claimQueuedRuns, enqueueRun, readQueue, reconcileQueue, setRunQueueLimit } from '../src/distributed/run-queue.js';
import { openInstance } from '../src/instance/open-instance.js';
import type { DaemonInfo, Instance, RunDetail } from '../src/instance/types.js';
import { CLI, runCli } from './helpers/cli.js';
import { distributedConfig, tempDir, uniqueQueue, waitFor } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorker, stopAllWorkers } from './helpers/workers.js';

let redis: TestRedis;
let client: Redis;
let instance: Instance;
beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis(redis.url);
  instance = await openInstance({ redis: redis.url });
});
afterAll(async () => {
  await instance?.close();
  client?.disconnect();
  await redis?.stop();
});

interface Serve {
  pid: number;
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}
const serves = new Set<Serve>();
beforeEach(async () => {
  await client.flushall(); // each test its own queue, limits and daemons
});
afterEach(async () => {
  await Promise.all([...serves].map((s) => s.stop()));
  await stopAllWorkers();
});

function startServe(jobs: string, extraEnv: Record<string, string> = {}): Serve {
  const args = [CLI, 'serve', '--jobs', jobs, '--schedule-interval', '0.25', '--queue-interval', '0.2', '--interval', '1'];
  const child = spawn(process.execPath, args, { env: { ...process.env, REDIS_URL: redis.url, ...extraEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
  let logs = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (logs += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const serve: Serve = {
    pid: child.pid as number,
    logs: () => logs,
    async stop(signal = 'SIGTERM') {
      serves.delete(serve);
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  serves.add(serve);
  return serve;
}

/** A job whose one op sleeps `ms`; runs in the serve's process unless a run config says otherwise. */
function sleepyJob(name: string, ms: number, extra = ''): string {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'ops.mjs'), `export async function nap() { await new Promise((r) => setTimeout(r, ${ms})); return 1; }\n`);
  const job = path.join(dir, 'job.yaml');
  writeFileSync(job, `name: ${name}\nops:\n  nap: { fn: ./ops.mjs#nap }\n${extra}`);
  return job;
}

const IN_PROCESS = 'run_config: { execution: { config: { in_process: {} } } }\n';
const env = (): { env: Record<string, string> } => ({ env: { REDIS_URL: redis.url } });

async function submit(job: string, ...args: string[]): Promise<string> {
  const r = await runCli(['run', job, '--submit', ...args], env());
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

async function limit(...args: string[]): Promise<void> {
  const r = await runCli(['limits', 'set', '--runs', ...args], env());
  expect(r.code, r.stderr).toBe(0);
}

async function ended(runIds: readonly string[], timeoutMs?: number): Promise<RunDetail[]> {
  return waitFor(`${runIds.length} runs to end`, async () => {
    const runs = await Promise.all(runIds.map((id) => instance.getRun(id)));
    return runs.every((r) => r?.status === 'SUCCESS') ? (runs as RunDetail[]) : undefined;
  }, timeoutMs);
}

describe('submitting', () => {
  it('run --submit records a QUEUED run, prints its id and exits 0; status says why it waits', async () => {
    const job = sleepyJob('submitted', 10, IN_PROCESS);
    const runId = await submit(job, '--tag', 'team=data');
    expect(runId).toMatch(/^[A-Za-z0-9_-]+$/);
    const json = await runCli(['run', job, '--submit', '--json', '--run-id', 'chosen-id'], env());
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ runId: 'chosen-id', status: 'QUEUED' });

    // No serve runs the queue: it says so.
    const status = await runCli(['status', runId, '--json'], env());
    expect(status.code, status.stderr).toBe(0);
    const shown = JSON.parse(status.stdout) as { status: string; queueReason: string };
    expect(shown.status).toBe('QUEUED');
    expect(shown.queueReason).toMatch(/no live serve runs the queue/);
    const runs = await runCli(['runs', '--json', '--tag', 'team=data'], env());
    expect(JSON.parse(runs.stdout)).toEqual([expect.objectContaining({ runId, status: 'QUEUED', tags: { team: 'data' } })]);

    // A taken run id is refused, with one JSON object.
    const again = await runCli(['run', job, '--submit', '--json', '--run-id', 'chosen-id'], env());
    expect(again.code).toBe(2);
    expect(JSON.parse(again.stdout)).toMatchObject({ error: { code: 'RUN_BUSY' } });
    // Bad input: exit 2, nothing recorded.
    const bad = await runCli(['run', job, '--submit', '--json', '--select', 'nope'], env());
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout)).toMatchObject({ error: { code: 'SELECTION_INVALID' } });
    expect((await instance.getRuns()).runs).toHaveLength(2);
  }, 180_000);

  it('a waiting run names the limit that holds it, and starts once the limit allows', async () => {
    const job = sleepyJob('held', 10, IN_PROCESS);
    await limit('max_concurrent_runs', '0');
    await limit('team=data', '0');
    startServe(job);
    const a = await submit(job);
    const b = await submit(job, '--tag', 'team=data');
    const reasonOf = async (runId: string): Promise<string> => {
      const r = await runCli(['status', runId], env());
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    await waitFor('a serve to run the queue', async () => ((await instance.daemons.list()).some((d) => d.runs.includes('queue')) ? true : undefined));
    expect(await reasonOf(a)).toMatch(/QUEUED[\s\S]*waits: max_concurrent_runs \(0\) reached: 0 runs in progress/);
    await limit('max_concurrent_runs', '5');
    await ended([a]);
    const held = await waitFor('b held by its tag limit', async () => {
      const r = await instance.getRun(b);
      return r?.queueReason?.startsWith('run tag limit') ? r : undefined;
    });
    expect(held.status).toBe('QUEUED');
    expect(held.queueReason).toBe('run tag limit team=data (0) reached: 0 runs in progress');
    const del = await runCli(['limits', 'delete', '--runs', 'team=data'], env());
    expect(del.code, del.stderr).toBe(0);
    await ended([b]);
  }, 180_000);
});

describe('the claim in Redis', () => {
  it('concurrent claims from many connections take each run once and never more than max_concurrent_runs', async () => {
    await setRunQueueLimit(client, 'max_concurrent_runs', 3);
    for (let i = 0; i < 20; i++) await enqueueRun(client, { runId: `r${i}`, job: 'j', tags: {}, submittedMs: 1000 + i });
    expect(await enqueueRun(client, { runId: 'r0', job: 'j', tags: {}, submittedMs: 1000 })).toBe(false); // once
    const conns = Array.from({ length: 8 }, () => new Redis(redis.url));
    try {
      const taken = (await Promise.all(conns.map((c, i) => claimQueuedRuns(c, { holder: `s${i}`, max: 10 })))).flat();
      expect(taken.sort()).toEqual(['r0', 'r1', 'r2']);
      await setRunQueueLimit(client, 'max_concurrent_runs', 10);
      const more = (await Promise.all(conns.map((c, i) => claimQueuedRuns(c, { holder: `s${i}`, max: 10 })))).flat();
      expect(more).toHaveLength(7);
      expect(new Set([...taken, ...more]).size).toBe(10);
      // Only runs of the caller's jobs are taken.
      expect(await claimQueuedRuns(client, { holder: 'x', max: 10, jobs: ['other'] })).toEqual([]);
    } finally {
      for (const c of conns) c.disconnect();
    }
  });

  it('repairs: ended runs stop counting, a dead serve\'s unstarted run returns, a QUEUED run missing from the queue is entered', async () => {
    const job = sleepyJob('repairs', 10, IN_PROCESS);
    const ended = await instance.submitRun(job);
    const stranded = await instance.submitRun(job);
    const lost = await instance.submitRun(job);
    await client.del('baton:{runqueue}:entries', 'baton:{runqueue}:queued'); // as if their submitters died before entering them
    await enqueueRun(client, { runId: ended.runId, job: 'repairs', tags: {}, submittedMs: 1 });
    await enqueueRun(client, { runId: stranded.runId, job: 'repairs', tags: {}, submittedMs: 2 });
    expect(await claimQueuedRuns(client, { holder: 'dead-serve', max: 2 })).toEqual([ended.runId, stranded.runId]);
    await instance.cancelRun(ended.runId); // ends it: it no longer counts
    const stillActive = await reconcileQueue(client, { liveDaemons: new Set(), staleMs: 0, lostMs: 0 });
    expect(stillActive).toEqual([]);
    const q = await readQueue(client);
    expect(q.active).toEqual([]);
    expect(q.queued.map((r) => r.runId).sort()).toEqual([stranded.runId, lost.runId].sort());
  });
});

describe('serve starts queued runs', () => {
  it('max_concurrent_runs 1: two serves never have two runs started at once', async () => {
    const job = sleepyJob('one_at_a_time', 600, IN_PROCESS);
    await limit('max_concurrent_runs', '1');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await submit(job));
    startServe(job);
    startServe(job);
    const runs = await ended(ids);
    const spans = runs.map((r) => [Date.parse(r.startedAt as string), Date.parse(r.endedAt as string)] as const).sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]?.[0]).toBeGreaterThanOrEqual(spans[i - 1]?.[1] as number);
    // Each started after it was submitted (startedAt is set when it leaves QUEUED).
    expect(runs.every((r) => r.startedAt !== undefined && r.createdAt <= (r.startedAt as string))).toBe(true);
  }, 240_000);

  it('queued runs start in priority order, then in the order they were submitted (distributed runs)', async () => {
    const queue = uniqueQueue();
    const job = sleepyJob('by_priority', 100);
    const config = distributedConfig(redis.url, queue);
    await startWorker({ redisUrl: redis.url, jobs: [job], queue });
    await limit('max_concurrent_runs', '1');
    const low1 = await submit(job, '-c', config);
    const high = await submit(job, '-c', config, '--tag', 'baton/priority=5');
    const low2 = await submit(job, '-c', config);
    const mid = await submit(job, '-c', config, '--tag', 'baton/priority=1');
    const negative = await submit(job, '-c', config, '--tag', 'baton/priority=-3');
    expect((await instance.getRun(high))?.queueReason).toMatch(/^waiting for a serve to start it; no live serve runs the queue/);
    expect((await instance.getRun(low2))?.queueReason).toMatch(/^behind 1 queued run of higher priority or submitted earlier, which take the room left \(max_concurrent_runs \(1\)\)/);
    startServe(job);
    const runs = await ended([low1, high, low2, mid, negative]);
    const order = [...runs].sort((x, y) => Date.parse(x.startedAt as string) - Date.parse(y.startedAt as string)).map((r) => r.runId);
    expect(order).toEqual([high, mid, low1, low2, negative]);
    // Distributed runs, driven by the serve, their steps run by the worker.
    for (const r of runs) expect(r.runConfig).toMatchObject({ execution: { config: { distributed: { queue } } } });
  }, 240_000);

  it('a run whose serve died after starting it is adopted by another serve, and counts against the limit until it ends', async () => {
    const queue = uniqueQueue();
    const job = sleepyJob('adopted', 4000);
    const config = distributedConfig(redis.url, queue);
    // Short enough that the dead serve's run is adopted soon, long enough that a live serve on a
    // loaded machine keeps its lease (a 1 s lease was lost by live drivers under load).
    const lease = { BATON_RUN_LEASE_MS: '5000' };
    await startWorker({ redisUrl: redis.url, jobs: [job], queue });
    await limit('max_concurrent_runs', '1');
    const first = await submit(job, '-c', config);
    const second = await submit(job, '-c', config);
    const dying = startServe(job, lease);
    await waitFor('the first run to start', async () => ((await instance.getRun(first))?.status === 'STARTED' ? true : undefined));
    await dying.stop('SIGKILL');
    startServe(job, lease);
    const [a, b] = await ended([first, second], 180_000);
    const events = (await instance.getEvents(first, { limit: 1000 })).events.map((e) => e.type);
    expect(events).toContain('RUN_RESUMED');
    expect(Date.parse(b?.startedAt as string)).toBeGreaterThanOrEqual(Date.parse(a?.endedAt as string));
  }, 240_000);

  it('a schedule submits QUEUED runs, and the queue starts them', async () => {
    const job = sleepyJob('sched_queue', 10, `schedules:\n  every2:\n    cron: "*/2 * * * * *"\n    status: running\n    ${IN_PROCESS}`);
    await limit('max_concurrent_runs', '0');
    startServe(job);
    const waiting = await waitFor('a scheduled run to wait in the queue', async () => {
      const { runs } = await instance.getRuns({ tags: { 'baton/schedule': 'every2' } });
      return runs.find((r) => r.status === 'QUEUED' && r.queueReason?.startsWith('max_concurrent_runs'));
    });
    const list = await runCli(['schedules', 'list', '--jobs', job, '--json'], env());
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ id: 'sched_queue/every2', status: 'running', daemonLive: true })]);
    await limit('max_concurrent_runs', '10');
    await ended([waiting.runId]);
  }, 180_000);
});

describe('daemon health', () => {
  it('serve --status lists the live serves, drops a killed one and a stopped one; schedules list flags a schedule no serve runs', async () => {
    const job = sleepyJob('health', 10, `schedules:\n  hourly:\n    cron: "0 * * * *"\n    status: running\n    ${IN_PROCESS}`);
    const none = await runCli(['serve', '--status'], env());
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toMatch(/no live serve process/);
    const flagged = await runCli(['schedules', 'list', '--jobs', job], env());
    expect(flagged.stdout).toMatch(/health\/hourly {2}running .*no live serve runs it/);

    const [a, b] = [startServe(job), startServe(job)];
    const status = async (): Promise<DaemonInfo[]> => {
      const r = await runCli(['serve', '--status', '--json'], env());
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as DaemonInfo[];
    };
    const both = await waitFor('two live serves', async () => {
      const d = await status();
      return d.length === 2 ? d : undefined;
    });
    expect(both.map((d) => d.pid).sort()).toEqual([a.pid, b.pid].sort());
    expect(both[0]).toMatchObject({ jobs: ['health'], runs: expect.arrayContaining(['queue', 'schedules', 'orphans']) });
    const text = await runCli(['serve', '--status'], env());
    expect(text.stdout.trim().split('\n')).toHaveLength(2);

    await a.stop('SIGKILL');
    const left = await waitFor('the killed serve to drop out', async () => {
      const d = await status();
      return d.length === 1 ? d : undefined;
    });
    expect(left[0]?.pid).toBe(b.pid);
    const listed = await runCli(['schedules', 'list', '--jobs', job], env());
    expect(listed.stdout).not.toMatch(/no live serve/);
    // A serve stopped gracefully leaves the registry before it exits.
    await b.stop('SIGTERM');
    expect(await status()).toEqual([]);
  }, 180_000);
});
