/**
 * Schedules run by real `coordinator serve` processes on a real Redis: one run per tick across
 * three serves, none twice; catch-up after downtime; operators start and stop schedules in Redis.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../src/instance/types.js';
import { runCli } from './helpers/cli.js';
import { runsTagged, startServe as startServeOn, stopAllServes, type Serve } from './helpers/serve.js';
import { tempDir, waitFor } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

afterEach(stopAllServes);

const startServe = (jobs: string): Serve => startServeOn(redis.url, jobs);

/** A job in a fresh directory with the given `schedules:` YAML block; returns its path. */
function jobWith(name: string, schedules: string): string {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'ops.mjs'), 'export async function hello() { return 1; }\n');
  const job = path.join(dir, 'job.yaml');
  writeFileSync(job, `name: ${name}\nops:\n  hello: { fn: ./ops.mjs#hello }\nschedules:\n${schedules}`);
  return job;
}

const IN_PROCESS = 'run_config: { execution: { config: { in_process: {} } } }';

const scheduledRuns = (schedule: string): Promise<RunSummary[]> => runsTagged(redis.url, 'baton/schedule', schedule);

interface Tick {
  tickTime: string;
  status: string;
  runIds: string[];
  evaluatedAt: string;
  reason?: string;
}

async function ticks(job: string, name: string): Promise<Tick[]> {
  const r = await runCli(['ticks', name, '--jobs', job, '--json', '--limit', '200'], { env: { REDIS_URL: redis.url } });
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Tick[]).reverse();
}

describe('schedules run by serve', () => {
  it('three serves make one run per tick of an every-2-seconds schedule, none twice', async () => {
    const job = jobWith('sched3', `  every2:\n    cron: "*/2 * * * * *"\n    status: running\n    tags: { team: data }\n    ${IN_PROCESS}\n`);
    for (let i = 0; i < 3; i++) startServe(job);
    // ~20 s of ticks once the serves run.
    await waitFor('a first scheduled run', async () => ((await scheduledRuns('every2')).length > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 20_000));
    await stopAllServes();

    const runs = await scheduledRuns('every2');
    const times = runs.map((r) => Date.parse(r.tags['baton/scheduled_time'] as string)).sort((a, b) => a - b);
    expect(new Set(times).size).toBe(times.length); // none twice
    expect(times.length).toBeGreaterThanOrEqual(8);
    for (let i = 1; i < times.length; i++) expect((times[i] as number) - (times[i - 1] as number)).toBe(2000); // none missed
    for (const r of runs) expect(r.tags).toMatchObject({ team: 'data', 'baton/schedule': 'every2' });
    // The tick history names each run.
    const history = await ticks(job, 'every2');
    const succeeded = history.filter((t) => t.status === 'SUCCESS');
    expect(succeeded.flatMap((t) => t.runIds).sort()).toEqual(runs.map((r) => r.runId).sort());
    expect(history.filter((t) => t.status !== 'SUCCESS')).toEqual([]);
  }, 180_000);

  it('after serve is down for 10 ticks, catchup latest makes one run and all makes max_catchup', async () => {
    const job = jobWith(
      'catchup',
      [
        `  latest2:\n    cron: "*/2 * * * * *"\n    status: running\n    catchup: latest\n    ${IN_PROCESS}\n`,
        `  all2:\n    cron: "*/2 * * * * *"\n    status: running\n    catchup: all\n    max_catchup: 3\n    ${IN_PROCESS}\n`,
      ].join(''),
    );
    const first = startServe(job);
    const ranBoth = async () => ((await scheduledRuns('latest2')).length > 0 && (await scheduledRuns('all2')).length > 0 ? true : undefined);
    await waitFor('both schedules to run once', ranBoth);
    await first.stop();
    const downFrom = Date.now();
    await new Promise((r) => setTimeout(r, 21_000));
    startServe(job);
    // The restarted serve's first evaluation covers the downtime; wait for one evaluation after it.
    const caughtUp = async (name: string) => {
      const history = await ticks(job, name);
      const evaluations = [...new Set(history.filter((t) => Date.parse(t.evaluatedAt) > downFrom).map((t) => t.evaluatedAt))].sort();
      return evaluations.length >= 2 ? history.filter((t) => t.evaluatedAt === evaluations[0]) : undefined;
    };
    const latest = await waitFor('latest2 to catch up', () => caughtUp('latest2'));
    const all = await waitFor('all2 to catch up', () => caughtUp('all2'));
    expect(latest.filter((t) => t.status === 'SUCCESS')).toHaveLength(1);
    expect(latest.filter((t) => t.status === 'SKIPPED').length).toBeGreaterThanOrEqual(9);
    expect(latest.find((t) => t.status === 'SKIPPED')?.reason).toMatch(/catchup: latest/);
    expect(all.filter((t) => t.status === 'SUCCESS')).toHaveLength(3);
    expect(all.filter((t) => t.status === 'SKIPPED').length).toBeGreaterThanOrEqual(7);
    // The caught-up runs are the newest missed ticks.
    const newestSkipped = Math.max(...all.filter((t) => t.status === 'SKIPPED').map((t) => Date.parse(t.tickTime)));
    for (const t of all.filter((x) => x.status === 'SUCCESS')) expect(Date.parse(t.tickTime)).toBeGreaterThan(newestSkipped);
  }, 240_000);

  it('stop and start live in Redis; list and preview show them', async () => {
    const job = jobWith('ops_job', `  nightly:\n    cron: "30 2 * * *"\n    timezone: Europe/Berlin\n`);
    const env = { REDIS_URL: redis.url };
    const list = async () => JSON.parse((await runCli(['schedules', 'list', '--jobs', job, '--json'], { env })).stdout) as Array<{ id: string; status: string; nextTick: string }>;
    expect((await list())[0]).toMatchObject({ id: 'ops_job/nightly', status: 'stopped' });
    expect((await runCli(['schedules', 'start', 'nightly', '--jobs', job], { env })).stdout).toBe('ops_job/nightly running\n');
    expect((await list())[0]?.status).toBe('running');
    expect((await list())[0]?.nextTick).toMatch(/T02:30:00\+0[12]:00$/);
    expect((await runCli(['schedules', 'stop', 'ops_job/nightly', '--jobs', job], { env })).code).toBe(0);
    expect((await list())[0]?.status).toBe('stopped');
    const preview = await runCli(['schedules', 'preview', 'nightly', '--jobs', job, '--count', '3'], { env });
    expect(preview.stdout.trim().split('\n')).toHaveLength(3);
    const missing = await runCli(['schedules', 'start', 'weekly', '--jobs', job], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no schedule "weekly".*ops_job\/nightly/);
  }, 120_000);
});
