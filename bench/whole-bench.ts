/**
 * Sections 4a, 4b and 7: the distributed executor as users meet it — the wall time of a whole
 * `coordinator run JOB -c distributed.yaml --json` minus that of a 1-step job, per hop or step —
 * against bare BullMQ measured the same way (a driver process of its own, bare-driver.js), with
 * the worker in its own process in both, in the same run on the same Redis. Redis commands per
 * step come from INFO commandstats, net of a 1-step run and of an idle baseline of the same
 * worker over the same wall time.
 */
import { writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRedis } from '../src/distributed/connection.js';
import { chainOp, jobYaml, writeJob } from './core-bench.js';
import {
  commandCount,
  peakRss,
  sleep,
  startBareWorker,
  startWorker,
  timeNode,
  type BareProcessor,
  type Ctx,
  type Isolation,
  type WorkerProcess,
} from './processes.js';
import type { Figure, Section } from './report.js';

/** `BENCH_QUICK=1`: smaller sizes for iterating; the full sizes are the figures. */
const QUICK = process.env.BENCH_QUICK === '1';
export const HOPS = QUICK ? 300 : 2000;
export const FAN_OUT = QUICK ? 3000 : 20_000;
export const FAN_CONCURRENCY = 100;
export const BIG_RUN = QUICK ? 10_000 : 100_000;

type Variant =
  | { label: string; kind: 'baton'; isolation: Isolation }
  | { label: string; kind: 'bare'; processor: BareProcessor };

const VARIANTS: Variant[] = [
  { label: 'bare BullMQ, inline processor', kind: 'bare', processor: 'inline' },
  { label: 'baton --isolation none', kind: 'baton', isolation: 'none' },
  { label: 'baton, process pool (default)', kind: 'baton', isolation: 'process' },
  { label: 'bare BullMQ, sandboxed processor', kind: 'bare', processor: 'sandboxed' },
];

interface Whole {
  /** ms per hop (chain) or per step (fan-out), whole process, net of a 1-step run. */
  perStep: number;
  nMs: number;
  oneMs: number;
  /** Redis commands per step (scripts' inner commands included), net of the 1-step run and idle. */
  commands: number;
  /** Client calls of scripts (EVALSHA) per step, net the same way. */
  scripts: number;
  workerPeakRss: number;
  driverPeakRss: number;
  driverOneRss: number;
}

type Shape = 'chain' | 'fan';

/** Job files for a shape: N steps and 1 step (as chains or independent steps), in their own dir. */
async function jobFiles(ctx: Ctx, shape: Shape, n: number): Promise<{ dir: string; big: string; one: string; config: (queue: string) => Promise<string> }> {
  const dir = join(ctx.tmp, `whole-${shape}-${n}`);
  const body = shape === 'chain' ? chainOp('noop') : (): string => 'fn: ./ops.mjs#noop';
  const big = await writeJob(dir, 'big.yaml', jobYaml(`${shape}_${n}`, n, body));
  const one = await writeJob(dir, 'one.yaml', jobYaml(`${shape}_one`, 1, body));
  const config = async (queue: string): Promise<string> => {
    const file = join(dir, `distributed-${queue}.yaml`);
    await writeFile(file, `execution:\n  config:\n    distributed: { redis: "${ctx.redisUrl}", queue: "${queue}" }\n`);
    return file;
  };
  return { dir, big, one, config };
}

/** Measures one variant whole: 1-step runs (median of 3) and the N-step run, commands, peak RSS. */
async function measure(ctx: Ctx, v: Variant, shape: Shape, n: number, concurrency: number): Promise<Whole> {
  const files = await jobFiles(ctx, shape, n);
  const queue = `whole-${randomUUID().slice(0, 8)}`;
  const redis = createRedis(ctx.redisUrl);
  let worker: WorkerProcess | undefined;
  try {
    worker =
      v.kind === 'baton'
        ? await startWorker(ctx, queue, [files.big, files.one], concurrency, v.isolation)
        : await startBareWorker(ctx.redisUrl, queue, concurrency, v.processor);
    const cli = join(ctx.root, 'dist', 'cli', 'main.js');
    const driver = fileURLToPath(new URL('./bare-driver.js', import.meta.url));
    const config = v.kind === 'baton' ? await files.config(queue) : '';
    const run = (steps: number) =>
      v.kind === 'baton'
        ? timeNode([cli, 'run', steps === 1 ? files.one : files.big, '-c', config, '--json'])
        : timeNode([driver, ctx.redisUrl, queue, shape, String(steps)]);
    await run(1); // warm-up: the worker's first step (its pool, module caches, Lua scripts)
    const c0 = await commandCount(redis);
    const ones = [await run(1), await run(1), await run(1)];
    const c1 = await commandCount(redis);
    const sampler = peakRss(worker.pid);
    const big = await run(n);
    const workerPeakRss = sampler.stop();
    const c2 = await commandCount(redis);
    const one = ones.map((o) => o.ms).sort((a, b) => a - b)[1] as number;
    // The same worker idle over the same extra wall time: its heartbeats, stalled checks, renewals.
    await sleep(Math.max(0, big.ms - one));
    const c3 = await commandCount(redis);
    const net = (k: 'all' | 'scripts'): number => (c2[k] - c1[k] - (c1[k] - c0[k]) / 3 - (c3[k] - c2[k]) - 1) / (n - 1);
    return {
      perStep: (big.ms - one) / (n - 1),
      nMs: big.ms,
      oneMs: one,
      commands: net('all'),
      scripts: net('scripts'),
      workerPeakRss,
      driverPeakRss: big.peakRss,
      driverOneRss: Math.max(...ones.map((o) => o.peakRss)),
    };
  } finally {
    await worker?.stop();
    await redis.quit().catch(() => {});
  }
}

const MB = 2 ** 20;

function method(shape: Shape, n: number, concurrency: number): string {
  return [
    `Whole processes, timed from spawn to exit: \`coordinator run JOB -c distributed.yaml --json\` for baton, bare-driver.js`,
    `(a Queue + QueueEvents${shape === 'chain' ? ' adding each job once the previous completed' : ', one addBulk'}) for bare BullMQ; the worker in its own process`,
    `(concurrency ${concurrency}) for both. Value = (N-step run − median of three 1-step runs) / (N − 1), N = ${n.toLocaleString('en-US')}.`,
    'Commands per step: INFO commandstats (scripts\' inner commands included; EVALSHA calls alone beside), net of the',
    '1-step run and of the same worker idle over the same extra wall time. Peak RSS: the worker with its step processes.',
  ].join('\n');
}

async function measureAll(ctx: Ctx, shape: Shape, n: number, concurrency: number): Promise<Map<string, Whole>> {
  const out = new Map<string, Whole>();
  for (const v of VARIANTS) out.set(v.label, await measure(ctx, v, shape, n, concurrency));
  return out;
}

function commandFigures(m: Map<string, Whole>, bare: Whole): Figure[] {
  const figures: Figure[] = [];
  for (const [label, w] of m) {
    figures.push({ name: `Redis commands per step, ${label}`, value: w.commands, unit: 'cmds', note: `of which EVALSHA calls ${w.scripts.toFixed(2)}` });
  }
  const none = m.get('baton --isolation none') as Whole;
  figures.push({ name: 'commands per step, baton ÷ bare', value: none.commands / bare.commands, unit: '×', target: { cmp: '<=', limit: 2 } });
  return figures;
}

function rssFigures(m: Map<string, Whole>): Figure[] {
  return [...m].map(([label, w]) => ({ name: `worker peak RSS, ${label}`, value: w.workerPeakRss / MB, unit: 'MB' }));
}

export async function benchWholeChain(ctx: Ctx): Promise<Section> {
  const m = await measureAll(ctx, 'chain', HOPS, 1);
  const bare = m.get(VARIANTS[0]!.label) as Whole;
  const figures: Figure[] = [];
  for (const [label, w] of m) {
    figures.push({ name: label, value: w.perStep, unit: 'ms/hop', note: `whole: ${(w.nMs / 1000).toFixed(2)} s for ${HOPS}, ${Math.round(w.oneMs)} ms for 1` });
  }
  const ratio = (label: string, limit: number): Figure => ({
    name: `${label} ÷ bare inline`,
    value: (m.get(label) as Whole).perStep / bare.perStep,
    unit: '×',
    target: { cmp: '<=', limit },
  });
  figures.push(ratio('baton --isolation none', 1.1), ratio('baton, process pool (default)', 1.3));
  figures.push({ name: 'baton process pool ÷ bare sandboxed', value: (m.get('baton, process pool (default)') as Whole).perStep / (m.get(VARIANTS[3]!.label) as Whole).perStep, unit: '×' });
  figures.push(...commandFigures(m, bare), ...rssFigures(m));
  return {
    title: `4a. Distributed chain of ${HOPS.toLocaleString('en-US')} no-op steps vs bare BullMQ, whole processes`,
    short: '4a. distributed chain',
    method: method('chain', HOPS, 1),
    figures,
  };
}

export async function benchWholeFanOut(ctx: Ctx): Promise<Section> {
  const m = await measureAll(ctx, 'fan', FAN_OUT, FAN_CONCURRENCY);
  const bare = m.get(VARIANTS[0]!.label) as Whole;
  const rate = (w: Whole): number => 1000 / w.perStep;
  const figures: Figure[] = [];
  for (const [label, w] of m) {
    figures.push({ name: label, value: rate(w), unit: 'steps/s', note: `whole: ${(w.nMs / 1000).toFixed(2)} s for ${FAN_OUT}, ${Math.round(w.oneMs)} ms for 1` });
  }
  const ratio = (label: string, limit: number): Figure => ({
    name: `${label} ÷ bare inline`,
    value: rate(m.get(label) as Whole) / rate(bare),
    unit: '×',
    target: { cmp: '>=', limit },
  });
  figures.push(ratio('baton --isolation none', 0.8), ratio('baton, process pool (default)', 0.5));
  figures.push({ name: 'baton process pool ÷ bare sandboxed', value: rate(m.get('baton, process pool (default)') as Whole) / rate(m.get(VARIANTS[3]!.label) as Whole), unit: '×' });
  figures.push(...commandFigures(m, bare), ...rssFigures(m));
  return {
    title: `4b. Distributed fan-out of ${FAN_OUT.toLocaleString('en-US')} no-op steps vs bare BullMQ, whole processes`,
    short: '4b. distributed fan-out',
    method: method('fan', FAN_OUT, FAN_CONCURRENCY),
    figures,
  };
}

/** A 100,000-step fan-out run whole: it completes; coordinator and worker peak RSS; coordinator KiB per step above a 1-step run's. */
export async function benchBigRun(ctx: Ctx): Promise<Section> {
  const w = await measure(ctx, { label: 'baton --isolation none', kind: 'baton', isolation: 'none' }, 'fan', BIG_RUN, FAN_CONCURRENCY);
  const kibPerStep = (w.driverPeakRss - w.driverOneRss) / 1024 / BIG_RUN;
  return {
    title: `7. A ${BIG_RUN.toLocaleString('en-US')}-step distributed run (fan-out, one worker --isolation none at ${FAN_CONCURRENCY})`,
    short: '7. big distributed run',
    method: [
      'Whole `coordinator run --json` of independent no-op steps. Coordinator idle RSS: the peak of a whole 1-step run',
      '(same process, same Redis, a 1-op job file); KiB per step = (peak − that) / steps.',
    ].join('\n'),
    figures: [
      { name: 'completed in', value: w.nMs / 1000, unit: 's', note: `${Math.round(1000 / w.perStep)} steps/s` },
      { name: 'coordinator peak RSS', value: w.driverPeakRss / MB, unit: 'MB', note: `1-step run: ${(w.driverOneRss / MB).toFixed(0)} MB` },
      { name: 'worker peak RSS', value: w.workerPeakRss / MB, unit: 'MB' },
      { name: 'coordinator KiB per step above idle', value: kibPerStep, unit: 'KiB', target: { cmp: '<=', limit: 4 } },
      { name: 'Redis commands per step', value: w.commands, unit: 'cmds' },
    ],
  };
}
