/** `coordinator serve` processes for tests (started on a Redis, stopped by the test or by stopAllServes), and what schedule and sensor tests share. */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openInstance } from '../../src/instance/open-instance.js';
import type { RunSummary } from '../../src/instance/types.js';
import { CLI, ROOT, tempDir } from './cli.js';

export interface Serve {
  logs(): string;
  stop(): Promise<void>;
}

const serves = new Set<Serve>();

export function startServe(redisUrl: string, jobs: string, extraArgs: readonly string[] = ['--schedule-interval', '0.25']): Serve {
  const child = spawn(process.execPath, [CLI, 'serve', '--jobs', jobs, ...extraArgs], {
    env: { ...process.env, REDIS_URL: redisUrl },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let logs = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (logs += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const serve: Serve = {
    logs: () => logs,
    async stop() {
      serves.delete(serve);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
  serves.add(serve);
  return serve;
}

export async function stopAllServes(): Promise<void> {
  await Promise.all([...serves].map((s) => s.stop()));
}

/** The runs of a Redis instance with this tag (newest first). */
export async function runsTagged(redisUrl: string, key: string, value: string): Promise<RunSummary[]> {
  const instance = await openInstance({ redis: redisUrl });
  try {
    return (await instance.getRuns({ tags: { [key]: value }, limit: 1000 })).runs;
  } finally {
    await instance.close();
  }
}

/** A job in a fresh directory with the sensor fixtures' modules, an empty inbox beside it, this `sensors:` block (and `before` it, e.g. `schedules:`). */
export function sensorJob(name: string, sensors: string, before = ''): { dir: string; file: string; inbox: string } {
  const dir = tempDir('baton-sensors-');
  cpSync(path.join(ROOT, 'test/fixtures/sensors'), dir, { recursive: true });
  const inbox = path.join(dir, 'inbox');
  mkdirSync(inbox, { recursive: true });
  const file = path.join(dir, 'job.yaml');
  writeFileSync(file, `name: ${name}\nops:\n  handle: { fn: ./ops.mjs#handle }\n${before}sensors:\n${sensors}`);
  return { dir, file, inbox };
}
