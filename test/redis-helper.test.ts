import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertRedisReachable, createRedis, redactRedisUrl } from '../src/distributed/connection.js';
import { BatonError } from '../src/errors.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A client that gives up at once, so a stopped server shows as an error rather than a hang. */
function quickClient(url: string): Redis {
  const client = new Redis(url, { retryStrategy: () => null, maxRetriesPerRequest: 0, lazyConnect: true });
  client.on('error', () => {});
  return client;
}

describe('startTestRedis', () => {
  let server: TestRedis;
  const clients: Redis[] = [];
  const client = (): Redis => {
    const c = createRedis(server.url);
    c.on('error', () => {});
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = await startTestRedis({ appendOnly: true });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });
  afterAll(async () => {
    await server.close();
  });

  it('starts a server that answers PING on its own port', async () => {
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(await client().ping()).toBe('PONG');
  });

  it('keeps AOF data across restart, on the same port', async () => {
    const redis = client();
    await redis.set('helper:restart', 'kept');
    const port = server.port;
    await server.restart();
    expect(server.port).toBe(port);
    expect(await redis.get('helper:restart')).toBe('kept');
  });

  it('comes back after kill + restart with acknowledged writes', async () => {
    const redis = client();
    await redis.set('helper:kill', 'kept');
    await server.kill();
    const probe = quickClient(server.url);
    await expect(probe.connect()).rejects.toThrow();
    probe.disconnect();
    await server.restart();
    expect(await redis.get('helper:kill')).toBe('kept');
  });

  it('close() stops the server', async () => {
    const other = await startTestRedis();
    await other.close();
    const probe = quickClient(other.url);
    await expect(probe.connect()).rejects.toThrow();
    probe.disconnect();
  });
});

describe('connection', () => {
  let server: TestRedis;
  beforeAll(async () => {
    server = await startTestRedis();
  });
  afterAll(async () => {
    await server.close();
  });

  it('redactRedisUrl hides the password only', () => {
    expect(redactRedisUrl('redis://user:s3cret@host:6380/2')).toBe('redis://user:***@host:6380/2');
    expect(redactRedisUrl('rediss://:s3cret@host:6380')).toBe('rediss://:***@host:6380');
    expect(redactRedisUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactRedisUrl('not a url:pw@host')).not.toContain('pw');
  });

  it('createRedis: TLS for rediss://, credentials from the URL, retries by role', () => {
    const tls = createRedis('rediss://alice:pw@example.invalid:6390/2', { role: 'command' });
    const bullmq = createRedis(server.url, { role: 'bullmq' });
    const blocking = createRedis(server.url, { role: 'blocking' });
    try {
      expect(tls.options).toMatchObject({ tls: { servername: 'example.invalid' }, username: 'alice', password: 'pw' });
      expect(tls.options.maxRetriesPerRequest).toBeGreaterThan(0);
      expect(bullmq.options.maxRetriesPerRequest).toBeNull();
      expect(blocking.options.maxRetriesPerRequest).toBeNull();
      expect(() => createRedis('http://host:6379')).toThrow(/the scheme must be redis:\/\/, rediss:\/\/, redis\+cluster:\/\/ or rediss\+cluster:\/\//);
    } finally {
      for (const r of [tls, bullmq, blocking]) r.disconnect();
    }
  });

  it('createRedis honours the db of the URL', async () => {
    const redis = createRedis(`${server.url}/3`);
    try {
      await redis.set('db:check', '3');
      expect(await redis.info('keyspace')).toContain('db3:keys=1');
    } finally {
      redis.disconnect();
    }
  });

  it('a command issued while Redis restarts succeeds once it is back', async () => {
    const errors: Error[] = [];
    const redis = createRedis(server.url, { role: 'command', onError: (err) => errors.push(err) });
    try {
      expect(await redis.ping()).toBe('PONG');
      await server.stop();
      const pending = redis.set('during:restart', 'ok');
      await sleep(500);
      await server.restart();
      await expect(pending).resolves.toBe('OK');
      expect(await redis.get('during:restart')).toBe('ok');
      expect(errors.length).toBeGreaterThan(0); // the outage was seen, and reported to onError
    } finally {
      redis.disconnect();
    }
  });

  it('assertRedisReachable passes for a live server', async () => {
    await expect(assertRedisReachable(server.url, 2000)).resolves.toBeUndefined();
  });

  it('assertRedisReachable fails fast with a redacted URL', async () => {
    const down = await startTestRedis();
    await down.close();
    const url = `redis://admin:hunter2@127.0.0.1:${down.port}`;
    const started = Date.now();
    const error = await assertRedisReachable(url, 2000).catch((err: unknown) => err);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(error).toBeInstanceOf(BatonError);
    expect((error as BatonError).code).toBe('REDIS_UNAVAILABLE');
    expect((error as BatonError).message).toContain(`cannot reach Redis at redis://admin:***@127.0.0.1:${down.port}`);
    expect((error as BatonError).message).not.toContain('hunter2');
  });

  it('assertRedisReachable times out on a server that never answers', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const started = Date.now();
      await expect(assertRedisReachable(`redis://127.0.0.1:${port}`, 300)).rejects.toThrow(/cannot reach Redis/);
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      silent.close();
    }
  });
});
