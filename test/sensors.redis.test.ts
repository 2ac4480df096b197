/**
 * Sensors run by real `coordinator serve` processes on a real Redis: a sensor over a directory
 * launches one run per new file across serve restarts and with two serves at once, never a run
 * key twice; a failing sensor records FAILURE ticks and keeps going; operators list, start, stop
 * and test sensors, and read their ticks, from the CLI.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../src/instance/types.js';
import { runCli } from './helpers/cli.js';
import { waitFor } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { runsTagged, sensorJob, startServe, stopAllServes } from './helpers/serve.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(stopAllServes);

const IN_PROCESS = 'run_config: { execution: { config: { in_process: {} } } }';

const jobWith = sensorJob;
const sensorRuns = (sensor: string): Promise<RunSummary[]> => runsTagged(redis.url, 'baton/sensor', sensor);

interface Tick {
  status: string;
  runIds: string[];
  runKeys?: string[];
  reason?: string;
  error?: string;
}

async function cli(args: string[]) {
  const r = await runCli(args, { env: { REDIS_URL: redis.url } });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

const ticks = async (job: string, name: string): Promise<Tick[]> => JSON.parse(await cli(['ticks', name, '--jobs', job, '--json', '--limit', '200'])) as Tick[];

describe('sensors run by serve', () => {
  it('one run per new file across serve restarts and with two serves at once, never a run key twice', async () => {
    const { file, inbox } = jobWith('inbox_job', `  inbox:\n    fn: ./sensors.mjs#newFiles\n    interval_seconds: 1\n    status: running\n    ${IN_PROCESS}\n`);
    const drop = (name: string) => writeFileSync(path.join(inbox, name), name);
    const keysOf = async () => (await sensorRuns('inbox')).map((r) => r.tags['baton/run_key']).sort();
    const until = (keys: string[]) => waitFor(`runs for ${keys.join(', ')}`, async () => ((await keysOf()).length >= keys.length ? true : undefined));

    drop('a.csv');
    drop('b.csv');
    const first = startServe(redis.url, file);
    await until(['a.csv', 'b.csv']);
    await first.stop();
    drop('c.csv');
    const second = startServe(redis.url, file); // a restart: a and b are not made again
    await until(['a.csv', 'b.csv', 'c.csv']);
    const third = startServe(redis.url, file); // two serves at once
    for (const f of ['d.csv', 'e.csv', 'f.csv']) drop(f);
    await until(['a.csv', 'b.csv', 'c.csv', 'd.csv', 'e.csv', 'f.csv']);
    // A few more intervals with both serves and nothing new: still one run per file.
    const evaluatedBefore = (await ticks(file, 'inbox')).length;
    await waitFor('four more evaluations', async () => ((await ticks(file, 'inbox')).length >= evaluatedBefore + 4 ? true : undefined));
    await second.stop();
    await stopAllServes();

    expect(await keysOf()).toEqual(['a.csv', 'b.csv', 'c.csv', 'd.csv', 'e.csv', 'f.csv']);
    const history = await ticks(file, 'inbox');
    // Each evaluation (the fixture logs one line) had a tick of its own: none ran twice in an interval.
    const evaluations = [first, second, third].map((s) => s.logs().match(/looked at the inbox/g)?.length ?? 0).reduce((a, b) => a + b, 0);
    expect(evaluations).toBeGreaterThan(0);
    expect(evaluations).toBeLessThanOrEqual(history.length);
    const launched = history.flatMap((t) => t.runKeys ?? []);
    expect(launched.sort()).toEqual(['a.csv', 'b.csv', 'c.csv', 'd.csv', 'e.csv', 'f.csv']);
    expect(history.filter((t) => t.status === 'FAILURE')).toEqual([]);
    expect(history.some((t) => t.status === 'SKIPPED' && /launched before/.test(t.reason ?? ''))).toBe(true);
    const list = JSON.parse(await cli(['sensors', 'list', '--jobs', file, '--json'])) as Array<{ id: string; status: string; cursor: string }>;
    expect(list).toEqual([expect.objectContaining({ id: 'inbox_job/inbox', status: 'running', cursor: 'f.csv' })]);
    for (const r of await sensorRuns('inbox')) await waitFor('the run to end', async () => ((await sensorRuns('inbox')).find((x) => x.runId === r.runId)?.status === 'SUCCESS' ? true : undefined));
  }, 240_000);

  it('a failing sensor records FAILURE ticks and keeps going; stop and start live in Redis; test launches nothing', async () => {
    const { file, inbox } = jobWith('failing_job', `  broken:\n    fn: ./sensors.mjs#broken\n    interval_seconds: 1\n    status: running\n  later:\n    fn: ./sensors.mjs#newFiles\n    interval_seconds: 1\n    ${IN_PROCESS}\n`);
    writeFileSync(path.join(inbox, 'x.csv'), 'x');
    const serve = startServe(redis.url, file);
    const failures = async (n: number) => {
      const t = await ticks(file, 'broken');
      return t.filter((x) => x.status === 'FAILURE').length >= n ? t : undefined;
    };
    const history = await waitFor('three FAILURE ticks', () => failures(3));
    expect(history[0]?.error).toBe('the inbox is unreachable');
    expect(await cli(['ticks', 'broken', '--jobs', file])).toMatch(/FAILURE {2}the inbox is unreachable/);

    // The later sensor is stopped (the default): test evaluates it, launching nothing.
    const tested = JSON.parse(await cli(['sensors', 'test', 'failing_job/later', '--jobs', file, '--json'])) as { runs: Array<{ run_key: string }> };
    expect(tested.runs.map((r) => r.run_key)).toEqual(['x.csv']);
    expect(await sensorRuns('later')).toEqual([]);
    expect(await cli(['sensors', 'stop', 'broken', '--jobs', file])).toBe('failing_job/broken stopped\n');
    expect(await cli(['sensors', 'start', 'later', '--jobs', file])).toBe('failing_job/later running\n');
    await waitFor('the started sensor to launch its run', async () => ((await sensorRuns('later')).length === 1 ? true : undefined));
    const stoppedAt = (await ticks(file, 'broken')).length;
    await waitFor('three evaluations of later', async () => ((await ticks(file, 'later')).length >= 3 ? true : undefined));
    expect((await ticks(file, 'broken')).length).toBeLessThanOrEqual(stoppedAt + 1); // one may have been under way
    await serve.stop();
  }, 240_000);
});
