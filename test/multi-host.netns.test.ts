/**
 * baton across several hosts: each host a Linux network namespace on one private bridge
 * (test/helpers/netns.ts). Redis on one host, a coordinator on another, `serve` on a third,
 * workers on three more — real processes, real TCP between the hosts' own addresses.
 *
 * - a run's steps spread over the three worker hosts;
 * - a worker host partitioned (link down) mid-step: its steps run again elsewhere within lock +
 *   stalled interval, its slots come back, and when the link heals its late completion is refused
 *   by the attempt's fencing token (one STEP_SUCCESS per step; outputs are the accepted attempt's);
 * - the coordinator's host cut off from Redis past its run lease: `serve` on another host adopts
 *   the run and finishes it; the old coordinator exits RUN_LEASE_LOST while still cut off, and
 *   nothing it sent lands.
 *
 * Prints the recovery times. Skipped (with the reason) where namespaces cannot be made.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '../src/core/types.js';
import { CLI, ROOT } from './helpers/cli.js';
import { distributedConfig, tempDir, uniqueQueue, waitFor } from './helpers/distributed.js';
import { createNetwork, netnsSkipReason, startRedisOn, type NsProcess, type NsRedis, type TestHost, type TestNetwork } from './helpers/netns.js';
import { WORKER_BIN } from './helpers/workers.js';

const skip = netnsSkipReason();
if (skip) console.warn(`skipping the multi-host tests: ${skip}`);

const FIXTURES = path.join(ROOT, 'test/fixtures/netns');
const SPREAD = path.join(FIXTURES, 'spread.yaml');
const CHAIN = path.join(FIXTURES, 'chain.yaml');
// Short timings, so recovery takes seconds; the documented bounds are stated in these terms.
const LOCK_MS = 3000;
const STALLED_MS = 1500;
const TIMING = { BATON_SLOT_LEASE_MS: '5000', BATON_SLOT_SWEEP_MS: '500' };
// Only where a lease must lapse: short enough to adopt within seconds, long enough that a
// coordinator starved on a busy machine keeps its lease (it renews every third of it).
const RUN_LEASE = { BATON_RUN_LEASE_MS: '5000' };
const SIX = ['s1', 's2', 's3', 's4', 's5', 's6'];

let net: TestNetwork;
let redis: NsRedis;
const started: NsProcess[] = [];

interface Entry {
  id: string;
  event: RunEvent;
}

async function events(runId: string): Promise<Entry[]> {
  const raw = (await redis.call('XRANGE', `baton:{run:${runId}}:events`, '-', '+')) as Array<[string, string[]]>;
  return raw.map(([id, fields]) => ({ id, event: JSON.parse(fields[fields.indexOf('e') + 1] as string) as RunEvent }));
}

async function hash(key: string): Promise<Record<string, string>> {
  const flat = (await redis.call('HGETALL', key)) as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
  return out;
}

/** The id of the run tagged netns=<tag>, once it is recorded. */
async function runTagged(tag: string): Promise<string> {
  return waitFor(`the run tagged ${tag}`, async () => ((await redis.call('ZRANGE', `baton:{runs}:tag:netns=${tag}`, 0, -1)) as string[])[0]);
}

function startWorker(host: TestHost, queue: string, dir: string, stepMs: number): Promise<NsProcess> {
  const argv = [process.execPath, WORKER_BIN, '--redis', redis.url, '--id', `h${host.name}`, '--jobs', FIXTURES, '--queue', queue];
  argv.push('--concurrency', '2', '--lock-duration', String(LOCK_MS), '--stalled-interval', String(STALLED_MS));
  const p = host.spawn(argv, { env: { ...TIMING, NETNS_HOST: host.name, NETNS_DIR: dir, STEP_MS: String(stepMs) } });
  started.push(p);
  return p.waitForLine(/"worker ready"/, `worker ready on ${host.name}`).then(() => p);
}

function coordinator(host: TestHost, args: string[], env: Record<string, string> = {}): NsProcess {
  const p = host.spawn([process.execPath, CLI, ...args], { env: { ...TIMING, ...env } });
  started.push(p);
  return p;
}

/** Lines `start|end <host> <op> <ms>` the ops wrote. */
function marks(dir: string): Array<{ what: string; host: string; op: string; at: number }> {
  let text = '';
  try {
    text = readFileSync(path.join(dir, 'marks.log'), 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter(Boolean).map((l) => {
    const [what = '', host = '', op = '', at = '0'] = l.split(' ');
    return { what, host, op, at: Number(at) };
  });
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

describe.skipIf(skip !== undefined)('several hosts (network namespaces)', () => {
  beforeAll(async () => {
    net = createNetwork(['redis', 'coord', 'serve', 'w1', 'w2', 'w3']);
    redis = await startRedisOn(net.host('redis'));
  });
  afterEach(async () => {
    for (const p of started.splice(0)) p.kill('SIGKILL');
    for (const h of ['coord', 'w1', 'w2', 'w3']) net?.heal(net.host(h));
  });
  afterAll(async () => {
    await net?.destroy();
  });

  const workerHosts = (): TestHost[] => ['w1', 'w2', 'w3'].map((h) => net.host(h));

  it('a job across three worker hosts succeeds, its steps spread over all three', async () => {
    const queue = uniqueQueue();
    const dir = tempDir();
    await Promise.all(workerHosts().map((h) => startWorker(h, queue, dir, 200)));
    const config = distributedConfig(redis.url, queue);
    const run = coordinator(net.host('coord'), ['run', SPREAD, '-c', config, '--json', '--tag', 'netns=spread']);
    const { code } = await run.exited;
    expect(code, run.stderr()).toBe(0);
    const summary = JSON.parse(run.stdout()) as { runId: string; status: string };
    expect(summary.status).toBe('SUCCESS');
    const ends = (await events(summary.runId)).map((e) => e.event).filter((e) => e.type === 'STEP_ATTEMPT_END' && SIX.includes(e.stepKey ?? ''));
    expect(new Set(ends.map((e) => e.worker))).toEqual(new Set(['hw1', 'hw2', 'hw3']));
    const outputs = await hash(`baton:{run:${summary.runId}}:outputs`);
    const total = JSON.parse(outputs.total as string) as { inputs: Record<string, { host: string }> };
    expect(new Set(Object.values(total.inputs).map((i) => i.host))).toEqual(new Set(['w1', 'w2', 'w3']));
  });

  it('a worker host partitioned mid-step: its steps run again elsewhere, its slots come back, its late completion is refused', async () => {
    const queue = uniqueQueue();
    const dir = tempDir();
    const [w1, w2, w3] = workerHosts() as [TestHost, TestHost, TestHost];
    // w1's steps outlast the partition; the others' are quick, so they have room for w1's steps.
    const [worker1] = await Promise.all([startWorker(w1, queue, dir, 15_000), startWorker(w2, queue, dir, 1000), startWorker(w3, queue, dir, 1000)]);
    const limits = await net.host('redis').run([process.execPath, CLI, 'limits', 'set', 'pool=netns', '6', '--redis', redis.url]);
    expect(limits.code, limits.stderr).toBe(0);
    const config = distributedConfig(redis.url, queue, { ops: { total: { config: { gate: 'release' } } } });
    const run = coordinator(net.host('coord'), ['run', SPREAD, '-c', config, '--json', '--tag', 'netns=partition']);
    const runId = await runTagged('partition');

    // Partition w1 once Redis records its two steps IN_PROGRESS there.
    const victims = await waitFor('two steps in progress on w1', async () => {
      const steps = await hash(`baton:{run:${runId}}:steps`);
      const onW1 = Object.entries(steps).filter(([, s]) => {
        const st = JSON.parse(s) as { status: string; worker?: string };
        return st.status === 'IN_PROGRESS' && st.worker === 'hw1';
      });
      return onW1.length === 2 ? onW1.map(([k]) => k) : undefined;
    });
    net.partition(w1);
    const cutAt = Date.now();

    // Elsewhere: each of w1's steps starts again on w2 or w3 and succeeds there; and no slot is
    // held by w1 any more (its lease expired, or the step's new worker claimed it). Both watched
    // at once, so each is timed when it happens.
    let slotsBack: number | undefined;
    const taken = await waitFor('w1 steps to succeed on other hosts and w1 to hold no slot', async () => {
      if (slotsBack === undefined) {
        const leases = Object.values(await hash('baton:{limits}:lease-data')).map((l) => JSON.parse(l) as { holder?: string });
        if (!leases.some((l) => l.holder === 'worker:hw1')) slotsBack = Date.now() - cutAt;
      }
      const es = (await events(runId)).map((e) => e.event);
      const at = (type: string, step: string) => es.find((e) => e.type === type && e.stepKey === step && (type !== 'STEP_START' || e.worker !== 'hw1'));
      const rows = victims.map((s) => ({ step: s, start: at('STEP_START', s), success: at('STEP_SUCCESS', s) }));
      return slotsBack !== undefined && rows.every((r) => r.start && r.success) ? rows : undefined;
    });
    for (const t of taken) expect(['hw2', 'hw3']).toContain(t.start?.worker);
    const restarted = Math.max(...taken.map((t) => Date.parse(t.start?.timestamp ?? '') - cutAt));
    const recovered = Math.max(...taken.map((t) => Date.parse(t.success?.timestamp ?? '') - cutAt));

    // Heal: w1's ops finish and report; each report is refused by the fencing token.
    net.heal(w1);
    const healedAt = Date.now();
    await waitFor(
      'w1 to have its late completions refused',
      async () => {
        const late = (await events(runId)).find((e) => e.event.type === 'STEP_ATTEMPT_END' && e.event.worker === 'hw1' && victims.includes(e.event.stepKey ?? ''));
        if (late) throw new Error(`w1's late completion was recorded: ${JSON.stringify(late.event)}`);
        return worker1.lines(/result not recorded: another delivery of this step owns it/).length >= 2 ? true : undefined;
      },
      240_000,
    );
    const refusedAfter = Date.now() - healedAt;
    writeFileSync(path.join(dir, 'release'), '');
    const { code } = await run.exited;
    expect(code, run.stderr()).toBe(0);
    expect((JSON.parse(run.stdout()) as { status: string }).status).toBe('SUCCESS');

    // w1's ops did run to their end: there was a late completion to refuse.
    for (const s of victims) expect(marks(dir).some((m) => m.what === 'end' && m.host === 'w1' && m.op === s)).toBe(true);
    const all = (await events(runId)).map((e) => e.event);
    const outputs = await hash(`baton:{run:${runId}}:outputs`);
    for (const step of [...SIX, 'total']) {
      expect(all.filter((e) => e.type === 'STEP_SUCCESS' && e.stepKey === step), `${step}: STEP_SUCCESS events`).toHaveLength(1);
      // A takeover that found the step's slot expired ends once with SLOT_LOST (not the step's end) and runs again under a fresh one.
      const ends = all.filter((e) => e.type === 'STEP_ATTEMPT_END' && e.stepKey === step && e.ok === true);
      expect(ends, `${step}: successful attempt ends`).toHaveLength(1);
      // The output kept is the accepted attempt's.
      expect(`h${(JSON.parse(outputs[step] as string) as { host: string }).host}`, step).toBe(ends[0]?.worker);
    }
    // Nothing w1 sent for its steps after the partition was recorded: their ends are the other hosts'.
    for (const s of victims) {
      const ends = all.filter((e) => e.type === 'STEP_ATTEMPT_END' && e.stepKey === s);
      expect(ends.map((e) => e.worker), s).not.toContain('hw1');
    }
    const total = JSON.parse(outputs.total as string) as { inputs: Record<string, unknown> };
    for (const s of SIX) expect(total.inputs[s]).toEqual(JSON.parse(outputs[s] as string));
    // Every slot returned.
    const list = await net.host('redis').run([process.execPath, CLI, 'limits', 'list', '--json', '--redis', redis.url]);
    const pool = (JSON.parse(list.stdout) as Array<{ spec: string; inUse: number }>).find((l) => l.spec === 'pool=netns');
    expect(pool?.inUse).toBe(0);
    expect(restarted).toBeLessThan(LOCK_MS + STALLED_MS + 30_000); // the documented bound, with room for a loaded machine
    void w2;
    void w3;
    console.log(
      `[multi-host] worker partition: steps started again on another host after ${seconds(restarted)} (bound: lock ${LOCK_MS} ms + stalled interval ${STALLED_MS} ms), ` +
        `STEP_SUCCESS there after ${seconds(recovered)}; w1's slots back after ${seconds(slotsBack ?? NaN)} (slot lease ${TIMING.BATON_SLOT_LEASE_MS} ms + sweep ${TIMING.BATON_SLOT_SWEEP_MS} ms); ` +
        `late completions refused ${seconds(refusedAfter)} after the link healed`,
    );
  });

  it('the coordinator host cut off from Redis past its run lease: serve on another host adopts the run and finishes it; the old coordinator writes nothing', async () => {
    const queue = uniqueQueue();
    const dir = tempDir();
    await Promise.all(workerHosts().map((h) => startWorker(h, queue, dir, 2500)));
    const serve = coordinator(net.host('serve'), ['serve', '--jobs', FIXTURES, '--redis', redis.url, '--interval', '0.5'], RUN_LEASE);
    await serve.waitForLine(/"serve ready"/, 'serve ready');
    const config = distributedConfig(redis.url, queue);
    const coord = net.host('coord');
    const run = coordinator(coord, ['run', CHAIN, '-c', config, '--json', '--tag', 'netns=cutoff'], RUN_LEASE);
    const runId = await runTagged('cutoff');
    await waitFor('c1 to run', async () => ((await redis.call('HGET', `baton:{run:${runId}}:steps`, 'c1')) as string | null)?.includes('IN_PROGRESS') || undefined);

    net.partition(coord);
    const cutAt = Date.now();
    const adopted = await serve.waitForLine((l) => l.includes('adopting orphaned run') && l.includes(runId), 'serve to adopt the run');
    const adoptedAt = (JSON.parse(adopted) as { time: number }).time;
    const ended = await serve.waitForLine((l) => l.includes('adopted run ended') && l.includes(runId), 'the adopted run to end');
    const endedAt = (JSON.parse(ended) as { time: number }).time;
    expect(ended).toContain('SUCCESS');

    // What the run holds now; nothing the old coordinator sent may change it.
    const snapshot = async () => ({
      record: await hash(`baton:{run:${runId}}:record`),
      steps: await hash(`baton:{run:${runId}}:steps`),
      outputs: await hash(`baton:{run:${runId}}:outputs`),
      events: await events(runId),
    });
    const before = await snapshot();
    expect(before.record.status).toBe('SUCCESS');

    // It stops while still cut off: it lost its lease, so it waits on nothing it sent.
    const { code } = await run.exited;
    expect(code, run.stderr()).toBe(1);
    net.heal(coord);
    const last = JSON.parse(run.stdout()) as { runId: string; status: string; error: { code: string } };
    expect(last).toMatchObject({ runId, error: { code: 'RUN_LEASE_LOST' } });
    // Its sockets are closed and drained: whatever it sent has arrived, or never will.
    await waitFor('the old coordinator\'s connections to close', async () => {
      // States that may still hold data on its way out (TIME-WAIT and FIN-WAIT-2 hold none).
      const states = ['established', 'syn-sent', 'fin-wait-1', 'close-wait', 'last-ack', 'closing'].flatMap((s) => ['state', s]);
      const r = await coord.run(['ss', '-Htn', ...states, 'dst', redis.url.slice('redis://'.length)]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.trim() === '' ? true : undefined;
    });
    expect(await snapshot()).toEqual(before);
    const all = before.events.map((e) => e.event);
    for (const step of ['c1', 'c2', 'c3']) expect(all.filter((e) => e.type === 'STEP_SUCCESS' && e.stepKey === step), step).toHaveLength(1);
    expect(all.filter((e) => e.type === 'RUN_SUCCESS')).toHaveLength(1);
    console.log(
      `[multi-host] coordinator cut-off: serve adopted the run ${seconds(adoptedAt - cutAt)} after the cut (run lease ${RUN_LEASE.BATON_RUN_LEASE_MS} ms + serve interval 500 ms), ` +
        `the run ended SUCCESS ${seconds(endedAt - cutAt)} after the cut`,
    );
  });
});
