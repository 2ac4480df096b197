/**
 * Real `worker` processes (the built `dist/worker/main.js`) for distributed tests. Every worker
 * started here is killed by `stopAllWorkers()`; call it in afterEach/afterAll so none outlives
 * its test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './cli.js';
import { CEILING_MS } from './ceilings.js';

export const WORKER_BIN = path.join(ROOT, 'dist/worker/main.js');

export interface TestWorker {
  id: string;
  pid: number;
  child: ChildProcess;
  /** Everything the worker logged (pino JSON lines on stderr). */
  logs(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

export interface WorkerOptions {
  redisUrl: string;
  jobs: string[];
  id?: string;
  queue?: string;
  concurrency?: number;
  /** Short lock settings make stalled-step recovery take about a second. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  graceMs?: number;
  /** `--isolation`; the worker's default (process) if unset. */
  isolation?: 'process' | 'none';
  maxStepsPerProcess?: number;
  /** More flags, passed as they are. */
  args?: string[];
  env?: Record<string, string>;
}

const started = new Set<TestWorker>();
let counter = 0;

/** Starts a worker and waits for its "worker ready" line. */
export async function startWorker(o: WorkerOptions): Promise<TestWorker> {
  if (!existsSync(WORKER_BIN)) throw new Error(`${WORKER_BIN} is missing: run "npm run build" first (npm test does)`);
  const id = o.id ?? `w${++counter}`;
  const args = [WORKER_BIN, '--redis', o.redisUrl, '--id', id];
  for (const j of o.jobs) args.push('--jobs', j);
  if (o.queue) args.push('--queue', o.queue);
  if (o.concurrency) args.push('--concurrency', String(o.concurrency));
  if (o.lockDurationMs) args.push('--lock-duration', String(o.lockDurationMs));
  if (o.stalledIntervalMs) args.push('--stalled-interval', String(o.stalledIntervalMs));
  if (o.graceMs) args.push('--grace', String(o.graceMs));
  if (o.isolation) args.push('--isolation', o.isolation);
  if (o.maxStepsPerProcess) args.push('--max-steps-per-process', String(o.maxStepsPerProcess));
  if (o.args) args.push(...o.args);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const worker: TestWorker = {
    id,
    pid: child.pid as number,
    child,
    logs: () => log,
    exited,
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
  started.add(worker);
  void exited.then(() => started.delete(worker));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${id} not ready after ${CEILING_MS.processStart / 1000} s:\n${log}`)), CEILING_MS.processStart);
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('"worker ready"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`worker ${id} exited (${code}) before it was ready:\n${log}`));
    });
  });
  return worker;
}

export async function startWorkers(n: number, o: WorkerOptions): Promise<TestWorker[]> {
  return Promise.all(Array.from({ length: n }, () => startWorker({ ...o, id: undefined })));
}

/** Kills every worker still running and waits until they are gone. */
export async function stopAllWorkers(): Promise<void> {
  const all = [...started];
  for (const w of all) w.kill('SIGKILL');
  await Promise.all(all.map((w) => w.exited));
}
