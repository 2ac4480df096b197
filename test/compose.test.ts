/**
 * There is no Docker engine on our machines, so this test keeps docker-compose.yml and the
 * Dockerfile honest another way: it reads the compose file and starts each service's own command
 * as a local process — redis on a free port, workers and the one-shot coordinator with the
 * service's environment and volume mounts mapped to local paths — and checks the example run
 * succeeds.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/distributed.js';
import { stopAllWorkers } from './helpers/workers.js';

interface Service {
  image?: string;
  build?: string;
  command: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const children: Array<ReturnType<typeof spawn>> = [];

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await stopAllWorkers();
});

/** The image's entry points (symlinked into /usr/local/bin by the Dockerfile) as local commands. */
const BINARIES: Record<string, string[]> = {
  worker: [process.execPath, path.join(ROOT, 'dist/worker/main.js')],
  coordinator: [process.execPath, path.join(ROOT, 'dist/cli/main.js')],
};

function mapVolumes(args: string[], volumes: string[] = []): string[] {
  let mapped = args;
  for (const v of volumes) {
    const [host, container] = v.split(':') as [string, string];
    if (!host.startsWith('.')) continue; // named volume
    mapped = mapped.map((a) => (a.startsWith(container) ? path.join(ROOT, host, a.slice(container.length)) : a));
  }
  return mapped;
}

function mapEnv(env: Record<string, string> = {}, redisPort: number): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.replace('redis://redis:6379', `redis://127.0.0.1:${redisPort}`)]));
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function run(cmd: string[], env: Record<string, string>, until?: RegExp): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd[0] as string, cmd.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (until?.test(out)) resolve({ code: null, out });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe('docker-compose.yml, run as local processes', () => {
  it('has the services the README documents, wired to each other', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['coordinator', 'redis', 'serve', 'worker']);
    const { redis, worker, coordinator, serve } = compose.services as Record<string, Service>;
    expect(serve?.command.slice(0, 2)).toEqual(['coordinator', 'serve']);
    expect(serve?.depends_on?.redis?.condition).toBe('service_healthy');
    expect(redis?.command).toContain('--appendonly');
    expect(redis?.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(worker?.depends_on?.redis?.condition).toBe('service_healthy');
    expect(coordinator?.command.slice(0, 2)).toEqual(['coordinator', 'run']);
    // The image: multi-stage, node:24-slim, production dependencies only, non-root, worker by default.
    expect(dockerfile.match(/^FROM node:24-slim/gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/npm (ci|install) --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^CMD \["worker"\]$/m);
  });

  it('starts redis, two workers, serve and the one-shot coordinator from their compose commands; the example run succeeds', async () => {
    const { redis, worker, coordinator, serve } = compose.services as Record<string, Service>;
    const port = await freePort();
    const redisCmd = [...(redis?.command ?? []), '--port', String(port), '--bind', '127.0.0.1', '--dir', tempDir()];
    const redisUp = run(redisCmd, {}, /Ready to accept connections/);
    expect((await redisUp).code).toBeNull();
    const health = await run(['redis-cli', '-p', String(port), ...(redis?.healthcheck?.test.slice(2) ?? [])], {});
    expect(health.out.trim()).toBe('PONG');

    const workerCmd = mapVolumes(worker?.command ?? [], worker?.volumes);
    const workerEnv = mapEnv(worker?.environment, port);
    const [bin, ...args] = workerCmd as [string, ...string[]];
    // `--scale worker=2`
    const ready = await Promise.all([0, 1].map(() => run([...(BINARIES[bin] ?? []), ...args], workerEnv, /"worker ready"/)));
    for (const w of ready) expect(w.out).toContain('"jobs":["nightly_etl"]');
    const [sbin, ...sargs] = mapVolumes(serve?.command ?? [], serve?.volumes) as [string, ...string[]];
    const served = await run([...(BINARIES[sbin] ?? []), ...sargs], mapEnv(serve?.environment, port), /"serve ready"|error/);
    expect(served.out).toContain('"serve ready"');
    expect(served.out).toContain('"jobs":["nightly_etl"]');

    const [cbin, ...cargs] = mapVolumes(coordinator?.command ?? [], coordinator?.volumes) as [string, ...string[]];
    const result = await run([...(BINARIES[cbin] ?? []), ...cargs], mapEnv(coordinator?.environment, port));
    expect(result.out).toMatch(/run [0-9a-f-]+ SUCCESS/);
    expect(result.code).toBe(0);
  });

  it("the image's default command (worker, jobs from $BATON_JOBS) finds the mounted jobs", async () => {
    const jobsDir = /ENV BATON_JOBS=(\S+)/.exec(dockerfile)?.[1];
    expect(jobsDir).toBe('/jobs');
    const port = await freePort();
    await run(['redis-server', '--port', String(port), '--save', '', '--bind', '127.0.0.1'], {}, /Ready to accept connections/);
    const w = await run(BINARIES.worker ?? [], { BATON_JOBS: path.join(ROOT, 'examples'), REDIS_URL: `redis://127.0.0.1:${port}` }, /"worker ready"|error/);
    expect(w.out).toContain('"worker ready"');
  });
});
