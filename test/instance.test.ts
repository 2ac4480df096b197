import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openInstance, type Instance } from '../src/index.js';
import { DIAMOND, follow, instanceSuite } from './helpers/instance-suite.js';
import { tempDir } from './helpers/distributed.js';

let instance: Instance;
let storageDir: string;

beforeAll(async () => {
  storageDir = tempDir();
  instance = await openInstance({ storageDir });
});
afterAll(async () => {
  await instance.close();
});

instanceSuite('local', { instance: () => instance, execution: () => ({ config: { multiprocess: { max_concurrent: 2 } } }) });

describe('local instance', () => {
  it('runs in_process when the run config says so, and multiprocess by default', async () => {
    const { runId } = await instance.launchRun(DIAMOND, { runConfig: { execution: { config: { in_process: {} } } } });
    const events = await follow(instance, runId);
    const pids = new Set(events.filter((e) => e.type === 'STEP_START').map((e) => e.pid ?? process.pid));
    expect(pids).toEqual(new Set([process.pid]));
    const byDefault = await instance.launchRun(DIAMOND);
    const starts = (await follow(instance, byDefault.runId)).filter((e) => e.type === 'STEP_START');
    expect(starts.every((e) => e.pid !== undefined && e.pid !== process.pid)).toBe(true);
  });

  it('keeps its runs for another instance over the same directory', async () => {
    const { runId } = await instance.launchRun(DIAMOND, { selection: ['src'] });
    await follow(instance, runId);
    const other = await openInstance({ storageDir });
    try {
      expect(await other.getRun(runId)).toMatchObject({ status: 'SUCCESS', selection: ['src'] });
      expect((await other.getEvents(runId)).events.at(-1)?.type).toBe('RUN_SUCCESS');
    } finally {
      await other.close();
    }
  });

  it('has no shared limits or workers, and refuses a distributed run, naming --redis', async () => {
    expect(await instance.limits.list()).toEqual([]);
    expect(await instance.workers.list()).toEqual([]);
    await expect(instance.limits.set('database=redshift', 2)).rejects.toMatchObject({ code: 'NEEDS_REDIS', message: expect.stringContaining('--redis') });
    await expect(instance.limits.delete('database')).rejects.toMatchObject({ code: 'NEEDS_REDIS' });
    await expect(
      instance.launchRun(DIAMOND, { runConfig: { execution: { config: { distributed: { queue: 'q' } } } } }),
    ).rejects.toMatchObject({ code: 'RUN_CONFIG_INVALID', message: expect.stringContaining('--redis') });
  });

  it('uses $BATON_HOME when no directory is given, else a fresh temp directory', async () => {
    const home = tempDir();
    const saved = process.env.BATON_HOME;
    process.env.BATON_HOME = home;
    try {
      const a = await openInstance();
      expect(a.storageDir).toBe(home);
      await a.close();
      delete process.env.BATON_HOME;
      const b = await openInstance();
      expect(b.storageDir).not.toBe(home);
      await b.close();
    } finally {
      if (saved === undefined) delete process.env.BATON_HOME;
      else process.env.BATON_HOME = saved;
    }
  });
});
