#!/usr/bin/env node
// What one distributed step costs Redis (the figures docs/deploy.md sizes a Redis from).
// Starts a private redis-server, one worker and a coordinator (the built dist/), runs a fan-out of
// N no-op steps, and reads INFO commandstats and INFO cpu before and after; then leaves the
// same worker idle for the same wall time and subtracts that baseline (heartbeats, lock and lease
// renewals, stalled checks). A second pass with MONITOR splits the commands clients send from
// the ones Lua scripts run inside Redis (commandstats counts both).
//
//   npm run build && node scripts/redis-per-step.mjs [--steps 2000] [--limit]
//
// --limit also sets a global limit every step matches (large enough that none waits), so each
// step takes and gives back a slot.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const STEPS = Number(args[args.indexOf('--steps') + 1] || 0) || 2000;
const LIMIT = args.includes('--limit');

const dir = mkdtempSync(path.join(tmpdir(), 'baton-per-step-'));
const children = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const url = `redis://127.0.0.1:${port}`;
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
children.push(server);
const redis = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 50, 500) });
redis.on('error', () => {}); // refused until redis-server listens: retried
await redis.ping();

const ops = Array.from({ length: STEPS }, (_, i) => `  n${i}: { fn: ./ops.mjs#noop${LIMIT ? ', tags: { lane: a }' : ''} }`).join('\n');
writeFileSync(path.join(dir, 'ops.mjs'), 'export function noop() { return null; }\n');
writeFileSync(path.join(dir, 'job.yaml'), `name: per_step\nops:\n${ops}\n`);
writeFileSync(path.join(dir, 'run-config.yaml'), `execution:\n  config:\n    distributed: { redis: "${url}", queue: perstep }\n`);
if (LIMIT) await redis.hset('baton:{limits}:defs', 'lane', String(STEPS * 10));

const worker = spawn(process.execPath, [path.join(ROOT, 'dist/worker/main.js'), '--redis', url, '--jobs', dir, '--queue', 'perstep', '--concurrency', '100', '--isolation', 'none'], {
  stdio: ['ignore', 'ignore', 'pipe'],
  env: { ...process.env, LOG_LEVEL: 'warn' },
});
children.push(worker);
// LOG_LEVEL=warn hides "worker ready": wait until it registered itself.
let workerLog = '';
worker.stderr.on('data', (d) => {
  workerLog += d;
});
while ((await redis.zcard('baton:{workers}:index')) === 0) {
  if (worker.exitCode !== null) throw new Error(`worker exited ${worker.exitCode}: ${workerLog}`);
  await sleep(100);
}

async function snapshot() {
  const [stats, cpu] = await Promise.all([redis.info('commandstats'), redis.info('cpu')]);
  const calls = {};
  let usec = 0;
  for (const m of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    if (m[1] === 'info') continue;
    calls[m[1]] = Number(m[2]);
    usec += Number(m[3]);
  }
  const num = (k) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0);
  return { calls, usec, cpu: num('used_cpu_user_main_thread') + num('used_cpu_sys_main_thread') };
}

function diff(a, b) {
  const calls = {};
  for (const k of new Set([...Object.keys(a.calls), ...Object.keys(b.calls)])) calls[k] = (b.calls[k] ?? 0) - (a.calls[k] ?? 0);
  return { calls, usec: b.usec - a.usec, cpu: b.cpu - a.cpu };
}

function runJob() {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), 'run', path.join(dir, 'job.yaml'), '-c', path.join(dir, 'run-config.yaml'), '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`run exited ${code}: ${out.slice(0, 500)}`))));
  });
}

async function measure() {
  const before = await snapshot();
  const t0 = performance.now();
  const summary = await runJob();
  const wall = performance.now() - t0;
  const after = await snapshot();
  if (summary.status !== 'SUCCESS') throw new Error(`run ended ${summary.status}`);
  await sleep(1000);
  const idle0 = await snapshot();
  await sleep(wall);
  const idle1 = await snapshot();
  const run = diff(before, after);
  const idle = diff(idle0, idle1);
  const net = {};
  for (const k of Object.keys(run.calls)) net[k] = run.calls[k] - (idle.calls[k] ?? 0);
  return { wall, run, idle, net };
}

const per = (n) => (n / STEPS).toFixed(2);
const first = await measure();
const total = Object.values(first.net).reduce((s, n) => s + n, 0);
console.log(`${STEPS} no-op steps${LIMIT ? ' under a global limit' : ''}, one worker (concurrency 100, --isolation none), run ${(first.wall / 1000).toFixed(2)} s`);
console.log(`commandstats calls per step, net of an idle baseline of the same wall time (scripts' inner commands included): ${per(total)}`);
for (const [k, n] of Object.entries(first.net).sort((a, b) => b[1] - a[1])) if (Math.abs(n) / STEPS >= 0.05) console.log(`  ${k.padEnd(22)} ${per(n)}`);
const idleCalls = Object.values(first.idle.calls).reduce((s, n) => s + n, 0);
console.log(`idle baseline (one worker, no run): ${(idleCalls / (first.wall / 1000)).toFixed(1)} calls/s, ${((first.idle.cpu / (first.wall / 1000)) * 1000).toFixed(2)} ms of Redis CPU per second`);
console.log(`Redis main-thread CPU per step: ${((first.run.cpu - first.idle.cpu) / STEPS * 1e6).toFixed(0)} µs (commandstats usec: ${((first.run.usec - first.idle.usec) / STEPS).toFixed(0)} µs)`);

// Second pass: MONITOR tells a client's command from one a script runs ("lua" in its line).
const monitor = await redis.monitor();
let client = 0;
let lua = 0;
monitor.on('monitor', (_time, _args, source) => {
  if (String(source).includes('lua')) lua++;
  else client++;
});
const c0 = { client, lua };
const t0 = performance.now();
await runJob();
const wall = performance.now() - t0;
const c1 = { client, lua };
await sleep(1000);
const i0 = { client, lua };
await sleep(wall);
const i1 = { client, lua };
monitor.disconnect();
const sent = c1.client - c0.client - (i1.client - i0.client);
const inner = c1.lua - c0.lua - (i1.lua - i0.lua);
console.log(`MONITOR pass (run ${(wall / 1000).toFixed(2)} s): commands clients send per step ${per(sent)}, commands scripts run inside Redis per step ${per(inner)}`);
redis.disconnect();
process.exit(0);
