/**
 * A Redis of its own for each test file: a testcontainers `redis:7` when a Docker engine is
 * reachable, else a `redis-server` child process on a free port, else `REDIS_URL` (no fault
 * injection then). Servers are killed when the test process exits, however it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CEILING_MS } from './ceilings.js';

export interface TestRedis {
  url: string;
  port: number;
  /** Stops the server gracefully (SIGTERM); `restart()` brings it back. */
  stop(): Promise<void>;
  /** Stops (if running) and starts again on the same port with the same data directory. */
  restart(): Promise<void>;
  /** SIGKILL: no shutdown, no final fsync. */
  kill(): Promise<void>;
  /** Stops the server and removes its data. */
  close(): Promise<void>;
}

export interface TestRedisOptions {
  appendOnly?: boolean;
}

export async function startTestRedis(options: TestRedisOptions = {}): Promise<TestRedis> {
  if (dockerLikelyReachable()) {
    try {
      return await startContainer(options);
    } catch {
      // No usable Docker after all (daemon down, image not pullable...): use the binary.
    }
  }
  if (await hasRedisServerBinary()) return startLocal(options);
  const url = process.env.REDIS_URL;
  if (url) return externalRedis(url);
  throw new Error('no Redis for tests: no Docker engine, no redis-server binary on PATH and REDIS_URL is unset');
}

// ---------------------------------------------------------------- redis-server child process

const live = new Set<ChildProcess>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  const killAll = (): void => {
    for (const child of live) child.kill('SIGKILL');
    live.clear();
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      // Keep the default behaviour (exit by that signal) unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/**
 * A `sh` loop that SIGKILLs the server once this process is gone: covers a test process that
 * is itself SIGKILLed, where no exit hook runs.
 */
function spawnWatchdog(serverPid: number): ChildProcess {
  const script = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${serverPid} 2>/dev/null; do sleep 1; done; kill -9 ${serverPid} 2>/dev/null`;
  const dog = spawn('sh', ['-c', script], { stdio: 'ignore', detached: true });
  dog.unref();
  return dog;
}

async function hasRedisServerBinary(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('redis-server', ['--version'], { stdio: 'ignore' });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function startLocal(options: TestRedisOptions): Promise<TestRedis> {
  installExitHooks();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'baton-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  let watchdog: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const args = ['--save', '', '--appendonly', options.appendOnly ? 'yes' : 'no'];
    args.push('--dir', dir, '--port', String(port), '--bind', '127.0.0.1');
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-4000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    try {
      await waitUntilServing(port, proc, () => output);
    } catch (err) {
      proc.kill('SIGKILL');
      throw err;
    }
    child = proc;
    watchdog = proc.pid === undefined ? undefined : spawnWatchdog(proc.pid);
  };

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = undefined;
    watchdog?.kill('SIGKILL');
    watchdog = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await exited;
  };

  // Another process may grab the free port between probe and bind: try a few ports.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    restart: async () => {
      await halt('SIGTERM');
      await launch();
    },
    close: async () => {
      await halt('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Resolves once the server answers a data command (EXISTS is refused while an AOF is still
 * loading, unlike PING, so the data is there when this resolves).
 */
async function waitUntilServing(port: number, proc: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + CEILING_MS.processStart;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`redis-server on port ${port} exited during startup:\n${output()}`);
    }
    if (await probe(port, 'EXISTS baton:probe\r\n', /^:\d/)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`redis-server on port ${port} did not answer within ${CEILING_MS.processStart / 1000} s:\n${output()}`);
}

function probe(port: number, command: string, expected: RegExp): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write(command));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(expected.test(reply));
    });
  });
}

// ---------------------------------------------------------------- testcontainers

function dockerLikelyReachable(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

async function startContainer(options: TestRedisOptions): Promise<TestRedis> {
  const { GenericContainer, Wait, getContainerRuntimeClient } = await import('testcontainers');
  // A fixed host port, so a restarted container keeps its address.
  const port = await freePort();
  const container = await new GenericContainer('redis:7')
    .withExposedPorts({ container: 6379, host: port })
    .withCommand(['redis-server', '--save', '', '--appendonly', options.appendOnly ? 'yes' : 'no'])
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .start();
  const host = container.getHost();
  const docker = async () => (await getContainerRuntimeClient()).container.getById(container.getId());
  return {
    url: `redis://${host}:${port}`,
    port,
    stop: async () => {
      await (await docker()).stop({ t: 10 });
    },
    kill: async () => {
      await (await docker()).kill({ signal: 'SIGKILL' });
    },
    restart: () => container.restart({ timeout: 10_000 }),
    close: async () => {
      await container.stop();
    },
  };
}

// ---------------------------------------------------------------- REDIS_URL

function externalRedis(url: string): TestRedis {
  const unsupported = async (): Promise<never> => {
    throw new Error(
      'stop/restart/kill are unavailable on the REDIS_URL fallback: fault tests need a local redis-server binary (or Docker)',
    );
  };
  return {
    url,
    port: Number(new URL(url).port || 6379),
    stop: unsupported,
    restart: unsupported,
    kill: unsupported,
    close: async () => {},
  };
}
