/**
 * Secrets: a Redis with a password (`--requirepass`) and an ACL user. Coordinator and worker run a
 * job through `redis://:PASSWORD@...` and `redis://user:PASSWORD@...`; the password must never
 * show in anything baton prints (run with and without --json, worker logs, status, runs, logs,
 * limits) nor anywhere in Redis (every key and every value). A wrong password exits 2 with the URL
 * redacted (`***`). Each check collects its texts by name, so a failure says exactly where it leaked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseErrorSummary, ROOT, runCli, type CliResult } from './helpers/cli.js';
import { distributedConfig, tempDir, uniqueQueue } from './helpers/distributed.js';
import { startWorker, stopAllWorkers, WORKER_BIN } from './helpers/workers.js';
import { CEILING_MS, ceiling } from './helpers/ceilings.js';

const PASSWORD = 's3cr3t-pass';
const USER = 'alice';
const USER_PASSWORD = 'al1ce-s3cr3t';
const WRONG = 'wr0ng-s3cr3t';
const SECRETS = [PASSWORD, USER_PASSWORD, WRONG];

const FIX = path.join(ROOT, 'test/fixtures/distributed');
const DIAMOND = path.join(FIX, 'diamond.yaml');
const FAULTS = path.join(FIX, 'faults.yaml');

let server: ChildProcess | undefined;
let port = 0;
let admin: Redis;
const passwordUrl = (): string => `redis://:${PASSWORD}@127.0.0.1:${port}`;
const userUrl = (): string => `redis://${USER}:${USER_PASSWORD}@127.0.0.1:${port}`;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

beforeAll(async () => {
  port = await freePort();
  const dir = tempDir();
  server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
      '--requirepass', PASSWORD,
      // An ACL user besides the default one (Redis >= 6).
      '--user', USER, 'on', `>${USER_PASSWORD}`, '~*', '&*', '+@all'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), CEILING_MS.processStart);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    server?.stdout?.on('data', onData);
    server?.stderr?.on('data', onData);
    server?.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited:\n${out}`));
    });
  });
  admin = new Redis(passwordUrl());
});
afterEach(stopAllWorkers);
afterAll(async () => {
  admin?.disconnect();
  server?.kill('SIGKILL');
});

/** Names of the texts that contain any secret, with the secret and some context. */
function leaks(texts: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [name, text] of Object.entries(texts)) {
    for (const secret of SECRETS) {
      const at = text.indexOf(secret);
      if (at >= 0) found.push(`${name}: …${text.slice(Math.max(0, at - 60), at + secret.length + 20)}…`);
    }
  }
  return found;
}

const outputs = (name: string, r: CliResult): Record<string, string> => ({ [`${name} stdout`]: r.stdout, [`${name} stderr`]: r.stderr });

/** Every key of the Redis and everything in it, as text, by key (and type). */
async function dumpRedis(): Promise<Record<string, string>> {
  const dump: Record<string, string> = {};
  let cursor = '0';
  const keys: string[] = [];
  do {
    const [next, batch] = await admin.scan(cursor, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  for (const key of keys) {
    const type = await admin.type(key);
    let value: unknown;
    if (type === 'string') value = (await admin.getBuffer(key))?.toString('latin1');
    else if (type === 'hash') value = await admin.hgetall(key);
    else if (type === 'list') value = await admin.lrange(key, 0, -1);
    else if (type === 'set') value = await admin.smembers(key);
    else if (type === 'zset') value = await admin.zrange(key, 0, -1, 'WITHSCORES');
    else if (type === 'stream') value = await admin.xrange(key, '-', '+');
    else value = `(type ${type})`;
    dump[`redis key ${key} (${type})`] = `${key} ${JSON.stringify(value)}`;
  }
  return dump;
}

describe('a Redis password never leaks', () => {
  it.each([
    ['a password (requirepass)', passwordUrl],
    ['an ACL user and password', userUrl],
  ])('with %s: the run succeeds; no output and no Redis key or value holds the password', async (_what, urlOf) => {
    const url = urlOf();
    const queue = uniqueQueue();
    const worker = await startWorker({ redisUrl: url, jobs: [FIX], queue, concurrency: 4 });
    const cfg = distributedConfig(url, queue);
    const texts: Record<string, string> = {};

    const json = await runCli(['run', DIAMOND, '-c', cfg, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const { runId, status } = JSON.parse(json.stdout) as { runId: string; status: string };
    expect(status).toBe('SUCCESS');
    Object.assign(texts, outputs('run --json', json));

    const human = await runCli(['run', DIAMOND, '-c', cfg]);
    expect(human.code, human.stderr).toBe(0);
    Object.assign(texts, outputs('run', human));

    // A failing step: error messages and retries are printed too.
    const failed = await runCli(['run', FAULTS, '-s', 'broken', '-c', cfg, '--json']);
    expect(failed.code, failed.stderr).toBe(1);
    Object.assign(texts, outputs('run (failing) --json', failed));

    const detached = await runCli(['run', DIAMOND, '-c', cfg, '--detach', '--json']);
    expect(detached.code, detached.stderr).toBe(0);
    Object.assign(texts, outputs('run --detach --json', detached));
    const detachedId = (JSON.parse(detached.stdout) as { runId: string }).runId;

    // The URL by flag and by environment.
    const byFlag = ['--redis', url];
    const byEnv = { env: { REDIS_URL: url } };
    const follow = await runCli(['logs', detachedId, '--follow', '--json', ...byFlag]);
    expect(follow.code, follow.stderr).toBe(0);
    Object.assign(texts, outputs('logs --follow --json', follow));
    for (const [name, args, opts] of [
      ['status --json', ['status', runId, '--json', ...byFlag], {}],
      ['status', ['status', runId], byEnv],
      ['runs --json', ['runs', '--json', ...byFlag], {}],
      ['runs', ['runs'], byEnv],
      ['logs --json', ['logs', runId, '--json'], byEnv],
      ['logs', ['logs', runId, ...byFlag], {}],
      ['limits list --json', ['limits', 'list', '--json', ...byFlag], {}],
      ['cancel (an ended run)', ['cancel', runId, '--json'], byEnv],
    ] as Array<[string, string[], { env?: Record<string, string> }]>) {
      const r = await runCli(args, opts);
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      Object.assign(texts, outputs(name, r));
    }
    expect(JSON.parse(texts['status --json stdout'] ?? '')).toMatchObject({ runId, status: 'SUCCESS' });

    worker.kill('SIGTERM');
    await worker.exited;
    texts['worker log'] = worker.logs();
    expect(worker.logs()).toContain('"worker ready"');
    Object.assign(texts, await dumpRedis());

    expect(leaks(texts)).toEqual([]);
    // The run record keeps the run config, with the URL redacted.
    const recorded = JSON.parse((await admin.hget(`baton:{run:${runId}}:record`, 'runConfig')) ?? '{}') as {
      execution: { config: { distributed: { redis: string } } };
    };
    expect(recorded.execution.config.distributed.redis).toMatch(new RegExp(`^redis://(${USER})?:\\*\\*\\*@127\\.0\\.0\\.1:${port}/?$`));
  });

  it('a wrong password exits 2 and shows the URL redacted', async () => {
    const texts: Record<string, string> = {};
    const queue = uniqueQueue();
    const keysBefore = new Set(await admin.keys('*'));
    const wrongUrls = [`redis://:${WRONG}@127.0.0.1:${port}`, `redis://${USER}:${WRONG}@127.0.0.1:${port}`];
    const commands = [['status', 'some-run'], ['runs', '--json'], ['logs', 'some-run'], ['cancel', 'some-run'], ['limits', 'list']];
    // Concurrently: each refusal is a separate CLI process.
    await Promise.all(
      wrongUrls.flatMap((url) => {
        const shown = url.replace(WRONG, '***');
        return [
          (async () => {
            const r = await runCli(['run', DIAMOND, '-c', distributedConfig(url, queue), '--json']);
            expect(r.code, r.stderr).toBe(2);
            expect(parseErrorSummary(r).error.code).toBe('REDIS_UNAVAILABLE'); // --json: one error object, no run
            expect(r.stderr).toContain(`cannot reach Redis at ${shown}`);
            Object.assign(texts, outputs(`run with ${shown}`, r));
          })(),
          ...commands.map(async (args) => {
            const c = await runCli([...args, '--redis', url]);
            expect(c.code, `${args.join(' ')}: ${c.stderr}`).toBe(2);
            expect(c.stderr).toContain(`cannot reach Redis at ${shown}`);
            Object.assign(texts, outputs(`${args.join(' ')} --redis ${shown}`, c));
          }),
        ];
      }),
    );
    expect(Object.keys(texts)).toHaveLength(2 * 2 * (1 + commands.length));
    expect(leaks(texts)).toEqual([]);
    // Nothing was written by the refused commands.
    expect((await admin.keys('*')).filter((k) => !keysBefore.has(k))).toEqual([]);
  });

  it('a wrong password is reported as an authentication failure, not as a closed connection', async () => {
    const r = await runCli(['limits', 'list', '--redis', `redis://:${WRONG}@127.0.0.1:${port}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/WRONGPASS|password/i);
  });

  /** A worker on a wrong password: what it printed and how it ended (killed after 3 s if still up). */
  async function workerWithWrongPassword(): Promise<{ out: string; code: number | string }> {
    const url = `redis://:${WRONG}@127.0.0.1:${port}`;
    const child = spawn(process.execPath, [WORKER_BIN, '--redis', url, '--jobs', FIX, '--queue', uniqueQueue()], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    // It exits by itself once Redis refuses the password; the ceiling only stops a hung one (a loaded machine starts processes slowly).
    const timer = setTimeout(() => child.kill('SIGKILL'), ceiling('processStart'));
    const code = await exited;
    clearTimeout(timer);
    return { out, code };
  }

  it('a worker given a wrong password logs nothing that holds it', async () => {
    const { out } = await workerWithWrongPassword();
    expect(out.length).toBeGreaterThan(0); // it said something about the failure
    expect(leaks({ 'worker output': out })).toEqual([]);
  });

  it('a worker given a wrong password exits 2 with the URL redacted, like the coordinator', async () => {
    const { out, code } = await workerWithWrongPassword();
    expect(code, out).toBe(2);
    expect(out).toContain(`redis://:***@127.0.0.1:${port}`);
    expect(out).not.toContain('internal error');
  });

  it('a malformed Redis URL holding a password is refused without echoing the password', async () => {
    const dir = tempDir();
    const texts: Record<string, string> = {};
    const cases: Array<[string, string[], Record<string, string>]> = [];
    // In run config: the wrong scheme, and whitespace in the URL.
    const badUrls: Array<[string, string]> = [
      ['wrong scheme', `http://:${PASSWORD}@127.0.0.1:${port}`],
      ['whitespace', `redis://:${PASSWORD} @127.0.0.1:${port}`],
    ];
    for (const [name, url] of badUrls) {
      const file = path.join(dir, `${name.replace(/\s/g, '-')}.yaml`);
      writeFileSync(file, `execution:\n  config:\n    distributed:\n      redis: "${url}"\n`);
      cases.push([`run -c (${name})`, ['run', DIAMOND, '-c', file], {}]);
    }
    // In REDIS_URL, which run config falls back to, and in --redis.
    const emptyDistributed = path.join(dir, 'distributed.yaml');
    writeFileSync(emptyDistributed, 'execution:\n  config:\n    distributed: {}\n');
    cases.push(['run with REDIS_URL (wrong scheme)', ['run', DIAMOND, '-c', emptyDistributed], { REDIS_URL: `http://:${PASSWORD}@127.0.0.1:${port}` }]);
    cases.push(['status --redis (wrong scheme)', ['status', 'x', '--redis', `http://:${PASSWORD}@127.0.0.1:${port}`], {}]);
    cases.push(['status --redis (bad port)', ['status', 'x', '--redis', `redis://:${PASSWORD}@127.0.0.1:99999`], {}]);
    for (const [name, args, env] of cases) {
      const r = await runCli(args, { env });
      expect(r.code, `${name}: ${r.stderr}`).toBe(2);
      Object.assign(texts, outputs(name, r));
    }
    expect(leaks(texts)).toEqual([]);
  });
});
