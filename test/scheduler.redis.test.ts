/**
 * The scheduler on a fake clock against a real Redis: a due tick makes one run with the
 * scheduled run config, a stopped schedule makes none and does not catch up when started again,
 * a launch that fails is a FAILURE tick with its error, and evaluating twice never runs a tick twice.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimQueuedRuns } from '../src/distributed/run-queue.js';
import { createScheduleStore } from '../src/distributed/schedule-store.js';
import { createScheduler, tickRunId } from '../src/distributed/scheduler.js';
import { openInstance } from '../src/instance/open-instance.js';
import type { Instance } from '../src/instance/types.js';
import { loadJob } from '../src/job/load-job.js';
import { tempDir, waitFor } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';

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

async function jobWith(name: string, schedules: string) {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'ops.mjs'), 'export async function hello(context) { return context.config.day ?? null; }\n');
  const file = path.join(dir, 'job.yaml');
  writeFileSync(file, `name: ${name}\nops:\n  hello: { fn: ./ops.mjs#hello }\nschedules:\n${schedules}`);
  return loadJob(file);
}

describe('the scheduler on a fake clock', () => {
  it('launches one run per due tick with the scheduled run config, however often it evaluates', async () => {
    const job = await jobWith(
      'fake_clock',
      '  daily:\n    cron: "0 6 * * *"\n    timezone: Europe/Berlin\n    status: running\n    run_config: { execution: { config: { in_process: {} } }, ops: { hello: { config: { day: "{{ scheduled_date }}" } } } }\n',
    );
    let clock = Date.parse('2026-07-01T03:00:00Z');
    const make = () => createScheduler({ redis: client, instance, jobs: new Map([[job.name, job]]), logger: pino({ level: 'silent' }), now: () => clock });
    const [a, b] = [make(), make()];
    await a.evaluate(); // first sight: the cursor starts now
    clock = Date.parse('2026-07-01T04:00:01Z'); // 06:00 in Berlin has passed
    await Promise.all([a.evaluate(), b.evaluate(), a.evaluate()]);
    await b.evaluate();
    const runs = (await instance.getRuns({ tags: { 'baton/schedule': 'daily' } })).runs;
    expect(runs).toHaveLength(1);
    expect(runs[0]?.tags['baton/scheduled_time']).toBe('2026-07-01T06:00:00+02:00');
    const detail = await instance.getRun(runs[0]?.runId as string);
    expect(detail?.runConfig).toMatchObject({ ops: { hello: { config: { day: '2026-07-01' } } } });
    const ticks = await createScheduleStore(client).ticks('fake_clock/daily');
    expect(ticks.map((t) => [t.status, t.runIds])).toEqual([['SUCCESS', [runs[0]?.runId]]]);
    // Submitted to the run queue: QUEUED until a serve takes it from the queue and starts it.
    expect(runs[0]?.status).toBe('QUEUED');
    expect(await claimQueuedRuns(client, { holder: 'test', max: 10 })).toEqual([runs[0]?.runId]);
    await instance.startQueuedRun(runs[0]?.runId as string);
    await waitFor('the run to end', async () => ((await instance.getRun(runs[0]?.runId as string))?.status === 'SUCCESS' ? true : undefined));
  });

  it('a stopped schedule makes no runs, and starting it does not catch up', async () => {
    const job = await jobWith('stopped_job', '  hourly:\n    cron: "0 * * * *"\n    status: running\n    run_config: { execution: { config: { in_process: {} } } }\n');
    const store = createScheduleStore(client);
    let clock = Date.parse('2026-07-01T00:30:00Z');
    const scheduler = createScheduler({ redis: client, instance, jobs: new Map([[job.name, job]]), logger: pino({ level: 'silent' }), now: () => clock });
    await scheduler.evaluate();
    await store.setStatus('stopped_job/hourly', 'stopped', clock);
    clock = Date.parse('2026-07-01T05:30:00Z');
    await scheduler.evaluate();
    await store.setStatus('stopped_job/hourly', 'running', clock);
    clock = Date.parse('2026-07-01T05:45:00Z');
    await scheduler.evaluate();
    expect((await instance.getRuns({ job: 'stopped_job' })).runs).toEqual([]);
    expect(await store.ticks('stopped_job/hourly')).toEqual([]);
    clock = Date.parse('2026-07-01T06:00:00Z');
    await scheduler.evaluate();
    expect((await instance.getRuns({ job: 'stopped_job' })).runs).toHaveLength(1);
  });

  it('a tick claimed by a serve that died before launching its run is finished by another, as one run', async () => {
    const job = await jobWith('crashed_job', '  hourly:\n    cron: "0 * * * *"\n    status: running\n    run_config: { execution: { config: { in_process: {} } } }\n');
    const store = createScheduleStore(client);
    let clock = Date.parse('2026-07-01T06:00:30Z');
    const tick = new Date('2026-07-01T06:00:00Z');
    const id = 'crashed_job/hourly';
    // What a serve leaves when it dies right after claiming the 06:00 tick.
    const claim = { schedule: id, tickTime: tick.toISOString(), status: 'STARTED' as const, runIds: [tickRunId(id, tick)], at: new Date(clock).toISOString(), evaluatedAt: new Date(clock).toISOString(), by: 'dead-serve' };
    expect(await store.claim(claim)).toBe(true);
    await store.setCursor(id, clock);
    const scheduler = createScheduler({ redis: client, instance, jobs: new Map([[job.name, job]]), logger: pino({ level: 'silent' }), now: () => clock, staleTickMs: 60_000 });
    await scheduler.evaluate(); // the claim is fresh: its serve may still be launching
    expect((await instance.getRuns({ job: 'crashed_job' })).runs).toEqual([]);
    clock += 90_000;
    await scheduler.evaluate();
    await scheduler.evaluate();
    const runs = (await instance.getRuns({ job: 'crashed_job' })).runs;
    expect(runs.map((r) => [r.runId, r.tags['baton/scheduled_time']])).toEqual([[tickRunId(id, tick), '2026-07-01T06:00:00Z']]);
    expect((await store.ticks(id)).map((t) => t.status)).toEqual(['SUCCESS']);
  });

  it('a launch that fails is a FAILURE tick with the error, and the schedule goes on', async () => {
    const job = await jobWith('failing_job', '  often:\n    cron: "* * * * *"\n    status: running\n    run_config: { execution: { config: { distributed: { redis: "redis://elsewhere.invalid:6390" } } } }\n');
    let clock = Date.parse('2026-07-01T00:00:30Z');
    const scheduler = createScheduler({ redis: client, instance, jobs: new Map([[job.name, job]]), logger: pino({ level: 'silent' }), now: () => clock });
    await scheduler.evaluate();
    clock += 60_000;
    await scheduler.evaluate();
    clock += 60_000;
    await scheduler.evaluate();
    const ticks = await createScheduleStore(client).ticks('failing_job/often');
    expect(ticks.map((t) => t.status)).toEqual(['FAILURE', 'FAILURE']);
    expect(ticks[0]?.error).toMatch(/differs from this instance's Redis/);
  });
});
