/** `coordinator limits ...` as a child process against a real Redis: exit codes and output. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../src/distributed/connection.js';
import { limitKeys } from '../src/distributed/semaphore/limit-keys.js';
import { createSemaphore } from '../src/distributed/semaphore/semaphore.js';
import type { LimitView } from '../src/distributed/semaphore/limits-admin.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let server: TestRedis;

beforeAll(async () => {
  server = await startTestRedis();
});

afterAll(async () => {
  await server.close();
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = { REDIS_URL: server.url }): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'limits', ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function listJson(): Promise<LimitView[]> {
  const r = await cli(['list', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as LimitView[];
}

describe('coordinator limits', () => {
  it('sets, lists and deletes limits', async () => {
    expect(await cli(['list'])).toMatchObject({ code: 0, stdout: 'no limits defined\n' });
    const set = await cli(['set', 'database=redshift', '2']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('database=redshift set to 2');
    expect((await cli(['set', 'database', '5'])).code).toBe(0);
    expect((await cli(['set', 'team=*', '1'])).code).toBe(0);

    const views = await listJson();
    expect(views.map((v) => [v.spec, v.limit, v.perUniqueValue, v.inUse, v.waiting])).toEqual([
      ['database', 5, false, 0, 0],
      ['database=redshift', 2, false, 0, 0],
      ['team=*', 1, true, 0, 0],
    ]);

    const del = await cli(['delete', 'database']);
    expect(del).toMatchObject({ code: 0, stdout: 'limit database deleted\n' });
    expect((await listJson()).map((v) => v.spec)).toEqual(['database=redshift', 'team=*']);
    expect(await cli(['delete', 'database'])).toMatchObject({ code: 0, stdout: expect.stringContaining('nothing deleted') });
  });

  it('lists the steps holding slots and the number waiting', async () => {
    expect((await cli(['set', 'team=*', '1'])).code).toBe(0);
    const sem = createSemaphore({ redisUrl: server.url });
    const redis = createRedis(server.url);
    try {
      const base = { attempt: 1, priority: 0, runLimits: [] };
      const lease = await sem.acquire({ ...base, runId: 'run-7', stepKey: 'load', tags: { team: 'a' } });
      const waiting = sem.acquire({ ...base, runId: 'run-8', stepKey: 'load', tags: { team: 'a' } });
      while ((await redis.zcard(limitKeys().waiters)) === 0) await new Promise((r) => setTimeout(r, 10));
      const [view] = (await listJson()).filter((v) => v.spec === 'team=*');
      expect(view).toMatchObject({
        inUse: 1,
        byValue: { a: 1 },
        waiting: 1,
        holders: [{ runId: 'run-7', stepKey: 'load', attempt: 1, bucket: 'team=*:a' }],
      });
      const text = await cli(['list']);
      expect(text.stdout).toContain('team=*  limit 1 per value  in use 1 (a: 1)  waiting 1');
      expect(text.stdout).toContain('run run-7  step load  [a]');
      await sem.release([lease.id]);
      await sem.release([(await waiting).id]);
    } finally {
      await sem.close();
      await redis.quit();
    }
  });

  it.each([
    [['set', 'db=', '1'], 'invalid limit spec "db="'],
    [['set', '=x', '1'], 'invalid limit spec "=x"'],
    [['set', 'db', '1.5'], 'invalid limit "1.5"'],
    [['set', 'db', 'many'], 'invalid limit "many"'],
    [['set', 'db', '-1'], 'invalid limit "-1"'],
    [['delete', 'run:abc'], 'reserved for run-scoped limits'],
  ])('refuses %j with exit 2 and LIMIT_INVALID', async (args, message) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('LIMIT_INVALID');
    expect(r.stderr).toContain(message);
  });

  it('exits 2 when Redis is unreachable, honouring --redis over $REDIS_URL', async () => {
    const r = await cli(['list', '--redis', 'redis://127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('REDIS_UNAVAILABLE');
    const viaFlag = await cli(['list', '--json', '--redis', server.url], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
  });
});
