/** `openInstance`: the public runs API's entry point. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Instance, InstanceOptions } from './types.js';

/**
 * With `redis`: the shared Redis instance every coordinator and worker uses. Without it: a local
 * instance keeping runs, events and outputs under `storageDir`, else `$BATON_HOME`, else a fresh
 * temporary directory (like `dagster dev`; `storageDir` on the returned instance says which).
 */
export async function openInstance(options: InstanceOptions = {}): Promise<Instance & { storageDir?: string }> {
  if (options.redis !== undefined) {
    const { openRedisInstance } = await import('./redis/redis-instance.js');
    return openRedisInstance(options.redis);
  }
  const dir = path.resolve(options.storageDir ?? process.env.BATON_HOME ?? (await mkdtemp(path.join(tmpdir(), 'baton-home-'))));
  const { openLocalInstance } = await import('./local/local-instance.js');
  return Object.assign(await openLocalInstance(dir), { storageDir: dir });
}
