/**
 * The TickStore contract, run against both adapters: Redis (shared by serve processes) and files
 * under a local instance's directory (coordinator ui without Redis). Claims are exactly-once
 * however many callers race; history is newest first and bounded; status and cursors round-trip.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalTickStore } from '../src/automation/local-tick-store.js';
import { TICK_RETENTION, type TickRecord, type TickStore } from '../src/automation/tick-store.js';
import { createRedisTickStore } from '../src/distributed/schedule-store.js';
import { tempDir } from './helpers/cli.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';

let redis: TestRedis;
let client: Redis;
beforeAll(async () => {
  redis = await startTestRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

const tick = (id: string, ms: number, by = 'a'): TickRecord => ({
  schedule: id,
  tickTime: new Date(ms).toISOString(),
  status: 'STARTED',
  runIds: [],
  at: new Date(ms).toISOString(),
  evaluatedAt: new Date(ms).toISOString(),
  by,
});

function suite(name: string, open: () => TickStore) {
  describe(`TickStore: ${name}`, () => {
    it('claims a tick and a run key once, however many callers race', async () => {
      const [a, b] = [open(), open()];
      const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).claim(tick('j/s', 1000, `p${i}`))));
      expect(claims.filter(Boolean)).toHaveLength(1);
      const keys = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).claimRunKey('j/s', 'file.csv', `run-${i}`, 5)));
      expect(keys.filter((k) => k === undefined)).toHaveLength(1);
      const winner = keys.find((k) => k !== undefined)?.runId;
      expect(new Set(keys.filter((k) => k !== undefined).map((k) => k?.runId)).size).toBe(1);
      expect(keys.every((k) => k === undefined || k.launched === false)).toBe(true);
      await a.markRunKeyLaunched('j/s', 'file.csv', winner as string);
      expect(await b.claimRunKey('j/s', 'file.csv', 'other', 9)).toMatchObject({ runId: winner, launched: true });
      expect(await b.lastRunKey('j/s')).toBe('file.csv');
    });

    it('updates claimed ticks only, lists them newest first, and keeps the last ones', async () => {
      const s = open();
      expect(await s.update({ ...tick('j/h', 1), status: 'SUCCESS' })).toBe(false);
      for (let i = 0; i < TICK_RETENTION.count + 5; i++) await s.claim(tick('j/h', 10_000 + i * 1000));
      await s.update({ ...tick('j/h', 10_000 + (TICK_RETENTION.count + 4) * 1000), status: 'FAILURE', error: 'boom' });
      const all = await s.ticks('j/h', 1000);
      expect(all).toHaveLength(TICK_RETENTION.count);
      expect(all[0]).toMatchObject({ status: 'FAILURE', error: 'boom' });
      expect(Date.parse(all[0]?.tickTime as string)).toBeGreaterThan(Date.parse(all[1]?.tickTime as string));
      expect(await s.ticks('j/h', 3)).toHaveLength(3);
    });

    it('keeps status and cursor; starting may reset the cursor', async () => {
      const s = open();
      expect(await s.statusOf('j/c')).toBeUndefined();
      expect(await s.cursor('j/c')).toBeUndefined();
      await s.setCursor('j/c', '{"seen":3}');
      await s.setStatus('j/c', 'running');
      expect([await s.statusOf('j/c'), await s.cursor('j/c')]).toEqual(['running', '{"seen":3}']);
      await s.setStatus('j/c', 'stopped');
      await s.setStatus('j/c', 'running', 1234);
      expect([await s.statusOf('j/c'), await s.cursor('j/c')]).toEqual(['running', '1234']);
    });

    it('leases one holder at a time', async () => {
      const s = open();
      expect(await s.lock('j/l', 'one', 60_000)).toBe(true);
      expect(await s.lock('j/l', 'two', 60_000)).toBe(false);
      await s.unlock('j/l', 'two');
      expect(await s.lock('j/l', 'two', 60_000)).toBe(false);
      await s.unlock('j/l', 'one');
      expect(await s.lock('j/l', 'two', 60_000)).toBe(true);
    });
  });
}

suite('Redis', () => createRedisTickStore(client, 'sensors', 'ticktest'));
const dir = tempDir('baton-ticks-');
suite('local files', () => createLocalTickStore(dir, 'sensors'));
