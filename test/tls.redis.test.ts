/**
 * TLS: a redis-server with a certificate from a private CA; coordinator and worker reach it over
 * rediss:// with BATON_REDIS_CA_FILE, and are refused without it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from './helpers/cli.js';
import { distributedConfig, tempDir, uniqueQueue } from './helpers/distributed.js';
import { startWorker, stopAllWorkers } from './helpers/workers.js';

const dir = tempDir();
const ca = path.join(dir, 'ca.crt');
let server: ChildProcess | undefined;
let url = '';

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

beforeAll(async () => {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=baton-test-ca');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'ext.cnf');
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  server = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir,
    '--tls-cert-file', path.join(dir, 'server.crt'), '--tls-key-file', path.join(dir, 'server.key'),
    '--tls-ca-cert-file', ca, '--tls-auth-clients', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    server?.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
    server?.on('exit', () => reject(new Error(`redis-server (tls) exited:\n${out}`)));
  });
  url = `rediss://127.0.0.1:${port}`;
});

afterAll(async () => {
  await stopAllWorkers();
  server?.kill('SIGKILL');
});

describe('Redis over TLS', () => {
  it('coordinator and worker run a job over rediss:// with a private CA', async () => {
    const queue = uniqueQueue();
    const caEnv = { BATON_REDIS_CA_FILE: ca };
    await startWorker({ redisUrl: url, jobs: [path.join(ROOT, 'test/fixtures/distributed/diamond.yaml')], queue, env: caEnv });
    const r = await runCli(['run', path.join(ROOT, 'test/fixtures/distributed/diamond.yaml'), '-c', distributedConfig(url, queue), '--json'], { env: caEnv });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).status).toBe('SUCCESS');
  });

  it('without the CA the certificate is not trusted: exit 2, nothing runs', async () => {
    const r = await runCli(['limits', 'list', '--redis', url], { env: {} });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot reach Redis at ${url}`);
  });
});
