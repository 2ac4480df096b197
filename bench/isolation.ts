/**
 * `npm run bench:isolation`: what process isolation costs a worker. The same run (a chain of
 * no-op steps, then a fan-out of no-op steps) on one worker started with `--isolation process`
 * (the default: a pool of step processes) and with `--isolation none` (steps inside the worker):
 * per-step cost and the peak resident memory of the worker with its step processes. Prints
 * ratios; asserts nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import type { JsonObject } from '../src/core/types.js';
import { loadJob } from '../src/job/load-job.js';
import { executeJob } from '../src/run/execute-job.js';
import { chainOp, failureOf, jobYaml, packageRoot, writeJob } from './core-bench.js';
import { startRedisServer } from './redis-server.js';
import { treeRss } from './processes.js';

const CHAIN = Number(process.env.BENCH_CHAIN ?? 300);
const FAN = Number(process.env.BENCH_FAN ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);

async function startWorker(root: string, redisUrl: string, queue: string, job: string, isolation: string): Promise<ChildProcess> {
  const args = [join(root, 'dist/worker/main.js'), '--redis', redisUrl, '--queue', queue, '--jobs', job, '--concurrency', String(CONCURRENCY), '--isolation', isolation];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
  await new Promise<void>((resolve, reject) => {
    let log = '';
    let ready = false;
    child.stderr?.on('data', (d: Buffer) => {
      if (ready) return; // drained, not kept
      log += d.toString();
      if (log.includes('"worker ready"')) {
        ready = true;
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`worker exited (${code}):\n${log}`)));
  });
  return child;
}

interface Measured {
  chainMsPerStep: number;
  fanMsPerStep: number;
  peakRssMb: number;
}

async function measure(root: string, redisUrl: string, tmp: string, isolation: string): Promise<Measured> {
  const chainJob = await loadJob(await writeJob(tmp, 'chain.yaml', jobYaml('iso_chain', CHAIN, chainOp('noop'))));
  const fanJob = await loadJob(await writeJob(tmp, 'fan.yaml', jobYaml('iso_fan', FAN, () => 'fn: ./ops.mjs#noop')));
  const queue = `iso-${randomUUID().slice(0, 8)}`;
  const worker = await startWorker(root, redisUrl, queue, tmp, isolation);
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, treeRss(worker.pid as number))), 50);
  try {
    const runConfig: JsonObject = { execution: { config: { distributed: { redis: redisUrl, queue, max_concurrent: CONCURRENCY } } } };
    const time = async (job: typeof chainJob): Promise<number> => {
      const t0 = performance.now();
      const result = await executeJob(job, { runConfig, signal: AbortSignal.timeout(600_000) });
      if (result.status !== 'SUCCESS') throw new Error(`${job.name} ended ${result.status}${failureOf(result)}`);
      return performance.now() - t0;
    };
    await time(chainJob); // warm-up: the pool's first processes, module caches
    const chainMs = await time(chainJob);
    const fanMs = await time(fanJob);
    return { chainMsPerStep: chainMs / CHAIN, fanMsPerStep: fanMs / FAN, peakRssMb: peak / 2 ** 20 };
  } finally {
    clearInterval(sampler);
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
  }
}

async function main(): Promise<void> {
  const root = await packageRoot();
  const redis = await startRedisServer();
  const tmp = await mkdtemp(join(os.tmpdir(), 'baton-bench-iso-'));
  try {
    const none = await measure(root, redis.url, tmp, 'none');
    const proc = await measure(root, redis.url, tmp, 'process');
    const row = (name: string, m: Measured): string =>
      `${name.padEnd(22)} ${m.chainMsPerStep.toFixed(2).padStart(8)} ms ${m.fanMsPerStep.toFixed(2).padStart(10)} ms ${m.peakRssMb.toFixed(0).padStart(10)} MB`;
    console.log(`\nProcess isolation: one worker, concurrency ${CONCURRENCY}; chain of ${CHAIN} no-op steps, fan-out of ${FAN}`);
    console.log(`${''.padEnd(22)} ${'chain/step'.padStart(11)} ${'fan-out/step'.padStart(13)} ${'peak RSS'.padStart(13)}`);
    console.log(row('--isolation none', none));
    console.log(row('--isolation process', proc));
    console.log(
      `${'ratio process/none'.padEnd(22)} ${(proc.chainMsPerStep / none.chainMsPerStep).toFixed(2).padStart(8)} x  ${(proc.fanMsPerStep / none.fanMsPerStep).toFixed(2).padStart(9)} x  ${(proc.peakRssMb / none.peakRssMb).toFixed(2).padStart(9)} x`,
    );
    console.log('(peak RSS: the worker process plus its step processes, sampled every 50 ms from /proc)');
  } finally {
    await redis.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
