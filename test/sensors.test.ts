/**
 * Sensors without Redis: declared in the job file (checked and located, not hashed), and run by
 * the sensors daemon over a local instance's files on a fake clock — one run per new file, never
 * a run key twice, the cursor saved after the runs, FAILURE ticks for a throwing, timed-out or
 * malformed evaluation with the sensor going on, and `sensors test` launching nothing.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startQueuedRuns } from '../src/automation/embedded-queue.js';
import { openLocalAutomationStores } from '../src/automation/local-tick-store.js';
import { createSensorDaemon, sensorRunId, testSensor } from '../src/automation/sensor-daemon.js';
import type { JobDefinition } from '../src/core/types.js';
import { InputError } from '../src/errors.js';
import { openInstance } from '../src/instance/open-instance.js';
import { startUiServer } from '../src/ui-server/server.js';
import type { Instance } from '../src/instance/types.js';
import { loadJob, parseJob } from '../src/job/load-job.js';
import { runCli, tempDir } from './helpers/cli.js';
import { waitFor } from './helpers/distributed.js';
import { sensorJob } from './helpers/serve.js';

const OPS = 'ops:\n  handle: { fn: ./ops.mjs#handle }\n';
const IN_PROCESS = 'run_config: { execution: { config: { in_process: {} } } }';
const silent = pino({ level: 'silent' });

const jobDir = sensorJob;

const opened: Instance[] = [];
afterAll(async () => {
  await Promise.all(opened.map((i) => i.close()));
});

async function harness(job: JobDefinition) {
  const storageDir = tempDir('baton-sensors-home-');
  const instance = await openInstance({ storageDir });
  opened.push(instance);
  const stores = openLocalAutomationStores(storageDir);
  let clock = Date.parse('2026-07-01T00:00:00Z');
  const daemon = () => createSensorDaemon({ store: stores.sensors, instance, jobs: new Map([[job.name, job]]), logger: silent, now: () => clock });
  return { instance, stores, storageDir, daemon, advance: (ms: number) => (clock += ms) };
}

function failure(text: string, baseDir = '/jobs'): InputError {
  try {
    parseJob(text, 'job.yaml', baseDir);
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('expected the job to be refused');
}

describe('sensors in the job file', () => {
  it('reads a sensor with its defaults, and leaves sensors out of the definition hash', async () => {
    const { file } = jobDir('reads', `  inbox:\n    fn: ./sensors.mjs#newFiles\n`);
    const job = await loadJob(file);
    expect(job.sensors?.get('inbox')).toMatchObject({ name: 'inbox', intervalSeconds: 30, timeoutSeconds: 60, defaultStatus: 'stopped', tags: {} });
    expect(job.sensors?.get('inbox')?.fn).toMatchObject({ exportName: 'newFiles', ref: './sensors.mjs#newFiles' });
    const other = jobDir('reads', `  inbox:\n    fn: ./sensors.mjs#broken\n    interval_seconds: 5\n    status: running\n`);
    expect((await loadJob(other.file)).hash).toBe(job.hash);
  });

  it('names the file, line, path and what was expected for a bad sensor', () => {
    const { dir } = jobDir('bad', '');
    const e = failure(
      `name: j
${OPS}sensors:
  inbox:
    fn: ./missing.mjs#newFiles
    interval_seconds: -1
    status: paused
  other:
    interval_seconds: 2
    run_config: { ops: { nope: {} } }
    cron: "* * * * *"
  bad-name:
    fn: ./sensors.mjs#
`,
      dir,
    );
    const text = e.problems.map((p) => `${p.file}:${p.line} ${p.path}: ${p.message}`).join('\n');
    expect(e.code).toBe('JOB_INVALID');
    expect(text).toMatch(/job\.yaml:6 sensors\.inbox\.fn: no module "\.\/missing\.mjs"/);
    expect(text).toContain('job.yaml:7 sensors.inbox.interval_seconds: expected how often it is evaluated: a number of seconds > 0');
    expect(text).toContain('job.yaml:8 sensors.inbox.status: expected "running" or "stopped"');
    expect(text).toContain('job.yaml:10 sensors.other.fn: missing required key "fn": expected a module reference');
    expect(text).toMatch(/job\.yaml:11 sensors\.other\.run_config\.ops\.nope/);
    expect(text).toContain('job.yaml:12 sensors.other.cron: unknown key "cron"');
    expect(text).toContain('expected a sensor name made of letters, digits and underscores, got "bad-name"');
    expect(text).toMatch(/job\.yaml:14 sensors\.bad-name\.fn: missing the export name after "#"/);
  });

  it('a bad sensor is exit 2 from the CLI, located', async () => {
    const { file } = jobDir('cli_bad', `  inbox:\n    fn: ./sensors.mjs#newFiles\n    timeout_seconds: soon\n`);
    const r = await runCli(['validate', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/job\.yaml:7:\d+.*sensors\.inbox\.timeout_seconds.*number of seconds > 0/);
  });
});

describe('the sensors daemon over a local instance, on a fake clock', () => {
  it('launches one run per new file, never a run key twice, with merged run config and tags; the cursor follows', async () => {
    const { file, inbox } = jobDir('inbox_job', `  inbox:\n    fn: ./sensors.mjs#newFiles\n    interval_seconds: 2\n    status: running\n    tags: { team: data }\n    ${IN_PROCESS}\n`);
    const job = await loadJob(file);
    const h = await harness(job);
    const [a, b] = [h.daemon(), h.daemon()];
    await a.evaluate(); // empty inbox
    writeFileSync(path.join(inbox, 'one.csv'), '1');
    writeFileSync(path.join(inbox, 'two.csv'), '2');
    await Promise.all([a.evaluate(), b.evaluate()]); // same interval: evaluated already
    h.advance(2000);
    await Promise.all([a.evaluate(), b.evaluate(), a.evaluate()]);
    h.advance(2000);
    writeFileSync(path.join(inbox, 'three.csv'), '3');
    await b.evaluate();
    h.advance(2000);
    await a.evaluate(); // nothing new
    const runs = (await h.instance.getRuns({ tags: { 'baton/sensor': 'inbox' } })).runs;
    expect(runs.map((r) => r.tags['baton/run_key']).sort()).toEqual(['one.csv', 'three.csv', 'two.csv']);
    for (const r of runs) {
      expect(r.runId).toBe(sensorRunId('inbox_job/inbox', r.tags['baton/run_key'] as string));
      expect(r.tags).toMatchObject({ team: 'data', source: 'inbox' });
    }
    const one = runs.find((r) => r.tags['baton/run_key'] === 'one.csv');
    const detail = await h.instance.getRun(one?.runId as string);
    expect(detail?.runConfig).toMatchObject({ execution: { config: { in_process: {} } }, ops: { handle: { config: { file: 'one.csv' } } } });
    const ticks = await h.stores.sensors.ticks('inbox_job/inbox');
    expect(ticks.map((t) => t.status)).toEqual(['SKIPPED', 'SUCCESS', 'SUCCESS', 'SKIPPED']);
    expect(ticks[0]?.reason).toMatch(/launched before: one\.csv, three\.csv, two\.csv/);
    expect(ticks[1]?.runKeys).toEqual(['three.csv']);
    expect(ticks[3]?.reason).toBe('the inbox is empty');
    expect(await h.stores.sensors.cursor('inbox_job/inbox')).toBe('two.csv');
    expect(await h.stores.sensors.lastRunKey('inbox_job/inbox')).toBe('three.csv');
    // Sensors submit their runs QUEUED; with no serve, the embedded queue (coordinator ui's) starts them.
    for (const r of runs) expect(r.status).toBe('QUEUED');
    expect((await startQueuedRuns(h.instance, silent)).sort()).toEqual(runs.map((r) => r.runId).sort());
    for (const r of runs) await waitFor('the run to end', async () => ((await h.instance.getRun(r.runId))?.status === 'SUCCESS' ? true : undefined));
  });

  it('a throwing, timed-out or malformed evaluation is a FAILURE tick, and the sensor goes on', async () => {
    const { file, inbox } = jobDir(
      'failing_job',
      [
        `  broken:\n    fn: ./sensors.mjs#broken\n    interval_seconds: 1\n    status: running\n`,
        `  slow:\n    fn: ./sensors.mjs#slow\n    interval_seconds: 1\n    timeout_seconds: 0.2\n    status: running\n`,
        `  malformed:\n    fn: ./sensors.mjs#badAnswer\n    interval_seconds: 1\n    status: running\n`,
        `  stopped:\n    fn: ./sensors.mjs#newFiles\n    interval_seconds: 1\n`,
      ].join(''),
    );
    writeFileSync(path.join(inbox, 'x.csv'), 'x');
    const h = await harness(await loadJob(file));
    const daemon = h.daemon();
    for (let i = 0; i < 3; i++) {
      await daemon.evaluate();
      h.advance(1000);
    }
    const ticks = (name: string) => h.stores.sensors.ticks(`failing_job/${name}`);
    expect((await ticks('broken')).map((t) => [t.status, t.error])).toEqual(Array(3).fill(['FAILURE', 'the inbox is unreachable']));
    expect((await ticks('slow')).map((t) => t.status)).toEqual(['FAILURE', 'FAILURE', 'FAILURE']);
    expect((await ticks('slow'))[0]?.error).toMatch(/longer than 0\.2 s \(timeout_seconds\)/);
    expect((await ticks('malformed'))[0]?.error).toMatch(/runs\[0\]\.run_key is not a non-empty string/);
    expect(await ticks('stopped')).toEqual([]);
    expect((await h.instance.getRuns({})).runs).toEqual([]);
  });

  it('sensors test evaluates once with the stored cursor and launches nothing', async () => {
    const { file, inbox } = jobDir('test_job', `  inbox:\n    fn: ./sensors.mjs#newFiles\n    interval_seconds: 1\n    status: running\n    ${IN_PROCESS}\n`);
    writeFileSync(path.join(inbox, 'a.csv'), 'a');
    const job = await loadJob(file);
    const h = await harness(job);
    await h.stores.sensors.setCursor('test_job/inbox', 'before');
    const sensor = job.sensors?.get('inbox');
    if (!sensor) throw new Error('no sensor');
    const result = await testSensor(h.stores.sensors, job, sensor, silent);
    expect(result).toMatchObject({ runs: [{ runKey: 'a.csv' }], cursor: 'a.csv', storedCursor: 'before' });
    const cli = await runCli(['sensors', 'test', 'inbox', '--jobs', file, '--storage', h.storageDir, '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ runs: [{ run_key: 'a.csv', run_config: { ops: { handle: { config: { file: 'a.csv' } } } } }], cursor: 'a.csv', storedCursor: 'before' });
    expect((await h.instance.getRuns({})).runs).toEqual([]);
    expect(await h.stores.sensors.ticks('test_job/inbox')).toEqual([]);
    expect(await h.stores.sensors.cursor('test_job/inbox')).toBe('before');
    const missing = await runCli(['sensors', 'test', 'nope', '--jobs', file, '--storage', h.storageDir]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no sensor "nope".*test_job\/inbox/);
  });

  it('a sensor written in TypeScript is evaluated like a .mjs one', async () => {
    const { dir, file } = jobDir('ts_job', `  typed:\n    fn: ./typed-sensor.ts#typed\n    interval_seconds: 1\n`);
    writeFileSync(
      path.join(dir, 'typed-sensor.ts'),
      'interface Ctx { cursor?: string }\nexport async function typed({ cursor }: Ctx): Promise<{ runs: Array<{ run_key: string }> }> {\n  return { runs: [{ run_key: `ts-${cursor ?? \'none\'}` }] };\n}\n',
    );
    const job = await loadJob(file);
    const h = await harness(job);
    await h.stores.sensors.setCursor('ts_job/typed', 'c1');
    const sensor = job.sensors?.get('typed');
    if (!sensor) throw new Error('no sensor');
    expect((await testSensor(h.stores.sensors, job, sensor, silent)).runs).toEqual([{ runKey: 'ts-c1' }]);
  });

  it('coordinator ui without Redis runs the sensors itself, with state in its storage directory', async () => {
    const { file, inbox } = jobDir('embedded', `  inbox:\n    fn: ./sensors.mjs#newFiles\n    interval_seconds: 1\n    status: running\n    ${IN_PROCESS}\n`);
    writeFileSync(path.join(inbox, 'e.csv'), 'e');
    const storageDir = tempDir('baton-sensors-home-');
    const ui = await runCli(['ui', '--jobs', file, '--storage', storageDir, '--port', '0'], { interruptWhen: /sensor launched runs/, interruptSignal: 'SIGTERM' });
    expect(ui.stdout).toContain('(schedules and sensors run here)');
    const ticks = await runCli(['ticks', 'inbox', '--jobs', file, '--storage', storageDir, '--json']);
    expect(ticks.code, ticks.stderr).toBe(0);
    expect((JSON.parse(ticks.stdout) as Array<{ status: string; runKeys?: string[] }>).filter((t) => t.status === 'SUCCESS').flatMap((t) => t.runKeys)).toEqual(['e.csv']);
    const instance = await openInstance({ storageDir });
    opened.push(instance);
    expect((await instance.getRuns({ tags: { 'baton/run_key': 'e.csv' } })).runs).toHaveLength(1);
  });

  it('the UI API lists sensors with their ticks, starts and stops them, and reads ticks by name', async () => {
    const { file } = jobDir('api_job', `  inbox:\n    fn: ./sensors.mjs#newFiles\n    interval_seconds: 1\n  broken:\n    fn: ./sensors.mjs#broken\n    interval_seconds: 1\n    status: running\n`);
    const storageDir = tempDir('baton-sensors-home-');
    const instance = await openInstance({ storageDir });
    opened.push(instance);
    const stores = openLocalAutomationStores(storageDir);
    const server = await startUiServer({ instance, jobPaths: [file], port: 0, automation: { stores, run: true, intervalMs: 200, logger: silent } });
    try {
      const get = async (p: string) => (await fetch(`${server.url}api/${p}`)).json() as Promise<Record<string, unknown>>;
      const post = (p: string) => fetch(`${server.url}api/${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      type Row = { id: string; status: string; ticks: Array<{ status: string; error?: string }> };
      const rows = async () => (await get('sensors')).sensors as Row[];
      expect((await rows()).map((r) => [r.id, r.status])).toEqual([['api_job/inbox', 'stopped'], ['api_job/broken', 'running']]);
      await waitFor('a FAILURE tick of broken', async () => ((await rows()).find((r) => r.id === 'api_job/broken')?.ticks[0]?.status === 'FAILURE' ? true : undefined));
      expect(await (await post('sensors/api_job/broken/stop')).json()).toEqual({ id: 'api_job/broken', status: 'stopped' });
      expect(await (await post('sensors/api_job/inbox/start')).json()).toEqual({ id: 'api_job/inbox', status: 'running' });
      expect((await rows()).map((r) => r.status)).toEqual(['running', 'stopped']);
      const ticks = await get('ticks?name=broken&kind=sensors');
      expect(ticks).toMatchObject({ id: 'api_job/broken', kind: 'sensors', ticks: expect.arrayContaining([expect.objectContaining({ status: 'FAILURE', error: 'the inbox is unreachable' })]) });
      expect((await fetch(`${server.url}api/ticks?name=nope`)).status).toBe(404);
      expect((await post('sensors/api_job/nope/start')).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
