import { REDIS_URL_HELP, redisUrlFrom } from '../src/distributed/options.js';
import type { RunStore } from '../src/distributed/run-store.js';
import type { Redis } from 'ioredis';

export const REDIS_OPTION = ['--redis <url>', REDIS_URL_HELP] as const;

export function redisUrlOf(flag: string | undefined): string {
  return redisUrlFrom(flag);
}

/** Opens the run store for a read command, runs `fn`, and always closes the connection. */
export async function withRunStore<T>(flag: string | undefined, fn: (store: RunStore, redis: Redis) => Promise<T>): Promise<T> {
  // Loaded here, not at start-up: commands that never touch Redis stay fast.
  const { assertRedisReachable, createRedis } = await import('../src/distributed/connection.js');
  const { createRunStore } = await import('../src/distributed/run-store.js');
  const url = redisUrlOf(flag);
  await assertRedisReachable(url);
  const redis = createRedis(url);
  redis.on('error', () => {});
  const store = createRunStore(redis);
  try {
    return await fn(store, redis);
  } finally {
    await store.close();
    await redis.quit().catch(() => {});
  }
}

export { requireRun as getRunOrFail } from '../src/distributed/run-store.js';
