import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openInstance, type Instance } from '../src/index.js';
import { CLI, ROOT } from './helpers/cli.js';
import { tempDir, uniqueQueue, waitFor } from './helpers/distributed.js';
import { DIAMOND, follow, instanceSuite, SLEEPY } from './helpers/instance-suite.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorkers, stopAllWorkers, type TestWorker } from './helpers/workers.js';

let redis: TestRedis;
let probe: Redis;
let instance: Instance;
let workers: TestWorker[];
const queue = uniqueQueue();

beforeAll(async () => {
  redis = await startTestRedis();
  probe = new Redis(redis.url);
  workers = await startWorkers(2, { redisUrl: redis.url, jobs: [DIAMOND, path.join(ROOT, 'test/fixtures/instance')], queue });
  instance = await openInstance({ redis: redis.url });
});
afterAll(async () => {
  await instance?.close();
  await stopAllWorkers();
  probe?.disconnect();
  await redis?.close();
});

instanceSuite('redis', { instance: () => instance, execution: () => ({ config: { distributed: { queue } } }) });

/** Connections this Redis has with the given client name. */
async function connectionsNamed(name: string): Promise<number> {
  const list = (await probe.client('LIST')) as string;
  return list.split('\n').filter((l) => l.includes(` name=${name} `)).length;
}

describe('redis instance', () => {
  it('runs distributed by default on its workers, and a local executor here, recorded in Redis alike', async () => {
    const distributed = await instance.launchRun(DIAMOND, { runConfig: { execution: { config: { distributed: { queue } } } } });
    const starts = (await follow(instance, distributed.runId)).filter((e) => e.type === 'STEP_START');
    expect(new Set(starts.map((e) => e.worker)).size).toBeGreaterThanOrEqual(1);
    expect(starts.every((e) => workers.some((w) => e.worker?.includes(w.id)))).toBe(true);

    const local = await instance.launchRun(DIAMOND, { runConfig: { execution: { config: { in_process: {} } } } });
    const events = await follow(instance, local.runId);
    expect(events.at(-1)?.type).toBe('RUN_SUCCESS');
    expect(events.filter((e) => e.type === 'STEP_START').every((e) => e.worker === undefined)).toBe(true);
    const other = await openInstance({ redis: redis.url });
    try {
      expect(await other.getRun(local.runId)).toMatchObject({ status: 'SUCCESS', stepCounts: { SUCCESS: 4 } });
    } finally {
      await other.close();
    }
  });

  it('refuses a run config naming another Redis, before anything is written', async () => {
    const before = await probe.zcard('baton:{runs}:created');
    await expect(
      instance.launchRun(DIAMOND, { runConfig: { execution: { config: { distributed: { redis: 'redis://elsewhere:6399', queue } } } } }),
    ).rejects.toMatchObject({ code: 'RUN_CONFIG_INVALID', message: expect.stringContaining('execution.config.distributed.redis') });
    expect(await probe.zcard('baton:{runs}:created')).toBe(before);
  });

  it('serves 200 concurrent watchers over one Redis connection', async () => {
    const dir = tempDir();
    const { runId } = await instance.launchRun(SLEEPY, {
      runConfig: { execution: { config: { distributed: { queue } } }, ops: { nap: { config: { dir } }, after: { config: { dir } } } },
    });
    const ends: Array<Promise<string | undefined>> = [];
    for (let i = 0; i < 200; i++) ends.push(follow(instance, runId).then((events) => events.at(-1)?.type));
    await waitFor('the step to start', async () => ((await instance.getRun(runId))?.steps.nap?.status === 'IN_PROGRESS' ? true : undefined), 30_000);
    expect(await connectionsNamed('baton-watch')).toBe(1);
    expect(await instance.cancelRun(runId)).toMatchObject({ status: 'CANCELED' });
    const last = await Promise.all(ends);
    expect(new Set(last)).toEqual(new Set(['RUN_CANCELED']));
    expect(await connectionsNamed('baton-watch')).toBe(1);
  });

  it('lists runs recorded before the indexes existed, and drops runs that expired', async () => {
    const { runId } = await instance.launchRun(DIAMOND, { runConfig: { execution: { config: { in_process: {} } } }, selection: ['src'] });
    await follow(instance, runId);
    // As an older baton recorded it: no createdAt, no selection, in no index but baton:runs.
    await probe.hdel(`baton:{run:${runId}}:record`, 'createdAt', 'selection');
    const meta = await probe.hget('baton:{runs}:meta', runId);
    expect(meta).not.toBeNull();
    for (const key of await probe.keys('baton:{runs}:*')) if ((await probe.type(key)) === 'zset') await probe.zrem(key, runId);
    await probe.hdel('baton:{runs}:meta', runId);
    const fresh = await openInstance({ redis: redis.url });
    try {
      const { runs } = await fresh.getRuns({ statuses: ['SUCCESS'], limit: 1000 });
      const old = runs.find((r) => r.runId === runId);
      expect(old).toMatchObject({ status: 'SUCCESS', selection: null });
      expect(old?.createdAt).toBe(old?.startedAt);
      // Its record expires (retention): it leaves the list and the indexes.
      await probe.del(`baton:{run:${runId}}:record`);
      expect((await fresh.getRuns({ limit: 1000 })).runs.map((r) => r.runId)).not.toContain(runId);
      expect(await probe.zscore('baton:{runs}:created', runId)).toBeNull();
    } finally {
      await fresh.close();
    }
  });

  it('shows a step held back by a limit as WAITING, and the limit its waiter in order', async () => {
    const dir = tempDir();
    await instance.limits.set('database=redshift', 0);
    const { runId } = await instance.launchRun(path.join(ROOT, 'test/fixtures/instance/tagged.yaml'), {
      runConfig: { execution: { config: { distributed: { queue } } }, ops: { load: { config: { dir } } } },
    });
    const step = await waitFor('the step to wait', async () => {
      const s = (await instance.getRun(runId))?.steps.load;
      return s?.status === 'WAITING' ? s : undefined;
    }, 30_000);
    expect(step.waiting).toContain('concurrency slot');
    expect((await instance.getRun(runId))?.stepCounts).toEqual({ WAITING: 1 });
    const [limit] = await instance.limits.list();
    expect(limit).toMatchObject({ spec: 'database=redshift', limit: 0, inUse: 0, holders: [] });
    expect(limit?.waiters).toEqual([{ runId, stepKey: 'load', attempt: 1, blockedBy: ['database=redshift'] }]);
    await instance.limits.set('database=redshift', 1);
    expect((await follow(instance, runId)).at(-1)?.type).toBe('RUN_SUCCESS');
    expect(await instance.limits.delete('database=redshift')).toBe(true);
  });

  it('resumes a run whose coordinator died, and refuses to resume a local one', async () => {
    const dir = tempDir();
    const config = path.join(dir, 'run-config.yaml');
    const step = `{ config: { dir: ${JSON.stringify(dir)}, ms: 1500 } }`;
    writeFileSync(config, `execution: { config: { distributed: { redis: "${redis.url}", queue: ${queue} } } }\nops:\n  nap: ${step}\n  after: ${step}\n`);
    const lease = { BATON_RUN_LEASE_MS: '1000' };
    const coordinator = spawn(process.execPath, [CLI, 'run', SLEEPY, '-c', config, '--run-id', 'orphan-r1'], {
      env: { ...process.env, ...lease },
      stdio: 'ignore',
    });
    await waitFor('the step to start', async () => ((await instance.getRun('orphan-r1'))?.steps.nap?.status === 'IN_PROGRESS' ? true : undefined), 30_000);
    coordinator.kill('SIGKILL');
    const saved = process.env.BATON_RUN_LEASE_MS;
    process.env.BATON_RUN_LEASE_MS = lease.BATON_RUN_LEASE_MS; // this process waits out the dead coordinator's lease
    try {
      expect(await instance.resumeRun('orphan-r1')).toEqual({ runId: 'orphan-r1' });
    } finally {
      if (saved === undefined) delete process.env.BATON_RUN_LEASE_MS;
      else process.env.BATON_RUN_LEASE_MS = saved;
    }
    const events = await follow(instance, 'orphan-r1');
    expect(events.map((e) => e.type)).toContain('RUN_RESUMED');
    expect(events.at(-1)?.type).toBe('RUN_SUCCESS');
    expect((await instance.getRun('orphan-r1'))?.stepCounts).toEqual({ SUCCESS: 2 });

    const local = await instance.launchRun(DIAMOND, { runConfig: { execution: { config: { in_process: {} } } }, selection: ['src'] });
    await follow(instance, local.runId);
    await expect(instance.resumeRun(local.runId)).rejects.toMatchObject({ code: 'RUN_NOT_RESUMABLE' });
  });

  it('sets, lists and deletes limits shared by every run', async () => {
    await instance.limits.set('database=redshift', 2);
    expect(await instance.limits.list()).toEqual([{ spec: 'database=redshift', limit: 2, inUse: 0, holders: [], waiters: [] }]);
    await expect(instance.limits.set('bad spec', 1)).rejects.toMatchObject({ code: 'LIMIT_INVALID' });
    expect(await instance.limits.delete('database=redshift')).toBe(true);
    expect(await instance.limits.list()).toEqual([]);
  });

  it('lists the live workers with the jobs they loaded', async () => {
    const listed = await instance.workers.list();
    expect(listed.map((w) => w.id).sort()).toEqual(workers.map((w) => w.id).sort());
    for (const w of listed) {
      expect(w.queue).toBe(queue);
      expect(w.jobs.map((j) => j.name)).toContain('diamond');
      expect(w.running).toBeGreaterThanOrEqual(0);
      expect(Date.parse(w.lastSeen)).toBeGreaterThan(0);
    }
  });
});
