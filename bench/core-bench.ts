/**
 * Sections 1-3: multiprocess per-step overhead, loading a 100,000-op job file, select + plan.
 * Also the job-file generators the distributed benches share.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPlan } from '../src/core/plan.js';
import { selectOps } from '../src/core/selection.js';
import type { JsonObject, RunEvent } from '../src/core/types.js';
import { loadJob } from '../src/job/load-job.js';
import { executeJob } from '../src/run/execute-job.js';
import type { RunResult } from '../src/run/execute-run.js';
import type { Section } from './report.js';

// ---------------------------------------------------------------- helpers

/** The repository root (holds package.json), whether this runs from bench/ or dist/bench/. */
export async function packageRoot(): Promise<string> {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!(await stat(join(dir, 'package.json')).catch(() => undefined))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the bench');
    dir = up;
  }
  return dir;
}

/** Writes `yaml` as `dir/file` with the bench ops module beside it as ./ops.mjs; returns the path. */
export async function writeJob(dir: string, file: string, yaml: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await copyFile(join(await packageRoot(), 'bench', 'fixtures', 'ops.mjs'), join(dir, 'ops.mjs'));
  const path = join(dir, file);
  await writeFile(path, yaml);
  return path;
}

/** A job of `n` ops named op_0..op_{n-1}; `body(i)` is the inside of op i's flow mapping. */
export function jobYaml(name: string, n: number, body: (i: number) => string): string {
  const lines = [`name: ${name}`, 'ops:'];
  for (let i = 0; i < n; i++) lines.push(`  op_${i}: { ${body(i)} }`);
  return lines.join('\n') + '\n';
}

/** Each op `deps` on the one before (ordering only: no data passed). */
export const chainOp = (fn: string, extra = '') => (i: number): string =>
  `fn: ./ops.mjs#${fn}${i > 0 ? `, deps: [op_${i - 1}]` : ''}${extra}`;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The first step failure of a run, as "; first failure: <step>: <code> <message>", or ''. */
export function failureOf(result: RunResult): string {
  const f = result.events.find((e) => e.type === 'STEP_FAILURE');
  return f ? `; first failure: ${f.stepKey}: ${f.error?.code ?? ''} ${f.error?.message ?? f.message ?? ''}` : '';
}

function nodeE0(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`node -e 0 exited ${code}`))));
  });
}

async function timeIt<T>(fn: () => T | Promise<T>): Promise<{ ms: number; result: T }> {
  const t0 = performance.now();
  const result = await fn();
  return { ms: performance.now() - t0, result };
}

// ---------------------------------------------------------------- 1. multiprocess overhead

const CHAIN = 30;

/**
 * Forkserver keeps `max_concurrent` warm processes; each runs one step and is replaced in the
 * background. The pool starts with the run, so the first step waits for a cold start, and a
 * back-to-back chain consumes warm processes faster than ~100 ms of CPU per Node start on 2 cores
 * can refill them: past the first `max_concurrent` steps the chain runs at the refill rate. Hence
 * 1, 4 and 8.
 */
const EXECUTORS: Array<{ label: string; config: JsonObject; target?: number }> = [
  { label: 'in_process (reference)', config: { in_process: {} } },
  { label: 'spawn', config: { multiprocess: { start_method: { spawn: {} } } }, target: 100 },
  ...[1, 4, 8].map((n) => ({
    label: `forkserver, max_concurrent ${n}`,
    config: { multiprocess: { max_concurrent: n, start_method: { forkserver: { preload_modules: ['./ops.mjs'] } } } },
    target: 10,
  })),
];

export async function benchMultiprocess(tmp: string): Promise<Section> {
  const section: Section = {
    title: '1. Multiprocess per-step overhead (chain of 30 no-op steps)',
    short: '1. per-step overhead',
    method: [
      `Value = (RUN_SUCCESS − RUN_START) / ${CHAIN}, both taken with performance.now() in onEvent: planning and`,
      'launcher close are outside; op bodies return null at once, so nothing is subtracted for them.',
      'Notes: launch = previous STEP_SUCCESS (or RUN_START) → STEP_START; in-step = STEP_START → STEP_SUCCESS.',
      'Forkserver warm processes start with the run and are used once; a back-to-back chain outruns their refill.',
    ].join('\n'),
    figures: [],
  };
  const job = await loadJob(await writeJob(join(tmp, 'chain30'), 'job.yaml', jobYaml('chain30', CHAIN, chainOp('noop'))));
  // The yardstick for a fresh process per step, in the same run: a bare `node -e 0`, whole.
  const nodeStarts: number[] = [];
  for (let i = 0; i < 7; i++) nodeStarts.push((await timeIt(() => nodeE0())).ms);
  const bareNode = median(nodeStarts);
  section.figures.push({ name: 'bare `node -e 0`, whole process (median of 7)', value: bareNode, unit: 'ms' });
  for (const ex of EXECUTORS) {
    const times: Array<{ type: RunEvent['type']; at: number }> = [];
    const result = await executeJob(job, {
      runConfig: { execution: { config: ex.config } },
      onEvent: (e) => times.push({ type: e.type, at: performance.now() }),
    });
    if (result.status !== 'SUCCESS') throw new Error(`${ex.label}: run ended ${result.status}${failureOf(result)}`);
    const at = (type: RunEvent['type']): number => times.find((t) => t.type === type)?.at ?? NaN;
    let launch = 0;
    let inStep = 0;
    let fastest = Infinity;
    let prev = at('RUN_START');
    let startedAt = NaN;
    for (const t of times) {
      if (t.type === 'STEP_START') {
        launch += t.at - prev;
        startedAt = t.at;
      } else if (t.type === 'STEP_SUCCESS') {
        inStep += t.at - startedAt;
        fastest = Math.min(fastest, t.at - prev);
        prev = t.at;
      }
    }
    section.figures.push({
      name: ex.label,
      value: (at('RUN_SUCCESS') - at('RUN_START')) / CHAIN,
      unit: 'ms/step',
      ...(ex.target !== undefined ? { target: { cmp: '<=', limit: ex.target } } : {}),
      note: `launch ${(launch / CHAIN).toFixed(1)} ms + in-step ${(inStep / CHAIN).toFixed(1)} ms on average; fastest step ${fastest.toFixed(1)} ms`,
    });
    if (ex.label.startsWith('forkserver')) {
      const perStep = (at('RUN_SUCCESS') - at('RUN_START')) / CHAIN;
      section.figures.push({ name: `${ex.label} ÷ bare node -e 0`, value: perStep / bareNode, unit: '×', target: { cmp: '<=', limit: 0.6 } });
    }
  }
  return section;
}

// ---------------------------------------------------------------- 2-3. big job: load, select + plan

export const BIG = 100_000;

/** op_i depends on op_{i-1} (chain), by `ins` list, `ins` map (two upstreams) or `deps`; tags and config on some. */
export function bigOp(i: number): string {
  const parts = ['fn: ./ops.mjs#noop'];
  if (i > 0) {
    if (i % 4 === 1) parts.push(`deps: [op_${i - 1}]`);
    else if (i % 4 === 3 && i >= 2) parts.push(`ins: { a: op_${i - 1}, b: op_${i - 2} }`);
    else parts.push(`ins: [op_${i - 1}]`);
  }
  if (i % 3 === 0) parts.push(`tags: { shard: "s${i % 16}", team: bench }`);
  else if (i % 3 === 1) parts.push(`tags: { shard: "s${i % 16}" }`);
  if (i % 10 === 0) parts.push(`config: { n: ${i} }`);
  return parts.join(', ');
}

export async function benchBigJob(tmp: string): Promise<Section[]> {
  const file = await writeJob(join(tmp, 'big'), 'job.yaml', jobYaml('big_job', BIG, bigOp));
  const size = (await stat(file)).size;
  const loads: number[] = [];
  let job;
  for (let i = 0; i < 3; i++) {
    const t = await timeIt(() => loadJob(file));
    loads.push(t.ms);
    job = t.result;
  }
  if (!job || job.ops.size !== BIG) throw new Error(`loaded ${job?.ops.size} ops, expected ${BIG}`);
  const load: Section = {
    title: `2. Loading a ${BIG.toLocaleString('en-US')}-op job file`,
    short: '2. load 100k ops',
    method: `loadJob(${(size / 1e6).toFixed(1)} MB YAML): read, parse, validate, cycle check, hash; 3 runs.`,
    figures: [
      { name: 'best of 3', value: Math.min(...loads), unit: 'ms' },
      { name: 'median of 3', value: median(loads), unit: 'ms', target: { cmp: '<=', limit: 1000 } },
    ],
  };

  const big = job;
  const selectAndPlan: number[] = [];
  const planAll: number[] = [];
  for (let i = 0; i < 5; i++) {
    const sp = await timeIt(() => buildPlan(big, selectOps(big, ['*op_99999']), { ops: {} }));
    if (sp.result.steps.length !== BIG) throw new Error(`*op_99999 planned ${sp.result.steps.length} steps, expected ${BIG}`);
    selectAndPlan.push(sp.ms);
    planAll.push((await timeIt(() => buildPlan(big, undefined, { ops: {} }))).ms);
  }
  const plan: Section = {
    title: `3. Select + plan of the ${BIG.toLocaleString('en-US')}-op DAG`,
    short: '3. select + plan',
    method: "selectOps(job, ['*op_99999']) + buildPlan (every op is upstream of op_99999), and buildPlan with no selection; 5 runs.",
    figures: [
      { name: "'*op_99999': best of 5", value: Math.min(...selectAndPlan), unit: 'ms' },
      { name: "'*op_99999': median of 5", value: median(selectAndPlan), unit: 'ms', target: { cmp: '<=', limit: 200 } },
      { name: 'no selection: best of 5', value: Math.min(...planAll), unit: 'ms' },
      { name: 'no selection: median of 5', value: median(planAll), unit: 'ms', target: { cmp: '<=', limit: 200 } },
    ],
  };
  return [load, plan];
}
