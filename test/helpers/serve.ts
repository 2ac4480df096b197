/** `coordinator serve` processes for tests: started on a Redis, stopped (SIGTERM) by the test or by stopAllServes. */
import { spawn } from 'node:child_process';
import { CLI } from './cli.js';

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
