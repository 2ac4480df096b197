import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobDefinition } from '../src/core/types.js';
import { InputError, type Problem } from '../src/errors.js';
import { loadJob } from '../src/job/load-job.js';
import { loadRunConfig, resolveRunConfig } from '../src/job/run-config.js';

const jobPath = fileURLToPath(new URL('./fixtures/jobs/etl.yaml', import.meta.url));
let job: JobDefinition;
beforeAll(async () => {
  job = await loadJob(jobPath);
});

const dir = mkdtempSync(join(tmpdir(), 'baton-run-config-'));
let n = 0;
/** Writes a config file and returns its path. */
function file(text: string): string {
  const path = join(dir, `config-${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

async function failure(run: () => unknown): Promise<{ code: string; problems: Problem[]; message: string }> {
  try {
    await run();
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    expect(err.message).not.toMatch(/\n\s+at |ZodError|"code":/);
    return { code: err.code, problems: err.problems, message: err.message };
  }
  throw new Error('expected an InputError');
}
/** Problems of one config text, with the file name cut to "f". */
async function messages(text: string): Promise<string[]> {
  const path = file(text);
  const { code, message } = await failure(() => loadRunConfig([path], job));
  expect(code).toBe('RUN_CONFIG_INVALID');
  return message.split('\n').map((l) => l.replace(path, 'f'));
}

const savedRedisUrl = process.env.REDIS_URL;
afterEach(() => {
  if (savedRedisUrl === undefined) delete process.env.REDIS_URL;
  else process.env.REDIS_URL = savedRedisUrl;
});

describe('run config: defaults and normalisation', () => {
  it('no file, an empty object or an empty file: multiprocess with the defaults', async () => {
    const executor = { kind: 'multiprocess', maxConcurrent: availableParallelism(), startMethod: { kind: 'spawn' }, tagConcurrencyLimits: [], retries: true };
    const defaults = { executor, ops: {}, raw: {} };
    expect(await loadRunConfig([], job)).toEqual(defaults);
    expect(await loadRunConfig([file('# nothing yet\n')], job)).toEqual(defaults);
    expect(resolveRunConfig({}, job)).toEqual(defaults);
    expect(resolveRunConfig(undefined, job)).toEqual(defaults);
  });

  it('multiprocess with every option', async () => {
    const text = `execution:
  config:
    multiprocess:
      max_concurrent: 4
      start_method:
        forkserver: { preload_modules: [./ops/etl.mjs] }
      tag_concurrency_limits:
        - { key: database, value: redshift, limit: 2 }
        - { key: heavy, limit: 3 }
        - { key: team, value: { applyLimitPerUniqueValue: true }, limit: 1 }
      retries: { disabled: {} }
ops:
  extract: { config: { day: "2024-02-01" } }
  report: { inputs: { clean: { rows: 42 } } }
`;
    const rc = await loadRunConfig([file(text)], job);
    expect(rc.executor).toEqual({
      kind: 'multiprocess',
      maxConcurrent: 4,
      startMethod: { kind: 'forkserver', preloadModules: [join(job.baseDir, 'ops/etl.mjs')] },
      tagConcurrencyLimits: [
        { key: 'database', value: 'redshift', limit: 2 },
        { key: 'heavy', limit: 3 },
        { key: 'team', perUniqueValue: true, limit: 1 },
      ],
      retries: false,
    });
    expect(rc.ops).toEqual({ extract: { config: { day: '2024-02-01' } }, report: { inputs: { clean: { rows: 42 } } } });
    expect(rc.raw).toMatchObject({ ops: { extract: { config: { day: '2024-02-01' } } } });
  });

  it('max_concurrent 0 means the number of CPUs; an empty selector value means {}', () => {
    const rc = resolveRunConfig({ execution: { config: { multiprocess: { max_concurrent: 0, start_method: { spawn: null } } } } }, job);
    expect(rc.executor).toMatchObject({ kind: 'multiprocess', maxConcurrent: availableParallelism(), startMethod: { kind: 'spawn' } });
    const inProcess = resolveRunConfig({ execution: { config: { in_process: null } } }, job);
    expect(inProcess.executor).toEqual({ kind: 'in_process', retries: true });
  });

  it('in_process takes only retries', async () => {
    const rc = resolveRunConfig({ execution: { config: { in_process: { retries: { disabled: {} } } } } }, job);
    expect(rc.executor).toEqual({ kind: 'in_process', retries: false });
    expect(await messages('execution: { config: { in_process: { max_concurrent: 2 } } }')).toEqual([
      'f:1:38 at execution.config.in_process.max_concurrent: unknown key "max_concurrent" (allowed keys: retries)',
    ]);
  });

  it('distributed: defaults, REDIS_URL, and a filesystem output storage relative to the job', () => {
    delete process.env.REDIS_URL;
    expect(resolveRunConfig({ execution: { config: { distributed: {} } } }, job).executor).toEqual({
      kind: 'distributed',
      redisUrl: 'redis://127.0.0.1:6379',
      queue: 'baton',
      maxConcurrent: 0,
      tagConcurrencyLimits: [],
      retries: true,
      outputStorage: { kind: 'redis', maxBytes: 8 * 1024 * 1024 },
      retentionSeconds: 7 * 86_400,
    });
    process.env.REDIS_URL = 'rediss://cache:6380/1';
    const distributed = {
      queue: 'etl.v2',
      max_concurrent: 8,
      tag_concurrency_limits: [{ key: 'database', limit: 1 }],
      retries: { disabled: {} },
      output_storage: { filesystem: { base_dir: 'outputs' } },
      retention_days: 0.5,
    };
    const rc = resolveRunConfig({ execution: { config: { distributed } } }, job);
    expect(rc.executor).toEqual({
      ...{ kind: 'distributed', redisUrl: 'rediss://cache:6380/1', queue: 'etl.v2', maxConcurrent: 8, retries: false },
      tagConcurrencyLimits: [{ key: 'database', limit: 1 }],
      outputStorage: { kind: 'filesystem', baseDir: join(job.baseDir, 'outputs') },
      retentionSeconds: 43_200,
    });
    const explicit = { execution: { config: { distributed: { redis: 'redis://r:1', output_storage: { redis: { max_bytes: 10 } } } } } };
    expect(resolveRunConfig(explicit, job).executor).toMatchObject({ redisUrl: 'redis://r:1', outputStorage: { kind: 'redis', maxBytes: 10 } });
  });

  it('a bad REDIS_URL is reported when it would be used', async () => {
    process.env.REDIS_URL = 'localhost:6379';
    expect(await messages('execution:\n  config:\n    distributed: {}\n')).toEqual([
      'f:3:18 at execution.config.distributed: expected REDIS_URL to start with redis:// or rediss://, got "localhost:6379" (fix REDIS_URL or set execution.config.distributed.redis)',
    ]);
    expect(resolveRunConfig({ execution: { config: { multiprocess: {} } } }, job).executor.kind).toBe('multiprocess');
  });
});

describe('run config: several files', () => {
  it('deep-merges maps in order; lists and scalars replace', async () => {
    const a = file(`execution:
  config:
    multiprocess:
      max_concurrent: 2
      tag_concurrency_limits: [{ key: a, limit: 1 }, { key: b, limit: 1 }]
ops:
  extract: { config: { day: "2024-01-01", region: eu } }
`);
    const b = file(`execution:
  config:
    multiprocess:
      tag_concurrency_limits: [{ key: c, limit: 5 }]
ops:
  extract: { config: { day: "2024-02-01" } }
`);
    const rc = await loadRunConfig([a, b], job);
    expect(rc.executor).toMatchObject({ maxConcurrent: 2, tagConcurrencyLimits: [{ key: 'c', limit: 5 }] });
    expect(rc.ops.extract).toEqual({ config: { day: '2024-02-01', region: 'eu' } });
    expect(rc.raw).toEqual({
      execution: { config: { multiprocess: { max_concurrent: 2, tag_concurrency_limits: [{ key: 'c', limit: 5 }] } } },
      ops: { extract: { config: { day: '2024-02-01', region: 'eu' } } },
    });
  });

  it('reports each problem against the file that provided the value, even in a section a later file replaces', async () => {
    const a = file('execution:\n  config:\n    multiprocess:\n      max_concurent: 2\n');
    const b = file('# second\nops:\n  extrct: {}\nexecution:\n  config:\n    in_process: {}\n');
    const { problems, message } = await failure(() => loadRunConfig([a, b], job));
    expect(problems[0]).toEqual({
      file: a,
      line: 4,
      column: 7,
      path: 'execution.config.multiprocess.max_concurent',
      message: 'unknown key "max_concurent"',
      hint: 'did you mean "max_concurrent"?',
    });
    expect(message.split('\n').slice(1)).toEqual([
      `${b}:3:3 at ops.extrct: unknown op "extrct" (did you mean "extract"?)`,
    ]);
  });

  it('YAML and file problems of every file come first, before any merging', async () => {
    const bad = file('execution: {\n');
    const { code, problems } = await failure(() => loadRunConfig([file('ops: {}\n'), bad], job));
    expect(code).toBe('YAML_SYNTAX');
    expect(problems).toEqual([{ file: bad, line: 2, column: 1, message: 'invalid YAML: deficient indentation' }]);
    expect((await failure(() => loadRunConfig(['/nonexistent.yaml'], job))).problems).toEqual([
      { file: '/nonexistent.yaml', message: 'cannot read file: no such file' },
    ]);
  });
});

describe('run config: problems', () => {
  it('an unknown executor, two executors, none', async () => {
    expect(await messages('execution:\n  config:\n    multiproces: {}\n')).toEqual([
      'f:3:5 at execution.config.multiproces: unknown executor "multiproces" (did you mean "multiprocess"?)',
    ]);
    expect(await messages('execution:\n  config:\n    celery: {}\n')).toEqual([
      'f:3:5 at execution.config.celery: unknown executor "celery" (expected one of: in_process, multiprocess, distributed)',
    ]);
    expect(await messages('execution:\n  config:\n    multiprocess: {}\n    distributed: {}\n')).toEqual([
      'f:3:5 at execution.config: expected exactly one executor, got 2: multiprocess, distributed (keep only one)',
    ]);
    expect(await messages('execution: { config: {} }\n')).toEqual([
      'f:1:22 at execution.config: expected exactly one executor, got none (choose one of: in_process, multiprocess, distributed)',
    ]);
  });

  it('two executors are reported even when one of them has problems too', async () => {
    expect(await messages('execution:\n  config:\n    multiprocess: { max_concurrent: -1 }\n    in_process: {}\n')).toEqual([
      'f:3:5 at execution.config: expected exactly one executor, got 2: multiprocess, in_process (keep only one)',
      'f:3:37 at execution.config.multiprocess.max_concurrent: expected an integer >= 0, got -1',
    ]);
  });

  it('the misspelt max_concurent, with a hint', async () => {
    expect(await messages('execution:\n  config:\n    multiprocess:\n      max_concurent: 4\n')).toEqual([
      'f:4:7 at execution.config.multiprocess.max_concurent: unknown key "max_concurent" (did you mean "max_concurrent"?)',
    ]);
  });

  it('negative and non-integer limits, and other bad limit entries', async () => {
    const text = `execution:
  config:
    multiprocess:
      max_concurrent: 1.5
      tag_concurrency_limits:
        - { key: database, value: redshift, limit: -1 }
        - { key: heavy, limit: 2.5 }
        - { key: team, value: { applyLimitPerUniqueValue: false }, limit: 1 }
        - { key: "", value: 3 }
`;
    expect(await messages(text)).toEqual([
      'f:4:23 at execution.config.multiprocess.max_concurrent: expected an integer >= 0, got 1.5',
      'f:6:52 at execution.config.multiprocess.tag_concurrency_limits[0].limit: expected an integer >= 0, got -1',
      'f:7:32 at execution.config.multiprocess.tag_concurrency_limits[1].limit: expected an integer >= 0, got 2.5',
      'f:8:59 at execution.config.multiprocess.tag_concurrency_limits[2].value.applyLimitPerUniqueValue: expected true, got false',
      'f:9:11 at execution.config.multiprocess.tag_concurrency_limits[3].limit: missing required key "limit": expected an integer >= 0',
      'f:9:18 at execution.config.multiprocess.tag_concurrency_limits[3].key: expected a non-empty tag name, got an empty string',
      'f:9:29 at execution.config.multiprocess.tag_concurrency_limits[3].value: expected a tag value (a string) or { applyLimitPerUniqueValue: true }, got 3',
    ]);
  });

  it('selectors: start method, retries, output storage', async () => {
    const text = `execution:
  config:
    distributed:
      redis: http://localhost
      queue: "my queue"
      retries: { enabeld: {} }
      output_storage: { redis: {}, filesystem: { base_dir: /tmp/x } }
`;
    expect(await messages(text)).toEqual([
      'f:4:14 at execution.config.distributed.redis: expected a Redis URL starting with redis:// or rediss://, got "http://localhost"',
      'f:5:14 at execution.config.distributed.queue: expected a queue name of letters, digits, "_", "." and "-", got "my queue"',
      'f:6:18 at execution.config.distributed.retries.enabeld: unknown retries mode "enabeld" (did you mean "enabled"?)',
      'f:7:23 at execution.config.distributed.output_storage: expected exactly one output storage, got 2: redis, filesystem (keep only one)',
    ]);
    expect(await messages('execution: { config: { multiprocess: { start_method: { spawn: {}, forkserver: {} } } } }')).toEqual([
      'f:1:54 at execution.config.multiprocess.start_method: expected exactly one start method, got 2: spawn, forkserver (keep only one)',
    ]);
  });

  it('ops must name ops of the job, inputs must name inputs of the op', async () => {
    const text = 'ops:\n  extrct: { config: {} }\n  report:\n    inputs: { cleaned: 1 }\n  clean:\n    inputs: { x: 1 }\n    confg: {}\n';
    expect(await messages(text)).toEqual([
      'f:2:3 at ops.extrct: unknown op "extrct" (did you mean "extract"?)',
      'f:4:15 at ops.report.inputs.cleaned: op "report" has no input "cleaned" (did you mean "clean"?)',
      'f:6:15 at ops.clean.inputs.x: op "clean" has no input "x" (op "clean" takes no inputs)',
      'f:7:5 at ops.clean.confg: unknown key "confg" (did you mean "config"?)',
    ]);
  });

  it('a top level that is not a map, and unknown top-level keys', async () => {
    expect(await messages('- execution\n')).toEqual(['f:1:1: expected a map at the top level (with execution and/or ops), got a list']);
    expect(await messages('resources: {}\n')).toEqual(['f:1:1 at resources: unknown key "resources" (allowed keys: execution, ops)']);
  });

  it('library API: problems carry the file when given, and no position', async () => {
    const raw = { execution: { config: { multiprocess: { max_concurrent: -1 } } } };
    const problem = { path: 'execution.config.multiprocess.max_concurrent', message: 'expected an integer >= 0, got -1' };
    expect((await failure(() => resolveRunConfig(raw, job, 'cli-args'))).problems).toEqual([{ file: 'cli-args', ...problem }]);
    expect((await failure(() => resolveRunConfig(raw, job))).problems).toEqual([problem]);
    expect((await failure(() => resolveRunConfig([1], job))).message).toBe(
      'expected a map at the top level (with execution and/or ops), got a list',
    );
  });
});
