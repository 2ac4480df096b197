/**
 * A 3-master Redis Cluster of `redis-server` child processes on free ports (each also needs its
 * cluster-bus port, port + 10000), made with `redis-cli --cluster create`. `close()` kills the
 * nodes and removes their files; they are also killed when the test process exits.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CEILING_MS } from './ceilings.js';

const run = promisify(execFile);

export interface TestRedisCluster {
  /** The nodes' ports, in creation order (each a master). */
  ports: number[];
  /** `redis+cluster://127.0.0.1:<port>` of node `i`. */
  clusterUrl(i: number): string;
  /** `redis-cli -p <port> <args>` on node `i`, its reply as text. */
  cli(i: number, ...args: string[]): Promise<string>;
  close(): Promise<void>;
}

/** True when `redis-server` and `redis-cli` are on PATH. */
export async function hasClusterBinaries(): Promise<boolean> {
  try {
    await run('redis-server', ['--version']);
    await run('redis-cli', ['--version']);
    return true;
  } catch {
    return false;
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free port below 55536 whose bus port (+10000) is free too. */
async function freeNodePort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    if (taken.has(port)) continue;
    if ((await portFree(port)) && (await portFree(port + 10000))) {
      taken.add(port);
      return port;
    }
  }
}

export async function startTestRedisCluster(masters = 3): Promise<TestRedisCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'baton-cluster-'));
  const children: ChildProcess[] = [];
  const killAll = (): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const ports: number[] = [];
  const cli = async (i: number, ...args: string[]): Promise<string> =>
    (await run('redis-cli', ['-p', String(ports[i]), ...args], { timeout: CEILING_MS.event })).stdout;
  try {
    const taken = new Set<number>();
    for (let i = 0; i < masters; i++) ports.push(await freeNodePort(taken));
    for (const port of ports) {
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'];
      args.push('--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '5000');
      const child = spawn('redis-server', args, { stdio: 'ignore' });
      children.push(child);
    }
    await waitUntil('every node to answer PING', async () => {
      for (let i = 0; i < masters; i++) if (!(await cli(i, 'PING').catch(() => '')).includes('PONG')) return false;
      return true;
    });
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: CEILING_MS.processStart,
    });
    await waitUntil('cluster_state:ok on every node', async () => {
      for (let i = 0; i < masters; i++) if (!(await cli(i, 'CLUSTER', 'INFO').catch(() => '')).includes('cluster_state:ok')) return false;
      return true;
    });
  } catch (err) {
    killAll();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    ports,
    clusterUrl: (i) => `redis+cluster://127.0.0.1:${ports[i]}`,
    cli,
    async close() {
      const exits = children.map((c) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r))));
      killAll();
      await Promise.all(exits);
      process.removeListener('exit', killAll);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitUntil(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + CEILING_MS.processStart;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Redis Cluster: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Which master (its port) serves `slot`, from CLUSTER SLOTS on node 0. */
export async function masterOfSlot(cluster: TestRedisCluster, slot: number): Promise<number> {
  const nodes = await cluster.cli(0, 'CLUSTER', 'NODES');
  for (const line of nodes.trim().split('\n')) {
    const [, addr = '', flags = '', , , , , , ...ranges] = line.split(' ');
    if (!flags.includes('master')) continue;
    for (const r of ranges) {
      const [lo, hi = lo] = r.split('-').map(Number);
      if (lo !== undefined && hi !== undefined && slot >= lo && slot <= hi) return Number(addr.split(':')[1]?.split('@')[0]);
    }
  }
  throw new Error(`no master serves slot ${slot}`);
}

/** CLUSTER KEYSLOT of `key`. */
export async function keySlot(cluster: TestRedisCluster, key: string): Promise<number> {
  return Number((await cluster.cli(0, 'CLUSTER', 'KEYSLOT', key)).trim());
}
