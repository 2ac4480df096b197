/**
 * Processes the distributed benches start: baton workers, bare BullMQ workers, whole timed
 * commands with their peak memory, and Redis's own command counts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

export interface Ctx {
  root: string;
  tmp: string;
  redisUrl: string;
}

export interface WorkerProcess {
  readonly pid: number;
  stop(): Promise<void>;
}

const liveWorkers = new Set<ChildProcess>();
process.once('exit', () => liveWorkers.forEach((w) => w.kill('SIGKILL')));

/** A child resolved once `isReady` accepts a line it printed (on stderr or stdout); stopped with SIGTERM. */
async function startChild(args: string[], stream: 'stderr' | 'stdout', isReady: (line: string) => boolean): Promise<WorkerProcess> {
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', stream === 'stdout' ? 'pipe' : 'ignore', stream === 'stderr' ? 'pipe' : 'inherit'],
    env: { ...process.env, LOG_LEVEL: 'info' },
  });
  liveWorkers.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => liveWorkers.delete(child));
  const out = (stream === 'stdout' ? child.stdout : child.stderr) as NodeJS.ReadableStream;
  let tail = '';
  let buffered = '';
  let ready = false;
  const waiting = new Promise<void>((resolve, reject) => {
    out.on('data', (chunk: Buffer) => {
      if (ready) return; // drained, not kept
      tail = (tail + chunk.toString()).slice(-3000);
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      if (lines.some(isReady)) {
        ready = true;
        resolve();
      }
    });
    child.once('error', reject);
    void exited.then(() => reject(new Error(`${args[0]} exited before it was ready (code ${child.exitCode}):\n${tail}`)));
    setTimeout(() => reject(new Error(`${args[0]} not ready within 60 s:\n${tail}`)), 60_000).unref();
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(kill);
    }
  };
  try {
    await waiting;
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid: child.pid as number, stop };
}

export type Isolation = 'none' | 'process';

/** `node dist/worker/main.js ...`, resolved once it logged "worker ready" (stderr JSON). */
export function startWorker(
  ctx: Ctx,
  queue: string,
  jobs: string[],
  concurrency: number,
  isolation?: Isolation,
): Promise<WorkerProcess> {
  const args = [join(ctx.root, 'dist', 'worker', 'main.js'), '--redis', ctx.redisUrl, '--queue', queue, '--concurrency', String(concurrency)];
  for (const j of jobs) args.push('--jobs', j);
  if (isolation) args.push('--isolation', isolation);
  return startChild(args, 'stderr', (line) => {
    try {
      return (JSON.parse(line) as { msg?: string }).msg === 'worker ready';
    } catch {
      return false; // not a JSON log line
    }
  });
}

export type BareProcessor = 'inline' | 'sandboxed';

/** bare-worker.js: a BullMQ Worker with an inline processor function, or a sandboxed (file) one. */
export function startBareWorker(redisUrl: string, queue: string, concurrency: number, processor: BareProcessor = 'inline'): Promise<WorkerProcess> {
  const script = fileURLToPath(new URL('./bare-worker.js', import.meta.url));
  return startChild([script, redisUrl, queue, String(concurrency), '', processor], 'stdout', (line) => line === 'ready');
}

/** `count` workers on a fresh queue for one measurement; stopped afterwards, whatever happens. */
export async function withWorkers<T>(
  ctx: Ctx,
  o: { count: number; concurrency: number; jobs: string[]; isolation?: Isolation },
  fn: (queue: string, workers: WorkerProcess[]) => Promise<T>,
): Promise<T> {
  const queue = `bench-${randomUUID().slice(0, 8)}`;
  const workers: WorkerProcess[] = [];
  try {
    for (let i = 0; i < o.count; i++) workers.push(await startWorker(ctx, queue, o.jobs, o.concurrency, o.isolation));
    return await fn(queue, workers);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

/** Resident set size of a process and all its descendants, in bytes (Linux /proc); 0 once gone. */
export function treeRss(pid: number): number {
  let total = 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    total += Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    for (const task of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) {
      total += treeRss(Number(task));
    }
  } catch {
    // gone meanwhile
  }
  return total;
}

/** Samples the peak of `treeRss(pid)` every 20 ms until stopped. */
export function peakRss(pid: number): { stop(): number } {
  let peak = treeRss(pid);
  const timer = setInterval(() => (peak = Math.max(peak, treeRss(pid))), 20);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, treeRss(pid));
    },
  };
}

export interface Timed {
  ms: number;
  stdout: string;
  /** Highest RSS of the command's process (with its children), sampled every 20 ms. */
  peakRss: number;
}

/** Runs `node args...` whole, from spawn to exit; throws unless it exits 0. */
export async function timeNode(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Timed> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const rss = peakRss(child.pid as number);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-3000)));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  const ms = performance.now() - t0;
  const peak = rss.stop();
  if (code !== 0) throw new Error(`node ${args.join(' ')} exited ${code}:\n${stdout.slice(-2000)}\n${stderr}`);
  return { ms, stdout, peakRss: peak };
}

/** Every command Redis executed so far (INFO commandstats: scripts' inner commands included), and the client calls alone. */
export async function commandCount(redis: Redis): Promise<{ all: number; scripts: number }> {
  const info = await redis.info('commandstats');
  let all = 0;
  let scripts = 0;
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const calls = Number(m[2]);
    all += calls;
    if (m[1] === 'evalsha' || m[1] === 'eval') scripts += calls;
  }
  return { all, scripts };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
