/**
 * Bad input writes nothing to Redis. Every malformed file of test/fixtures/bad (paired as its
 * README says: job files alone, run-config files with the good job test/fixtures/jobs/etl.yaml),
 * given to `coordinator run` together with a distributed run config that points at this file's
 * Redis (REDIS_URL too), and every bad flag (selections, run ids, tags, global limits), plus files
 * that cannot be committed (over 64 MiB, missing, a directory): exit 2, and the Redis is still
 * empty afterwards, having run no write command at all. A valid run at the end proves the check
 * would see a write.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, parseErrorSummary, runCli, type CliResult } from './helpers/cli.js';
import { distributedConfig, tempDir, uniqueQueue } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorker, stopAllWorkers } from './helpers/workers.js';

const BAD = path.join(ROOT, 'test/fixtures/bad');
const GOOD_JOB = path.join(ROOT, 'test/fixtures/jobs/etl.yaml');
// A job whose ops exist: with valid flags it really runs on the distributed executor.
const DIAMOND = path.join(ROOT, 'test/fixtures/distributed/diamond.yaml');

let redis: TestRedis;
let probe: Redis;
let dist = '';
let queue = '';
let scratch = '';

beforeAll(async () => {
  redis = await startTestRedis();
  probe = new Redis(redis.url);
  await probe.config('RESETSTAT');
  queue = uniqueQueue();
  dist = distributedConfig(redis.url, queue);
  scratch = tempDir();
});
afterEach(stopAllWorkers);
afterAll(async () => {
  if (scratch) rmSync(scratch, { recursive: true, force: true }); // the 65 MiB file
  probe?.disconnect();
  await redis?.close();
});

const why = (r: CliResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** The README's rows: `file | code | fragment`; only the file names are used here. */
function corpus(): string[] {
  return readFileSync(path.join(BAD, 'README.md'), 'utf8')
    .split('\n')
    .filter((line) => /^\| `[a-z0-9-]+\.yaml`/.test(line))
    .map((line) => (/^\| `([a-z0-9-]+\.yaml)`/.exec(line) as RegExpExecArray)[1] as string);
}

/** Runs a refused command: exit 2, no run summary on stdout (with --json: one error object), an error line, no stack trace, an empty Redis. */
async function expectRefused(args: string[], mentions?: string): Promise<CliResult> {
  const r = await runCli(args, { env: { REDIS_URL: redis.url } });
  expect(r.code, why(r)).toBe(2);
  if (args.includes('--json')) parseErrorSummary(r); // one error object, no run summary
  else expect(r.stdout, why(r)).toBe('');
  expect(r.stderr, why(r)).toMatch(/^error/m);
  expect(r.stderr, why(r)).not.toMatch(/internal error|\n\s+at .*:\d+:\d+\)?\n/);
  if (mentions) expect(r.stderr, why(r)).toContain(mentions);
  expect(await probe.dbsize(), `Redis written by: coordinator ${args.join(' ')}\n${why(r)}`).toBe(0);
  return r;
}

const files = corpus();

describe('malformed files with a distributed config: exit 2, nothing written to Redis', () => {
  it('the corpus has a README row for every file and at least 30 files, of every kind', () => {
    const onDisk = readdirSync(BAD).filter((f) => f.endsWith('.yaml')).sort();
    expect([...files].sort()).toEqual(onDisk);
    expect(files.length).toBeGreaterThanOrEqual(30);
    const kinds = ['yaml-syntax', 'cycle', 'unknown-key', 'not-utf8', 'negative-limit', 'distributed-'];
    for (const kind of kinds) expect(files.some((f) => f.includes(kind)), kind).toBe(true);
  });

  // Concurrent: each case is a separate CLI process, mostly start-up time.
  it.concurrent.each(files.filter((f) => f.startsWith('job-')))('run %s -c distributed.yaml', async (file) => {
    const bad = path.join(BAD, file);
    await expectRefused(['run', bad, '-c', dist, '--json'], bad);
  });

  // The distributed config first, so the bad file's values win the merge. Merged over a
  // distributed config, `execution: { config: {} }` is no longer wrong (maps merge): that run is
  // still refused (etl.yaml's modules are not there), just not for the file's own problem.
  const neutralisedByMerge = new Set(['config-no-executor.yaml']);
  it.concurrent.each(files.filter((f) => f.startsWith('config-')))('run etl.yaml -c distributed.yaml -c %s', async (file) => {
    const bad = path.join(BAD, file);
    await expectRefused(['run', GOOD_JOB, '-c', dist, '-c', bad, '--json'], neutralisedByMerge.has(file) ? undefined : bad);
  });

  // Alone, with REDIS_URL pointing at the test Redis (the distributed executor's default URL).
  it.concurrent.each(files.filter((f) => f.startsWith('config-')))('run etl.yaml -c %s (REDIS_URL set)', async (file) => {
    const bad = path.join(BAD, file);
    await expectRefused(['run', GOOD_JOB, '-c', bad, '--json'], bad);
  });

  it.concurrent.each(files.filter((f) => f.startsWith('config-distributed-')))('run diamond.yaml -c distributed.yaml -c %s --detach', async (file) => {
    const bad = path.join(BAD, file);
    await expectRefused(['run', DIAMOND, '-c', dist, '-c', bad, '--detach', '--json'], bad);
  });
});

describe('bad flags and files that cannot be committed: exit 2, nothing written to Redis', () => {
  const flagCases: Array<[string, () => string[], string]> = [
    ['an unknown op', () => ['-s', 'nope'], 'SELECTION_INVALID'],
    ['a misspelt op with a suffix', () => ['-s', 'srcc*'], 'SELECTION_INVALID'],
    ['two leading stars', () => ['-s', '**src'], 'SELECTION_INVALID'],
    ['two trailing stars', () => ['-s', '*src**'], 'SELECTION_INVALID'],
    ['a "+" alone', () => ['-s', '+'], 'SELECTION_INVALID'],
    ['an empty selection', () => ['-s', ''], 'SELECTION_INVALID'],
    ['an empty clause', () => ['-s', 'src,'], 'SELECTION_INVALID'],
    ['a "+" inside the name', () => ['-s', 'src+++x'], 'SELECTION_INVALID'],
    ['one good, one bad (union)', () => ['-s', 'src', '--op-selection', 'jion'], 'SELECTION_INVALID'],
    ['an input from an unselected op', () => ['-s', 'left'], 'PLAN_INVALID'],
    ['a tag without "="', () => ['--tag', 'priority'], 'USAGE'],
    ['a run id with a space', () => ['--run-id', 'bad id'], ''],
    ['a run id too long', () => ['--run-id', 'x'.repeat(101)], ''],
    ['an unknown option', () => ['--bogus'], ''],
    ['--detach on the in_process executor', () => ['--detach', '-c', inProcessConfig()], 'USAGE'],
  ];

  const inProcessConfig = (): string => {
    const file = path.join(scratch, 'in-process.yaml');
    writeFileSync(file, 'execution:\n  config:\n    in_process: {}\n');
    return file;
  };

  it.concurrent.each(flagCases)('run diamond.yaml with %s', async (_name, flags, code) => {
    // -c dist comes first; a case's own -c (in_process) is merged over it and replaces the executor.
    const args = ['run', DIAMOND, '-c', dist, ...flags(), '--json'];
    if (flags().includes('--detach')) {
      // Two executors would be refused for that alone: give the in_process config only.
      args.splice(2, 2);
    }
    await expectRefused(args, code || undefined);
  });

  it.concurrent.each([
    ['a negative limit', ['limits', 'set', 'database=redshift', '-1']],
    ['a fractional limit', ['limits', 'set', 'database=redshift', '1.5']],
    ['a limit that is not a number', ['limits', 'set', 'database=redshift', 'two']],
    ['an unsafe integer limit', ['limits', 'set', 'database', '99999999999999999999']],
    ['a spec with whitespace', ['limits', 'set', 'data base', '2']],
    ['an empty key', ['limits', 'set', '=redshift', '2']],
    ['an empty value', ['limits', 'set', 'database=', '2']],
    ['a "*" in the key', ['limits', 'set', 'data*=x', '2']],
    ['a value starting with "*"', ['limits', 'set', 'team=*x', '1']],
    ['the reserved run: prefix', ['limits', 'set', 'run:abc', '1']],
    ['no limit at all', ['limits', 'set', 'database']],
    ['delete with an empty spec', ['limits', 'delete', '']],
  ])('limits: %s', async (_name, args) => {
    await expectRefused([...args, '--redis', redis.url]);
  });

  it('a job file and a run-config file over 64 MiB', async () => {
    const huge = path.join(scratch, 'huge.yaml');
    const line = `# ${'padding '.repeat(12)}\n`;
    const chunk = line.repeat(Math.ceil((1024 * 1024) / line.length));
    writeFileSync(huge, `name: huge\nops:\n  a: { fn: ./ops.mjs#a }\n${chunk.repeat(65)}`);
    expect(readFileSync(huge).length).toBeGreaterThan(64 * 1024 * 1024);
    await expectRefused(['run', huge, '-c', dist, '--json'], 'FILE_TOO_LARGE');
    await expectRefused(['run', DIAMOND, '-c', dist, '-c', huge, '--json'], 'FILE_TOO_LARGE');
  });

  it('a missing job or config file, and a directory', async () => {
    const dir = path.join(scratch, 'a-directory.yaml');
    mkdirSync(dir, { recursive: true });
    await expectRefused(['run', path.join(scratch, 'missing.yaml'), '-c', dist, '--json'], 'FILE_UNREADABLE');
    await expectRefused(['run', DIAMOND, '-c', dist, '-c', path.join(scratch, 'missing.yaml'), '--json'], 'FILE_UNREADABLE');
    await expectRefused(['run', dir, '-c', dist, '--json'], 'FILE_UNREADABLE');
    await expectRefused(['run', DIAMOND, '-c', dist, '-c', dir, '--json'], 'FILE_UNREADABLE');
  });
});

describe('the check itself', () => {
  it('no write command reached Redis during the refusals', async () => {
    const stats = (await probe.info('commandstats'))
      .split('\n')
      .map((l) => /^cmdstat_([a-z|]+):calls=(\d+)/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => m[1] as string);
    // What this probe itself sent (and the reachability checks' PING/CLIENT SETNAME, harmless).
    const readOnly = new Set(['ping', 'info', 'dbsize', 'config|resetstat', 'config', 'client|setname', 'client', 'select', 'hello', 'command', 'exists', 'auth']);
    expect(stats.filter((c) => !readOnly.has(c))).toEqual([]);
    expect(await probe.dbsize()).toBe(0);
  });

  it('a valid run with the same distributed config does write to Redis (the check can fail)', async () => {
    await startWorker({ redisUrl: redis.url, jobs: [DIAMOND], queue });
    const r = await runCli(['run', DIAMOND, '-c', dist, '--json'], { env: { REDIS_URL: redis.url } });
    expect(r.code, why(r)).toBe(0);
    expect(await probe.dbsize()).toBeGreaterThan(0);
  });
});
