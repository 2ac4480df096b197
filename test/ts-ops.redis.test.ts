import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseSummary, runCli, tempDir } from './helpers/cli.js';
import { distributedConfig, uniqueQueue } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorker, stopAllWorkers } from './helpers/workers.js';

// A TypeScript op as a new user writes it: an interface, type annotations, no build step.
const OP_TS = `interface Ctx { op: string; config: { greeting?: string } }
export async function hello(ctx: Ctx): Promise<string> {
  const greeting: string = ctx.config.greeting ?? 'hi';
  return \`\${greeting} from \${ctx.op}\`;
}
`;

/** A job folder outside this repo (whose package.json says "type": "module"). */
function tsJob(packageJson: object | undefined, op = OP_TS): string {
  const dir = path.join(tempDir('baton-ts-'), 'jobs');
  mkdirSync(dir);
  if (packageJson) writeFileSync(path.join(dir, 'package.json'), JSON.stringify(packageJson));
  writeFileSync(path.join(dir, 'op.ts'), op);
  writeFileSync(path.join(dir, 'job.yaml'), 'name: ts_job\nops:\n  hello:\n    fn: ./op.ts#hello\n');
  return path.join(dir, 'job.yaml');
}

function config(text: string): string {
  const file = path.join(tempDir(), 'run-config.yaml');
  writeFileSync(file, text);
  return file;
}

const FOLDERS: Array<[string, object | undefined]> = [
  ['a folder with no package.json', undefined],
  ['a "type": "commonjs" package (what npm init writes)', { name: 'x', version: '1.0.0', type: 'commonjs' }],
  ['a "type": "module" package', { name: 'x', version: '1.0.0', type: 'module' }],
];

const EXECUTORS: Array<[string, string]> = [
  ['in_process', 'execution:\n  config:\n    in_process: {}\n'],
  ['multiprocess (spawn)', 'execution:\n  config:\n    multiprocess: {}\n'],
  ['multiprocess (forkserver)', 'execution:\n  config:\n    multiprocess:\n      start_method:\n        forkserver: {}\n'],
];

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterEach(stopAllWorkers);
afterAll(async () => redis?.close());

describe('a .ts op loads wherever it lives', () => {
  for (const [where, pkg] of FOLDERS) {
    it.each(EXECUTORS)(`in ${where}: %s`, async (_name, cfg) => {
      const r = await runCli(['run', tsJob(pkg), '-c', config(cfg), '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(parseSummary(r).steps).toEqual({ hello: 'SUCCESS' });
    });

    it(`in ${where}: on a worker`, async () => {
      const job = tsJob(pkg);
      const queue = uniqueQueue();
      await startWorker({ redisUrl: redis.url, jobs: [job], queue });
      const r = await runCli(['run', job, '-c', distributedConfig(redis.url, queue), '--json'], { env: { REDIS_URL: redis.url } });
      expect(r.code, r.stderr).toBe(0);
      expect(parseSummary(r).steps).toEqual({ hello: 'SUCCESS' });
    });
  }

  it('a .ts module that exists but does not compile has its own code, located (validate exit 2)', async () => {
    const job = tsJob(undefined, 'export async function hello(ctx: { op: string } {\n  return 1;\n}\n');
    const r = await runCli(['validate', job]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('[OP_MODULE_COMPILE_FAILED]');
    expect(r.stderr).toMatch(/job\.yaml:4:\d+ at ops\.hello\.fn: module "\.\/op\.ts" does not compile/);
    expect(r.stderr).not.toContain('OP_MODULE_NOT_FOUND');
  });

  it('a forkserver preload_modules entry that does not exist fails validate (exit 2, located)', async () => {
    const cfg = config('execution:\n  config:\n    multiprocess:\n      start_method:\n        forkserver:\n          preload_modules: [./op.ts, ./nope.mjs]\n');
    const r = await runCli(['validate', tsJob(undefined), '-c', cfg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/run-config\.yaml:6:\d+ at execution\.config\.multiprocess\.start_method\.forkserver\.preload_modules\[1\]: preload module "\.\/nope\.mjs" not found/);
    expect(r.stderr).not.toContain('preload_modules[0]');
  });
});
