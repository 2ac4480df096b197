/** Run-config files for distributed tests: each test gets its own queue on the test file's Redis. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { ceiling } from './ceilings.js';

let queues = 0;

export function uniqueQueue(): string {
  return `q${process.pid}_${++queues}_${Date.now().toString(36)}`;
}

/** Writes a run config using the distributed executor on `redisUrl` and returns its path. */
export function distributedConfig(
  redisUrl: string,
  queue: string,
  extra: { distributed?: Record<string, unknown>; ops?: Record<string, unknown> } = {},
): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'baton-dist-'));
  const file = path.join(dir, 'run-config.yaml');
  const config = {
    execution: { config: { distributed: { redis: redisUrl, queue, ...extra.distributed } } },
    ...(extra.ops ? { ops: extra.ops } : {}),
  };
  writeFileSync(file, stringify(config));
  return file;
}

export function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'baton-test-'));
}

/** Polls `check` until it returns a value other than undefined, or fails past its ceiling (see ceilings.ts). */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs?: number): Promise<T> {
  const deadline = Date.now() + ceiling('event', timeoutMs);
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until some run on this Redis records `step` with `status` (the coordinator writes step states). */
export async function waitForStepStatus(redisUrl: string, step: string, status: string, timeoutMs?: number): Promise<void> {
  const probe = new Redis(redisUrl);
  try {
    await waitFor(`${step} to be ${status}`, async () => {
      for (const key of await probe.keys('baton:{run:*}:steps')) {
        if ((await probe.hget(key, step))?.includes(`"${status}"`)) return true;
      }
      return undefined;
    }, timeoutMs);
  } finally {
    probe.disconnect();
  }
}
