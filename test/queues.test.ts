/** Queue specs, step routing over several queues, and cluster URLs (no Redis needed). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import type { JobDefinition } from '../src/core/types.js';
import { createRedis, isClusterConnection, isClusterUrl, nodeUrl, redactRedisUrl } from '../src/distributed/connection.js';
import { queueList, queueSpec } from '../src/distributed/options.js';
import { bullOptions, stepQueueName } from '../src/distributed/queues.js';
import { InputError } from '../src/errors.js';
import { loadJob } from '../src/job/load-job.js';
import { loadRunConfig, resolveRunConfig } from '../src/job/run-config.js';
import { CEILING_MS } from './helpers/ceilings.js';
import { WORKER_BIN } from './helpers/workers.js';

let job: JobDefinition;
beforeAll(async () => {
  job = await loadJob(fileURLToPath(new URL('./fixtures/jobs/etl.yaml', import.meta.url)));
});

describe('queue specs', () => {
  it('one name, a list, or comma-separated names; blanks and repeats dropped', () => {
    expect(queueList('baton')).toEqual(['baton']);
    expect(queueList('a,b, c,,a')).toEqual(['a', 'b', 'c']);
    expect(queueList(['a', 'b,c'])).toEqual(['a', 'b', 'c']);
    expect(queueSpec('baton')).toBe('baton');
    expect(queueSpec(['q1', 'q2', 'q1'])).toBe('q1,q2');
  });

  it('routes a step by a stable hash of its key: the same queue every time, spread over all of them', () => {
    const queues = ['q1', 'q2', 'q3'];
    const keys = Array.from({ length: 300 }, (_, i) => `step_${i}`);
    const counts = new Map<string, number>();
    for (const k of keys) {
      const q = stepQueueName(queues, k);
      expect(stepQueueName(queues, k)).toBe(q);
      counts.set(q, (counts.get(q) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(queues);
    for (const n of counts.values()) expect(n).toBeGreaterThan(60);
    // Fixed values: routing must not change between versions (queued steps would be looked for elsewhere).
    expect(['extract', 'load', 'step_0'].map((k) => stepQueueName(queues, k))).toEqual(['q1', 'q2', 'q1']);
    expect(stepQueueName(['only'], 'anything')).toBe('only');
  });

  it('distributed.queue takes a name or a list of names; a bad name in a list is located', async () => {
    const rc = resolveRunConfig({ execution: { config: { distributed: { queue: ['q1', 'q2', 'q3'] } } } }, job);
    expect(rc.executor).toMatchObject({ kind: 'distributed', queue: 'q1,q2,q3' });
    const dir = mkdtempSync(join(tmpdir(), 'baton-queues-'));
    const path = join(dir, 'rc.yaml');
    writeFileSync(path, 'execution:\n  config:\n    distributed:\n      queue: [q1, "bad queue"]\n');
    const err = await loadRunConfig([path], job).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toContain('execution.config.distributed.queue');
    expect((err as InputError).message).toContain('"bad queue"');
  });

  it('worker --queue rejects a bad name with exit 2', async () => {
    const r = spawnSync(process.execPath, [WORKER_BIN, '--queue', 'ok,bad name', '--jobs', '.'], { encoding: 'utf8', timeout: CEILING_MS.cli });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('bad name');
  });
});

describe('cluster URLs', () => {
  it('redis+cluster:// and rediss+cluster:// choose Cluster mode; the node URL is the plain one', () => {
    expect(isClusterUrl('redis+cluster://h:7001')).toBe(true);
    expect(isClusterUrl('rediss+cluster://u:p@h:7001')).toBe(true);
    expect(isClusterUrl('redis://h:7001')).toBe(false);
    expect(nodeUrl('rediss+cluster://u:p@h:7001')).toBe('rediss://u:p@h:7001');
    expect(redactRedisUrl('redis+cluster://u:secret@h:7001')).not.toContain('secret');
    expect(() => createRedis('http+cluster://h:1')).toThrow(/scheme must be/);
    expect(() => createRedis('redis+cluster://h:1/2')).toThrow(/only database 0/);
  });

  it('a cluster URL opens a Cluster client; BullMQ keys of a queue then carry its hash tag', () => {
    const cluster = createRedis('redis+cluster://127.0.0.1:1', { onError: () => {} });
    const single = new Redis('redis://127.0.0.1:1', { lazyConnect: true });
    try {
      expect(isClusterConnection(cluster)).toBe(true);
      expect(isClusterConnection(single)).toBe(false);
      expect(bullOptions('q1', cluster).prefix).toBe('bull:{q1}');
      // A single Redis keeps BullMQ's default prefix: existing queues are untouched.
      expect(bullOptions('q1', single).prefix).toBeUndefined();
    } finally {
      cluster.disconnect();
      single.disconnect();
    }
  });
});
