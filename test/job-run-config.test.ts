/**
 * Run config set on the job itself (`run_config:` / `run_config_file:`): checked and located in
 * the file that holds it, merged under every `-c` file and library run config, an executor named
 * later replacing the job's, and left out of the definition hash.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InputError, type Problem } from '../src/errors.js';
import { loadJob, parseJob } from '../src/job/load-job.js';
import { loadRunConfig, resolveJobRunConfig, resolveRunConfig } from '../src/job/run-config.js';
import { prepareRun } from '../src/run/execute-job.js';

const OPS = `ops:
  extract: { fn: ./ops.mjs#extract }
  report: { fn: ./ops.mjs#report, ins: [extract] }
`;

/** Writes files into a fresh directory; returns the path of the first. */
function files(entries: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'baton-job-run-config-'));
  for (const [name, text] of Object.entries(entries)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return join(dir, Object.keys(entries)[0] as string);
}

async function failure(run: () => unknown): Promise<{ code: string; problems: Problem[]; message: string }> {
  try {
    await run();
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    return { code: err.code, problems: err.problems, message: err.message };
  }
  throw new Error('expected an InputError');
}

const IN_PROCESS_JOB = `name: j
run_config:
  execution:
    config:
      in_process: {}
  ops:
    extract: { config: { day: "2024-01-01", region: eu } }
${OPS}`;

const savedRedisUrl = process.env.REDIS_URL;
afterEach(() => {
  if (savedRedisUrl === undefined) delete process.env.REDIS_URL;
  else process.env.REDIS_URL = savedRedisUrl;
});

describe('the job\'s own run config', () => {
  it('is the run config when no -c file is given, and says where each executor setting came from', async () => {
    const path = files({ 'job.yaml': IN_PROCESS_JOB });
    const job = await loadJob(path);
    expect(job.runConfig).toEqual({
      value: { execution: { config: { in_process: {} } }, ops: { extract: { config: { day: '2024-01-01', region: 'eu' } } } },
      file: path,
      sourcePath: path,
      path: ['run_config'],
    });
    const rc = await loadRunConfig([], job);
    expect(rc.executor).toEqual({ kind: 'in_process', retries: true });
    expect(rc.ops.extract).toEqual({ config: { day: '2024-01-01', region: 'eu' } });
    expect(rc.origins).toEqual({ 'execution.config.in_process': path });
  });

  it('a -c file naming another executor replaces the job\'s; maps still merge, lists and scalars replace', async () => {
    const path = files({
      'job.yaml': IN_PROCESS_JOB,
      'more.yaml': 'execution:\n  config:\n    multiprocess: { max_concurrent: 3 }\nops:\n  extract: { config: { day: "2024-02-01" } }\n',
    });
    const more = join(path, '../more.yaml');
    const rc = await loadRunConfig([more], await loadJob(path));
    expect(rc.executor).toMatchObject({ kind: 'multiprocess', maxConcurrent: 3 });
    expect(rc.raw).toEqual({
      execution: { config: { multiprocess: { max_concurrent: 3 } } }, // no in_process: replaced, not joined
      ops: { extract: { config: { day: '2024-02-01', region: 'eu' } } },
    });
    expect(rc.origins).toEqual({ 'execution.config.multiprocess': more, 'execution.config.multiprocess.max_concurrent': more });
  });

  it('the same executor named again merges into the job\'s settings; a later choice of start method or retries replaces', async () => {
    const path = files({
      'job.yaml': `name: j
run_config:
  execution:
    config:
      multiprocess:
        max_concurrent: 4
        start_method: { forkserver: {} }
        retries: { enabled: {} }
        tag_concurrency_limits: [{ key: database, value: redshift, limit: 2 }]
${OPS}`,
      'c.yaml': 'execution:\n  config:\n    multiprocess:\n      start_method: { spawn: {} }\n      retries: { disabled: {} }\n',
    });
    const c = join(path, '../c.yaml');
    const rc = await loadRunConfig([c], await loadJob(path));
    expect(rc.executor).toEqual({
      kind: 'multiprocess',
      maxConcurrent: 4,
      startMethod: { kind: 'spawn' },
      tagConcurrencyLimits: [{ key: 'database', value: 'redshift', limit: 2 }],
      retries: false,
    });
    expect(rc.origins).toEqual({
      'execution.config.multiprocess': c,
      'execution.config.multiprocess.max_concurrent': path,
      'execution.config.multiprocess.start_method': c,
      'execution.config.multiprocess.retries': c,
      'execution.config.multiprocess.tag_concurrency_limits': path,
    });
  });

  it('the library merges a plain run config over the job\'s (prepareRun, resolveJobRunConfig); resolveRunConfig takes it as given', async () => {
    const job = await loadJob(files({ 'job.yaml': IN_PROCESS_JOB, 'ops.mjs': 'export const extract = () => 1; export const report = () => 2;\n' }));
    const over = { execution: { config: { multiprocess: { max_concurrent: 3 } } } };
    expect(resolveJobRunConfig(over, job).executor).toMatchObject({ kind: 'multiprocess', maxConcurrent: 3 });
    expect(resolveJobRunConfig({}, job).executor.kind).toBe('in_process');
    expect(resolveRunConfig({}, job).executor.kind).toBe('multiprocess'); // exactly as given: a recorded run's config
    const prepared = await prepareRun(job, { runConfig: { ops: { extract: { config: { day: 'x' } } } } });
    expect(prepared.runConfig.executor.kind).toBe('in_process');
    expect(prepared.runConfig.raw.ops).toEqual({ extract: { config: { day: 'x', region: 'eu' } } });
  });

  it('run_config_file: a run-config file relative to the job file', async () => {
    const path = files({
      'jobs/job.yaml': `name: j\nrun_config_file: ../config/base.yaml\n${OPS}`,
      'config/base.yaml': 'execution:\n  config:\n    multiprocess: { max_concurrent: 2 }\n',
    });
    const job = await loadJob(path);
    const base = join(path, '../../config/base.yaml');
    expect(job.runConfig).toEqual({ value: { execution: { config: { multiprocess: { max_concurrent: 2 } } } }, file: base, sourcePath: base, path: [] });
    expect((await loadRunConfig([], job)).executor).toMatchObject({ kind: 'multiprocess', maxConcurrent: 2 });
    // parseJob (synchronous) reads it too.
    const text = `name: j\nrun_config_file: ../config/base.yaml\n${OPS}`;
    expect(parseJob(text, 'job.yaml', join(path, '..')).runConfig?.value).toEqual(job.runConfig?.value);
  });

  it('the hash leaves out run_config, run_config_file, description and tags', async () => {
    const plain = (await loadJob(files({ 'job.yaml': `name: j\n${OPS}` }))).hash;
    const dressed = `name: j\ndescription: nightly\ntags: { team: data }\n${IN_PROCESS_JOB.slice('name: j\n'.length)}`;
    expect((await loadJob(files({ 'job.yaml': dressed }))).hash).toBe(plain);
    const viaFile = files({ 'job.yaml': `name: j\nrun_config_file: rc.yaml\n${OPS}`, 'rc.yaml': 'ops: {}\n' });
    expect((await loadJob(viaFile)).hash).toBe(plain);
    expect((await loadJob(files({ 'job.yaml': `name: k\n${OPS}` }))).hash).not.toBe(plain);
    expect((await loadJob(files({ 'job.yaml': `name: j\n${OPS.replace('#report', '#other')}` }))).hash).not.toBe(plain);
  });
});

describe('the job\'s own run config: problems, located in the file that holds it', () => {
  it('a misspelt max_concurent in run_config is a job problem at its line', async () => {
    const path = files({
      'job.yaml': `name: j\nrun_config:\n  execution:\n    config:\n      multiprocess:\n        max_concurent: 3\n${OPS}`,
    });
    const { code, problems } = await failure(() => loadJob(path));
    expect(code).toBe('JOB_INVALID');
    expect(problems).toEqual([
      {
        file: path,
        line: 6,
        column: 9,
        path: 'run_config.execution.config.multiprocess.max_concurent',
        message: 'unknown key "max_concurent"',
        hint: 'did you mean "max_concurrent"?',
      },
    ]);
  });

  it('unknown ops, two executors and a non-map, each at its place', async () => {
    const bad = `name: j\nrun_config:\n  execution:\n    config: { in_process: {}, multiprocess: {} }\n  ops:\n    extrct: {}\n${OPS}`;
    const { message } = await failure(() => parseJob(bad, 'job.yaml', '/jobs'));
    expect(message.split('\n')).toEqual([
      'job.yaml:4:13 at run_config.execution.config: expected exactly one executor, got 2: in_process, multiprocess (keep only one)',
      'job.yaml:6:5 at run_config.ops.extrct: unknown op "extrct" (did you mean "extract"?)',
    ]);
    const list = await failure(() => parseJob(`name: j\nrun_config: [1]\n${OPS}`, 'job.yaml', '/jobs'));
    expect(list.message).toBe('job.yaml:2:13 at run_config: expected a map at the top level (with execution and/or ops), got a list');
  });

  it('run_config and run_config_file together are refused', async () => {
    const text = `name: j\nrun_config: {}\nrun_config_file: rc.yaml\n${OPS}`;
    const { message } = await failure(() => parseJob(text, 'job.yaml', '/jobs'));
    expect(message).toBe(
      'job.yaml:3:1 at run_config_file: expected run_config or run_config_file, not both (keep the run config in one place: inline, or in the file)',
    );
  });

  it('problems of a run_config_file are located in it; a missing one names the job line that names it', async () => {
    const path = files({ 'job.yaml': `name: j\nrun_config_file: rc.yaml\n${OPS}`, 'rc.yaml': 'execution:\n  config:\n    multiprocess: { max_concurent: 3 }\n' });
    const bad = await failure(() => loadJob(path));
    expect(bad.code).toBe('RUN_CONFIG_INVALID');
    expect(bad.message).toBe(
      `${join(path, '../rc.yaml')}:3:21 at execution.config.multiprocess.max_concurent: unknown key "max_concurent" (did you mean "max_concurrent"?)`,
    );
    const missing = files({ 'job.yaml': `name: j\nrun_config_file: ./nowhere.yaml\n${OPS}` });
    const gone = await failure(() => loadJob(missing));
    expect(gone.code).toBe('FILE_UNREADABLE');
    expect(gone.message).toBe(`${join(missing, '../nowhere.yaml')}: cannot read file: no such file (named by run_config_file at ${missing}:2:18)`);
  });

  it('a problem only the merged config has (a bad REDIS_URL) points into the job file', async () => {
    const path = files({ 'job.yaml': `name: j\nrun_config:\n  execution:\n    config:\n      distributed: {}\n${OPS}` });
    const job = await loadJob(path);
    process.env.REDIS_URL = 'http://nope';
    const { problems } = await failure(() => loadRunConfig([], job));
    expect(problems).toEqual([
      expect.objectContaining({ file: path, line: 5, column: 20, path: 'run_config.execution.config.distributed' }),
    ]);
  });
});
