/**
 * Soak: 50 runs of a 20-step job whose ops fail at random (a deterministic draw per run, op and
 * attempt; some ops retry), started by several coordinator processes at once on 3 workers, while
 * every ~2 s a worker is killed (SIGKILL and SIGTERM in turn) and replaced. Steps share a global
 * limit and a limit of their run, so slots are taken, lost with their worker and returned.
 *
 * Afterwards every run ended SUCCESS or FAILURE with the matching exit code, exactly as the draws
 * predict step by step; Redis holds no stray state (driver leases, slots, waiters, queued steps);
 * every run's event stream starts with RUN_START, ends with its one final RUN_* event and has
 * exactly one terminal event per planned step, matching `status --json`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { RunEvent } from '../src/core/types.js';
import { runKeys } from '../src/distributed/keys.js';
import { limitKeys } from '../src/distributed/semaphore/limit-keys.js';
import { ROOT, runCli, type CliResult } from './helpers/cli.js';
import { distributedConfig, tempDir, uniqueQueue, waitFor } from './helpers/distributed.js';
import { startTestRedis, type TestRedis } from './helpers/redis.js';
import { startWorker, stopAllWorkers, type TestWorker, type WorkerOptions } from './helpers/workers.js';

const JOB = path.join(ROOT, 'test/fixtures/soak/soak.yaml');
const RUNS = 50;
const COORDINATORS_AT_ONCE = 6;
const WORKERS = 3;
const CHURN_EVERY_MS = 2000;
// Short slot leases return a killed worker's slots quickly; the run lease stays at its default, so a
// coordinator starved on a busy machine does not lose its run (adoption is tested elsewhere).
const SHORT_LEASES = { BATON_SLOT_LEASE_MS: '1500', BATON_SLOT_SWEEP_MS: '300' };
const FINAL_RUN_EVENTS = new Set(['RUN_SUCCESS', 'RUN_FAILURE', 'RUN_CANCELED']);
const TERMINAL_STEP_EVENTS: Record<string, string> = { STEP_SUCCESS: 'SUCCESS', STEP_FAILURE: 'FAILURE', STEP_SKIPPED: 'SKIPPED' };

let redis: TestRedis;
let probe: Redis;
let dir = '';
beforeAll(async () => {
  redis = await startTestRedis();
  probe = new Redis(redis.url);
  dir = tempDir();
});
afterEach(stopAllWorkers);
afterAll(async () => {
  probe?.disconnect();
  await redis?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface OpDef {
  ins?: string[] | Record<string, string>;
  deps?: string[];
  config: { fail_rate: number };
  retry?: { max_retries: number };
}

/** The same draw as test/fixtures/soak/ops.mjs. */
function draw(runId: string, op: string, attempt: number): number {
  return createHash('sha256').update(`${runId}/${op}/${attempt}`).digest().readUInt32BE(0) / 2 ** 32;
}

/** Each step's status as the draws decide it: upstream not all SUCCESS -> SKIPPED; else the first attempt that draws above the rate. */
function predict(runId: string, ops: Record<string, OpDef>): Record<string, string> {
  const status: Record<string, string> = {};
  const upstream = (d: OpDef): string[] => [...(Array.isArray(d.ins) ? d.ins : Object.values(d.ins ?? {})), ...(d.deps ?? [])];
  const pending = new Set(Object.keys(ops));
  while (pending.size > 0) {
    for (const op of pending) {
      const def = ops[op] as OpDef;
      const ups = upstream(def);
      if (!ups.every((u) => status[u] !== undefined)) continue;
      pending.delete(op);
      if (!ups.every((u) => status[u] === 'SUCCESS')) {
        status[op] = 'SKIPPED';
        continue;
      }
      const attempts = 1 + (def.retry?.max_retries ?? 0);
      status[op] = 'FAILURE';
      for (let a = 1; a <= attempts; a++) {
        if (draw(runId, op, a) >= def.config.fail_rate) {
          status[op] = 'SUCCESS';
          break;
        }
      }
    }
  }
  return status;
}

/** Runs `tasks` with at most `n` at once, results in order. */
async function pool<T>(n: number, tasks: Array<() => Promise<T>>): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await (tasks[i] as () => Promise<T>)();
      }
    }),
  );
  return results;
}

interface Summary {
  runId: string;
  status: string;
  steps: Record<string, string>;
}

describe('soak', () => {
  it(`${RUNS} runs of a 20-step job with injected failures while workers are killed and replaced`, { timeout: 600_000 }, async () => {
    const started = Date.now();
    const queue = uniqueQueue();
    const soakLog = path.join(dir, 'attempts.jsonl');
    const env = { REDIS_URL: redis.url, ...SHORT_LEASES };
    const workerOptions: WorkerOptions = {
      redisUrl: redis.url,
      jobs: [JOB],
      queue,
      concurrency: 6,
      lockDurationMs: 1000,
      stalledIntervalMs: 1000,
      graceMs: 2000,
      env: { ...SHORT_LEASES, SOAK_LOG: soakLog },
    };
    const ops = (parse(readFileSync(JOB, 'utf8')) as { ops: Record<string, OpDef> }).ops;
    expect(Object.keys(ops)).toHaveLength(20);

    const limitSet = await runCli(['limits', 'set', 'pool=io', '3'], { env });
    expect(limitSet.code, limitSet.stderr).toBe(0);
    const cfg = distributedConfig(redis.url, queue, { distributed: { tag_concurrency_limits: [{ key: 'heavy', limit: 2 }] } });

    // Three workers, then churn: every ~2 s the oldest is killed (SIGKILL, SIGTERM in turn) and replaced.
    const workers: TestWorker[] = [];
    for (let i = 0; i < WORKERS; i++) workers.push(await startWorker({ ...workerOptions, id: `soak-w${i}` }));
    const kills = { SIGKILL: 0, SIGTERM: 0 };
    const terminated: TestWorker[] = [];
    let churning = true;
    let replacements = 0;
    const replacing: Array<Promise<void>> = [];
    let churnError: unknown;
    const churn = (async () => {
      let n = 0;
      while (churning) {
        await new Promise((r) => setTimeout(r, CHURN_EVERY_MS));
        // Keep at least two ready workers while a replacement starts.
        if (!churning || workers.length < 2) continue;
        const victim = workers.shift() as TestWorker;
        const signal = n++ % 2 === 0 ? 'SIGKILL' : 'SIGTERM';
        victim.kill(signal);
        kills[signal]++;
        if (signal === 'SIGTERM') terminated.push(victim);
        const replacement = startWorker({ ...workerOptions, id: `soak-w${WORKERS + replacements++}` });
        replacing.push(replacement.then((w) => void workers.push(w), (e: unknown) => void (churnError ??= e)));
      }
      await Promise.all(replacing);
    })();

    // 50 runs through coordinator processes, several at once.
    const runIds = Array.from({ length: RUNS }, (_, i) => `soak-${i}`);
    let results: CliResult[];
    try {
      results = await pool(
        COORDINATORS_AT_ONCE,
        runIds.map((runId) => () => runCli(['run', JOB, '-c', cfg, '--json', '--run-id', runId], { env, timeoutMs: 90_000 })),
      );
    } finally {
      churning = false;
      await churn;
    }
    if (churnError) throw churnError;
    const runsDoneAt = Date.now();

    // Every run ended SUCCESS or FAILURE, exit code to match, each step exactly as the draws predict.
    const summaries = new Map<string, Summary>();
    for (const [i, r] of results.entries()) {
      const runId = runIds[i] as string;
      expect(r.stdout, `${runId}: exit ${r.code}\n${r.stderr}`).not.toBe('');
      const s = JSON.parse(r.stdout) as Summary;
      summaries.set(runId, s);
      expect(['SUCCESS', 'FAILURE'], `${runId}: ${s.status}\n${r.stderr}`).toContain(s.status);
      expect(r.code, `${runId} ${s.status}`).toBe(s.status === 'SUCCESS' ? 0 : 1);
      expect(s.steps, `${runId}: steps vs. the draws`).toEqual(predict(runId, ops));
      expect(s.status).toBe(Object.values(s.steps).every((x) => x === 'SUCCESS') ? 'SUCCESS' : 'FAILURE');
    }

    // status --json, for every run.
    const statuses = await pool(
      8,
      runIds.map((runId) => async () => {
        const r = await runCli(['status', runId, '--json'], { env });
        expect(r.code, r.stderr).toBe(0);
        return JSON.parse(r.stdout) as Summary;
      }),
    );

    // Each run's event stream: RUN_START first, its one final event last, one terminal event per
    // step; and status --json agrees with the run's own summary.
    let duplicateStarts = 0;
    for (const st of statuses) {
      const s = summaries.get(st.runId) as Summary;
      const events = (await probe.xrange(runKeys(st.runId).events, '-', '+')).map(([, fields]) => JSON.parse(fields[1] as string) as RunEvent);
      const shown = (e: RunEvent): string => `${e.type}${e.stepKey ? `:${e.stepKey}#${e.attempt}` : ''}${e.worker ? `@${e.worker}` : ''}`;
      const where = `${st.runId}: ${events.map(shown).join(' ')}`;
      const starts = events.filter((e) => e.type === 'STEP_START').map((e) => `${e.stepKey}#${e.attempt}`);
      duplicateStarts += starts.length - new Set(starts).size;
      expect(st, where).toMatchObject({ runId: s.runId, status: s.status, steps: s.steps });
      expect(events[0]?.type, where).toBe('RUN_START');
      const finals = events.filter((e) => FINAL_RUN_EVENTS.has(e.type));
      expect(finals.map((e) => e.type), where).toEqual([`RUN_${st.status}`]);
      expect(events.at(-1)?.type, where).toBe(`RUN_${st.status}`);
      const terminal = new Map<string, string[]>();
      for (const e of events) {
        const to = TERMINAL_STEP_EVENTS[e.type];
        if (to && e.stepKey) terminal.set(e.stepKey, [...(terminal.get(e.stepKey) ?? []), to]);
      }
      for (const [step, want] of Object.entries(st.steps)) expect(terminal.get(step), `${where}\n${step}`).toEqual([want]);
      expect([...terminal.keys()].sort()).toEqual(Object.keys(st.steps).sort());
    }

    // No stray state: no driver lease, no slot, no waiter, nothing queued or running in BullMQ.
    const k = limitKeys();
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const bull = new Queue(queue, { connection });
    const stray = async (): Promise<Record<string, unknown>> => ({
      drivers: await probe.keys('baton:{run:*}:driver'),
      leases: await probe.zcard(k.leases),
      leaseData: await probe.hlen(k.leaseData),
      waiters: await probe.zcard(k.waiters),
      waiterData: await probe.hlen(k.waiterData),
      used: await probe.hgetall(k.used),
      queue: await bull.getJobCounts('active', 'waiting', 'delayed', 'prioritized', 'waiting-children'),
    });
    const clean = { drivers: [], leases: 0, leaseData: 0, waiters: 0, waiterData: 0, used: {}, queue: { active: 0, waiting: 0, delayed: 0, prioritized: 0, 'waiting-children': 0 } };
    const firstLook = await stray();
    let lastLook = firstLook;
    try {
      // A slot still leased to a killed worker returns within lease + sweep (1.8 s here).
      await waitFor('no stray state in Redis', async () => {
        lastLook = await stray();
        return JSON.stringify(lastLook) === JSON.stringify(clean) ? true : undefined;
      }, 10_000).catch(() => undefined);
    } finally {
      await bull.close();
      connection.disconnect();
    }
    expect(lastLook, `right after the runs: ${JSON.stringify(firstLook)}`).toEqual(clean);
    const limits = JSON.parse((await runCli(['limits', 'list', '--json'], { env })).stdout) as Array<{ spec: string; inUse: number; waiting: number }>;
    expect(limits).toEqual([expect.objectContaining({ spec: 'pool=io', inUse: 0, waiting: 0 })]);

    // SIGTERMed workers stopped cleanly within their grace period.
    for (const w of terminated) expect(await w.exited, w.id).toBe(0);

    // Figures.
    const attempts = existsSync(soakLog)
      ? readFileSync(soakLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { runId: string; op: string; attempt: number; failed: boolean })
      : [];
    const injected = attempts.filter((a) => a.failed).length;
    const distinct = new Set(attempts.map((a) => `${a.runId}/${a.op}/${a.attempt}`)).size;
    const all = [...summaries.values()];
    const count = (status: string): number => all.reduce((n, s) => n + Object.values(s.steps).filter((x) => x === status).length, 0);
    console.log(
      `soak: ${RUNS} runs in ${((runsDoneAt - started) / 1000).toFixed(1)} s (checks ${((Date.now() - runsDoneAt) / 1000).toFixed(1)} s): ` +
        `${all.filter((s) => s.status === 'SUCCESS').length} SUCCESS, ${all.filter((s) => s.status === 'FAILURE').length} FAILURE; ` +
        `steps ${count('SUCCESS')} succeeded, ${count('FAILURE')} failed, ${count('SKIPPED')} skipped; ` +
        `${attempts.length} op attempts finished (${attempts.length - distinct} re-runs of an attempt, ${duplicateStarts} duplicate STEP_START events), ${injected} injected failures; ` +
        `workers killed: ${kills.SIGKILL} SIGKILL, ${kills.SIGTERM} SIGTERM; ` +
        `Redis right after the runs: ${JSON.stringify(firstLook) === JSON.stringify(clean) ? 'clean' : JSON.stringify(firstLook)}`,
    );
    expect(kills.SIGKILL + kills.SIGTERM).toBeGreaterThanOrEqual(4);
    expect(injected).toBeGreaterThan(0);
    expect(all.some((s) => s.status === 'SUCCESS') && all.some((s) => s.status === 'FAILURE')).toBe(true);
  });
});
