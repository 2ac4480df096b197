/**
 * Test hosts on one machine: each host is a Linux network namespace with one veth link to a
 * bridge that lives in a namespace of its own (the "switch"), addressed in 10.231.77.0/24. No
 * host can reach the machine's own network, and the machine's network sees none of this: traffic
 * flows only between the hosts' own addresses. A host's link can be taken down (a partition)
 * and brought back.
 *
 * Every name starts with `btn<pid in base 36>`, so parallel test runs never collide, and a later
 * run removes what a crashed one left behind (its pid is gone). `destroy()` kills every process
 * started in the hosts and removes every namespace (their veths go with them); it tolerates a
 * network that was only half built, and runs on process exit too.
 *
 * Needs root and iproute2 (`ip`); `netnsSkipReason()` says why a machine cannot.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CEILING_MS, ceiling } from './ceilings.js';
import { ROOT } from './cli.js';

const PREFIX = 'btn';
const TAG = `${PREFIX}${process.pid.toString(36)}`;
const SUBNET = '10.231.77';
const PROBE = path.join(ROOT, 'test/fixtures/netns/probe.mjs');

/** Why this machine cannot build test hosts, or undefined when it can (checked by trying). */
export function netnsSkipReason(): string | undefined {
  if (process.platform !== 'linux') return `multi-host tests need Linux network namespaces (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'multi-host tests need root to create network namespaces (ip netns add)';
  if (spawnSync('ip', ['-V'], { stdio: 'ignore' }).status !== 0) return 'multi-host tests need iproute2 (`ip`): apt-get install iproute2';
  const probe = `${TAG}-probe`;
  const made = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (made.status !== 0) return `multi-host tests cannot create a network namespace here: ${made.stderr.trim()}`;
  try {
    // What a test host needs besides: running a process inside it, a veth pair, a bridge.
    for (const args of [
      ['netns', 'exec', probe, 'true'],
      ['-n', probe, 'link', 'add', 'pa', 'type', 'veth', 'peer', 'name', 'pb'],
      ['-n', probe, 'link', 'add', 'pbr', 'type', 'bridge'],
    ]) {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      if (r.status !== 0) return `multi-host tests cannot run \`ip ${args.join(' ')}\` here: ${r.stderr.trim()}`;
    }
    return undefined;
  } finally {
    spawnSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  }
}

function ip(args: readonly string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Like ip(), but a failure is ignored (cleanup of what may not exist). */
function ipQuiet(args: readonly string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : '';
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills whatever runs in a namespace, then removes it. */
function removeNamespace(ns: string): void {
  for (const pid of ipQuiet(['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  ipQuiet(['netns', 'del', ns]);
}

/** Removes namespaces and links a crashed earlier run (a pid no longer alive) left behind. */
export function removeLeftovers(): string[] {
  const removed: string[] = [];
  const owner = (name: string): number | undefined => {
    const m = new RegExp(`^${PREFIX}([0-9a-z]+)[-hs]`).exec(name);
    return m?.[1] ? parseInt(m[1], 36) : undefined;
  };
  for (const line of ipQuiet(['netns', 'list']).split('\n')) {
    const ns = line.split(' ')[0] ?? '';
    const pid = owner(ns);
    if (pid === undefined || pid === process.pid || pidAlive(pid)) continue;
    removeNamespace(ns);
    removed.push(ns);
  }
  // A veth still in the root namespace: creation failed between `link add` and `set netns`.
  for (const line of ipQuiet(['-o', 'link', 'show']).split('\n')) {
    const name = /^\d+:\s+([^:@]+)/.exec(line)?.[1] ?? '';
    const pid = owner(name);
    if (pid === undefined || pid === process.pid || pidAlive(pid)) continue;
    ipQuiet(['link', 'del', name]);
    removed.push(name);
  }
  return removed;
}

export interface NsProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stderr line (pino JSON logs) matching, or rejects past the ceiling or on exit. */
  waitForLine(match: RegExp | ((line: string) => boolean), what: string, ms?: number): Promise<string>;
  /** stderr lines matching, so far. */
  lines(match: RegExp): string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

export interface TestHost {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
  /** Starts argv inside this host (`ip netns exec`); killed by the network's destroy(). */
  spawn(argv: readonly string[], options?: { env?: Record<string, string>; cwd?: string }): NsProcess;
  /** Runs argv to its end inside this host. */
  run(argv: readonly string[], options?: { env?: Record<string, string> }): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

export interface TestNetwork {
  host(name: string): TestHost;
  /** Takes the host's link down at the switch: nothing reaches it or leaves it. */
  partition(host: TestHost): void;
  heal(host: TestHost): void;
  destroy(): Promise<void>;
}

const networks = new Set<() => void>();
let exitHook = false;

/** Builds one namespace per host name, each linked to one switch. */
export function createNetwork(hostNames: readonly string[]): TestNetwork {
  removeLeftovers();
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const destroy of networks) destroy();
    });
  }
  const sw = `${TAG}-switch`;
  const processes = new Set<NsProcess>();
  const namespaces: string[] = [];
  const hosts = new Map<string, TestHost & { link: string }>();

  const destroySync = (): void => {
    for (const p of processes) p.kill('SIGKILL');
    for (const ns of namespaces.splice(0).reverse()) removeNamespace(ns);
    for (const h of hosts.values()) ipQuiet(['link', 'del', h.link]); // only if still in the root namespace
    networks.delete(destroySync);
  };
  networks.add(destroySync);

  try {
    ip(['netns', 'add', sw]);
    namespaces.push(sw);
    ip(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', sw, 'link', 'set', 'br0', 'up']);
    hostNames.forEach((name, i) => {
      const ns = `${TAG}-${name}`;
      const hostEnd = `${TAG}h${i}`;
      const switchEnd = `${TAG}s${i}`;
      const addr = `${SUBNET}.${10 + i}`;
      ip(['netns', 'add', ns]);
      namespaces.push(ns);
      ip(['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', switchEnd]);
      ip(['link', 'set', hostEnd, 'netns', ns]);
      ip(['link', 'set', switchEnd, 'netns', sw]);
      ip(['-n', sw, 'link', 'set', switchEnd, 'master', 'br0']);
      ip(['-n', sw, 'link', 'set', switchEnd, 'up']);
      ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', hostEnd]);
      ip(['-n', ns, 'link', 'set', hostEnd, 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      hosts.set(name, { ...makeHost(name, ns, addr, processes), link: switchEnd });
    });
  } catch (e) {
    destroySync();
    throw e;
  }

  return {
    host(name) {
      const h = hosts.get(name);
      if (!h) throw new Error(`no test host "${name}"`);
      return h;
    },
    partition(host) {
      ip(['-n', sw, 'link', 'set', (hosts.get(host.name) as { link: string }).link, 'down']);
    },
    heal(host) {
      ip(['-n', sw, 'link', 'set', (hosts.get(host.name) as { link: string }).link, 'up']);
    },
    async destroy() {
      const all = [...processes];
      for (const p of all) p.kill('SIGKILL');
      await Promise.all(all.map((p) => p.exited));
      destroySync();
    },
  };
}

function makeHost(name: string, ns: string, addr: string, processes: Set<NsProcess>): TestHost {
  const host: TestHost = {
    name,
    ns,
    ip: addr,
    spawn(argv, options = {}) {
      const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
        cwd: options.cwd ?? ROOT,
        env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', ...options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const p = wrap(child);
      processes.add(p);
      void p.exited.then(() => processes.delete(p));
      return p;
    },
    async run(argv, options = {}) {
      const p = host.spawn(argv, options);
      const timer = setTimeout(() => p.kill('SIGKILL'), CEILING_MS.cli);
      const { code } = await p.exited;
      clearTimeout(timer);
      return { code, stdout: p.stdout(), stderr: p.stderr() };
    },
  };
  return host;
}

function wrap(child: ChildProcess): NsProcess {
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (c: string) => (out += c));
  child.stderr?.on('data', (c: string) => {
    err += c;
    for (const w of waiters) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
  const complete = (): string[] => err.split('\n').slice(0, -1);
  return {
    child,
    pid: child.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    exited,
    lines: (match) => complete().filter((l) => match.test(l)),
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    waitForLine(match, what, ms) {
      const test = typeof match === 'function' ? match : (l: string) => match.test(l);
      return new Promise((resolve, reject) => {
        let done = false;
        const finish = (f: () => void): void => {
          if (done) return;
          done = true;
          waiters.delete(check);
          clearTimeout(timer);
          f();
        };
        const check = (): void => {
          const hit = complete().find(test);
          if (hit !== undefined) finish(() => resolve(hit));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`timed out waiting for ${what}:\n${err.slice(-3000)}`))), ceiling('event', ms));
        waiters.add(check);
        check();
        void exited.then(({ code, signal }) => {
          check();
          finish(() => reject(new Error(`process exited (${code ?? signal}) before ${what}:\n${err.slice(-3000)}`)));
        });
      });
    },
  };
}

export interface NsRedis {
  readonly url: string;
  /** A Redis command sent from inside the Redis host (a long-lived client there). */
  call(...args: Array<string | number>): Promise<unknown>;
}

/** A redis-server on `host`, bound to its address only, and a client inside that host for the test's checks. */
export async function startRedisOn(host: TestHost): Promise<NsRedis> {
  const dir = mkdtempSync(path.join(tmpdir(), 'baton-netns-redis-'));
  const server = host.spawn(['redis-server', '--bind', host.ip, '--port', '6379', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', dir]);
  void server.exited.then(() => rmSync(dir, { recursive: true, force: true }));
  const url = `redis://${host.ip}:6379`;
  // redis-server logs to stdout: wait for its ready line there.
  const deadline = Date.now() + CEILING_MS.processStart;
  while (!/Ready to accept connections/.test(server.stdout())) {
    if (server.child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server on ${host.name} did not start:\n${server.stdout()}${server.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const client = host.spawn([process.execPath, PROBE, url]);
  await client.waitForLine(/probe ready/, `the Redis probe on ${host.name}`, CEILING_MS.processStart);
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let next = 0;
  let buffer = '';
  client.child.stdout?.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const reply = JSON.parse(buffer.slice(0, nl)) as { id: number; value?: unknown; error?: string };
      buffer = buffer.slice(nl + 1);
      const p = pending.get(reply.id);
      pending.delete(reply.id);
      if (reply.error !== undefined) p?.reject(new Error(reply.error));
      else p?.resolve(reply.value);
    }
  });
  return {
    url,
    call(...args) {
      const id = ++next;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        client.child.stdin?.write(`${JSON.stringify({ id, args })}\n`);
      });
    },
  };
}
