/**
 * `npm run bench`: prints figures against the issues' targets and writes them as JSON to the
 * temp dir. Nothing is asserted: a missed target is printed, never a failed exit.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { JobDefinition, JsonObject, RunEvent } from '../src/core/types.js';
import { createRedis } from '../src/distributed/connection.js';
import { deleteLimit, listLimits, setLimit } from '../src/distributed/semaphore/limits-admin.js';
import { loadJob } from '../src/job/load-job.js';
import { executeJob } from '../src/run/execute-job.js';
import type { RunResult } from '../src/run/execute-run.js';
import { benchBigJob, benchMultiprocess, chainOp, failureOf, jobYaml, median, packageRoot, writeJob } from './core-bench.js';
import { withWorkers, type Ctx } from './processes.js';
import { benchBigRun, benchWholeChain, benchWholeFanOut } from './whole-bench.js';
import { benchValidate } from './validate-bench.js';
import { printSection, printSummary, type Figure, type Section } from './report.js';
import { benchGetRuns } from './runs-bench.js';
import { startRedisServer, type BenchRedis } from './redis-server.js';
import { benchUiRunView } from './ui-bench.js';

interface TimedRun {
  result: RunResult;
  /** performance.now() at each event, in order. */
  times: Array<{ e: RunEvent; at: number }>;
}

/** executeJob on the distributed executor; throws unless the run succeeds within `timeoutMs`. */
async function runDistributed(ctx: Ctx, job: JobDefinition, queue: string, timeoutMs: number): Promise<TimedRun> {
  const times: TimedRun['times'] = [];
  const runConfig: JsonObject = { execution: { config: { distributed: { redis: ctx.redisUrl, queue } } } };
  const result = await executeJob(job, {
    runConfig,
    signal: AbortSignal.timeout(timeoutMs),
    onEvent: (e) => times.push({ e, at: performance.now() }),
  });
  if (result.status !== 'SUCCESS') {
    throw new Error(`baton run of ${job.name} ended ${result.status} (timeout ${timeoutMs / 1000} s)${failureOf(result)}`);
  }
  return { result, times };
}

const at = (run: TimedRun, type: RunEvent['type']): number[] => run.times.filter((t) => t.e.type === type).map((t) => t.at);

function distributedMissing(root: string): string | undefined {
  for (const f of ['src/distributed/coordinator.ts', 'worker/main.ts', 'dist/worker/main.js']) {
    if (!existsSync(join(root, f))) return `${f} does not exist`;
  }
  return undefined;
}

// ---------------------------------------------------------------- 5. global limits (issue 5)

const LIMIT_TAG = 'bench_limit';
const LIMITED_STEPS = 50; // per run
const LIMIT_RUNS = 4;
const STEP_MS = 20;
const SLOT_LIMIT = 2;
const CHAIN_STEPS = 200;

/**
 * Issue 5's figures. Skipped unless the semaphore exists and a distributed step tagged under a
 * global limit of 0 is held back (i.e. the executor honours global limits).
 */
async function benchLimits(ctx: Ctx): Promise<Section> {
  const title = '5. Global tag limits across runs and workers';
  if (!existsSync(join(ctx.root, 'src/distributed/semaphore/semaphore.ts'))) {
    return { title, figures: [], skipped: 'not wired yet (src/distributed/semaphore/semaphore.ts does not exist)' };
  }
  const dir = join(ctx.tmp, 'limits');
  const log = join(dir, 'spans.log');
  const timed = (tag: string) => `fn: ./ops.mjs#timed, tags: { ${tag} }, config: { ms: ${STEP_MS}, log: ${JSON.stringify(log)} }`;
  const probeFile = await writeJob(dir, 'probe.yaml', jobYaml('limit_probe', 1, () => 'fn: ./ops.mjs#noop, tags: { bench_probe: x }'));
  const limitedFile = await writeJob(dir, 'limited.yaml', jobYaml('limited', LIMITED_STEPS, () => timed(`${LIMIT_TAG}: shared`)));
  const chainFile = await writeJob(dir, 'chain.yaml', jobYaml('limit_chain', CHAIN_STEPS, chainOp('timed', `, tags: { bench_free: chain }, config: { ms: ${STEP_MS}, log: ${JSON.stringify(log)} }`)));
  const [probe, limited, chain] = [await loadJob(probeFile), await loadJob(limitedFile), await loadJob(chainFile)];
  const redis = createRedis(ctx.redisUrl);
  try {
    const section: Section = {
      title,
      short: '5. global limits',
      method: [
        `Contended: ${LIMIT_RUNS} concurrent runs × ${LIMITED_STEPS} independent ${STEP_MS} ms steps tagged ${LIMIT_TAG}=shared, global limit ${SLOT_LIMIT},`,
        `2 worker processes at --concurrency 4. Makespan = last op end − first op start (ops log their own spans);`,
        `ideal = ${LIMIT_RUNS * LIMITED_STEPS} × ${STEP_MS} ms / ${SLOT_LIMIT}. Highest concurrency: sweep over the logged spans.`,
        `Uncontended: a chain of ${CHAIN_STEPS} ${STEP_MS} ms steps, one worker, with no global limit at all vs a matching`,
        'limit of 1000; per-step overhead = (RUN_START → RUN_SUCCESS − Σ logged op spans) / steps.',
      ].join('\n'),
      figures: [],
    };
    const notWired = await withWorkers(ctx, { count: 2, concurrency: 4, jobs: [probeFile, limitedFile] }, async (queue) => {
      const why = await probeLimits(ctx, redis, probe, queue);
      if (why) return why;
      section.figures.push(...(await contended(ctx, redis, limited, queue, log)));
      return undefined;
    });
    if (notWired) return { title, figures: [], skipped: `not wired yet (${notWired})` };
    await withWorkers(ctx, { count: 1, concurrency: 1, jobs: [chainFile] }, async (queue) => {
      section.figures.push(...(await uncontended(ctx, redis, chain, queue, log)));
    });
    return section;
  } finally {
    await redis.quit().catch(() => {});
  }
}

/** Undefined if a step under a global limit of 0 waits; else why limits count as not honoured. */
async function probeLimits(ctx: Ctx, redis: Redis, probe: JobDefinition, queue: string): Promise<string | undefined> {
  await setLimit(redis, 'bench_probe', 0);
  const run = runDistributed(ctx, probe, queue, 15_000);
  run.catch(() => {}); // awaited below
  const ranAnyway = await Promise.race([run.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 1500))]);
  await deleteLimit(redis, 'bench_probe');
  if (ranAnyway) return 'a distributed step tagged under a global limit of 0 still ran';
  await run; // released by deleting the limit
  return undefined;
}

async function contended(ctx: Ctx, redis: Redis, job: JobDefinition, queue: string, log: string): Promise<Figure[]> {
  await setLimit(redis, `${LIMIT_TAG}=shared`, SLOT_LIMIT);
  await writeFile(log, '');
  const t0 = performance.now();
  await Promise.all(Array.from({ length: LIMIT_RUNS }, () => runDistributed(ctx, job, queue, 60_000)));
  const wallMs = performance.now() - t0;
  const spans = await readSpans(log);
  if (spans.length !== LIMIT_RUNS * LIMITED_STEPS) throw new Error(`${spans.length} op spans logged, expected ${LIMIT_RUNS * LIMITED_STEPS}`);
  const makespan = Math.max(...spans.map((s) => s.end)) - Math.min(...spans.map((s) => s.start));
  const ideal = (LIMIT_RUNS * LIMITED_STEPS * STEP_MS) / SLOT_LIMIT;
  return [
    { name: 'makespan', value: makespan, unit: 'ms', note: `wall time of the ${LIMIT_RUNS} executeJob calls: ${Math.round(wallMs)} ms` },
    { name: `makespan ÷ ideal ${ideal} ms`, value: makespan / ideal, unit: '×', target: { cmp: '<=', limit: 1.1 } },
    { name: 'highest concurrency observed', value: maxOverlap(spans), unit: 'steps', target: { cmp: '==', limit: SLOT_LIMIT } },
  ];
}

async function uncontended(ctx: Ctx, redis: Redis, job: JobDefinition, queue: string, log: string): Promise<Figure[]> {
  for (const l of await listLimits(redis)) await deleteLimit(redis, l.spec);
  const perStep = async (): Promise<number> => {
    await writeFile(log, '');
    const run = await runDistributed(ctx, job, queue, 60_000);
    const opMs = (await readSpans(log)).reduce((sum, s) => sum + s.end - s.start, 0);
    return ((at(run, 'RUN_SUCCESS')[0] as number) - (at(run, 'RUN_START')[0] as number) - opMs) / CHAIN_STEPS;
  };
  const without = await perStep();
  await setLimit(redis, 'bench_free', 1000);
  const withLimit = await perStep();
  await deleteLimit(redis, 'bench_free');
  const pings: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    await redis.ping();
    pings.push(performance.now() - t);
  }
  const ping = median(pings);
  const diff = withLimit - without;
  return [
    { name: 'overhead per step, no global limit', value: without, unit: 'ms' },
    { name: 'overhead per step, matching limit 1000', value: withLimit, unit: 'ms' },
    { name: 'difference per step', value: diff, unit: 'ms', note: `one PING round trip (median of 200): ${ping.toFixed(3)} ms` },
    { name: 'difference ÷ PING round trip', value: diff / ping, unit: '×', target: { cmp: '<=', limit: 1 } },
  ];
}

async function readSpans(file: string): Promise<Array<{ start: number; end: number }>> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [start, end] = line.split(' ').map(Number);
      return { start: start as number, end: end as number };
    });
}

/** Most spans open at once; a span ending at the instant another starts does not overlap it. */
function maxOverlap(spans: Array<{ start: number; end: number }>): number {
  const points = spans.flatMap((s) => [{ t: s.start, d: 1 }, { t: s.end, d: -1 }]).sort((a, b) => a.t - b.t || a.d - b.d);
  let open = 0;
  let most = 0;
  for (const p of points) most = Math.max(most, (open += p.d));
  return most;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const root = await packageRoot();
  const tmp = await mkdtemp(join(os.tmpdir(), 'baton-bench-'));
  const sections: Section[] = [];
  const record = (s: Section): void => {
    sections.push(s);
    printSection(s);
  };
  // `npm run bench -- --only=4a,5`: just those sections (by the number their title starts with).
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
  const attempt = async (title: string, fn: () => Promise<Section | Section[]>): Promise<void> => {
    if (only && !only.some((o) => title.startsWith(o))) return;
    try {
      const out = await fn();
      for (const s of Array.isArray(out) ? out : [out]) record(s);
    } catch (e) {
      record({ title, figures: [], error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    }
  };
  // Other processes on the machine skew every figure: the 1-minute load average says how busy it was.
  const load = (): string => os.loadavg()[0]!.toFixed(2);
  const loadAtStart = load();
  console.log(`baton bench — node ${process.version}, ${os.availableParallelism()} CPUs, load average ${loadAtStart}, temp dir ${tmp}`);
  let redis: BenchRedis | undefined;
  try {
    await attempt('1. Multiprocess per-step overhead', () => benchMultiprocess(tmp));
    await attempt('2-3. 100,000-op job: load, select + plan', () => benchBigJob(tmp));
    await attempt('2b. coordinator validate of a 100,000-op job', () => benchValidate(tmp));

    const missing = distributedMissing(root);
    let noRedis: string | undefined;
    if (!missing) {
      redis = await startRedisServer().catch((e: unknown) => {
        noRedis = `no redis-server: ${e instanceof Error ? e.message : String(e)}`;
        return undefined;
      });
    }
    const ctx = redis ? { root, tmp, redisUrl: redis.url } : undefined;
    const skip = missing ?? noRedis ?? '';
    if (ctx) {
      await attempt('4a. Distributed chain vs bare BullMQ', () => benchWholeChain(ctx));
      await attempt('4b. Distributed fan-out vs bare BullMQ', () => benchWholeFanOut(ctx));
      await attempt('5. Global tag limits across runs and workers', () => benchLimits(ctx));
      await attempt('6. getRuns with 10,000 runs recorded', () => benchGetRuns(ctx.redisUrl));
      await attempt('7. A 100,000-step distributed run', () => benchBigRun(ctx));
    } else {
      record({ title: '4. Distributed vs bare BullMQ', figures: [], skipped: skip });
      record({ title: '5. Global tag limits across runs and workers', figures: [], skipped: skip });
      record({ title: '6. getRuns with 10,000 runs recorded', figures: [], skipped: skip });
      record({ title: '7. A 100,000-step distributed run', figures: [], skipped: skip });
    }
    await attempt('8. Web UI: run view with 50,000 log lines', () => benchUiRunView(root));
  } finally {
    await redis?.stop();
    await rm(tmp, { recursive: true, force: true });
  }
  printSummary(sections);
  const out = join(os.tmpdir(), 'bench-results.json');
  const loadAverage = { start: Number(loadAtStart), end: Number(load()) };
  const meta = { date: new Date().toISOString(), node: process.version, cpus: os.availableParallelism(), loadAverage };
  console.log(`\nload average (1 min): ${loadAverage.start} at start, ${loadAverage.end} at the end`);
  await writeFile(out, JSON.stringify({ ...meta, sections }, null, 2) + '\n');
  console.log(`\nfigures as JSON: ${out}`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
