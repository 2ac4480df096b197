import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { tempDir, waitFor } from './helpers/distributed.js';
import { DIAMOND, SLEEPY } from './helpers/instance-suite.js';

describe('CLI on a local instance (--storage, $BATON_HOME)', () => {
  it('records a run of a local executor; runs, status and logs show it', async () => {
    const storage = tempDir();
    const ran = await runCli(['run', DIAMOND, '--storage', storage, '--tag', 'team=ops', '--json']);
    expect(ran.code).toBe(0);
    const { runId } = JSON.parse(ran.stdout) as { runId: string };

    const listed = await runCli(['runs', '--json'], { env: { BATON_HOME: storage } });
    expect(listed.code).toBe(0);
    const rows = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ runId, job: 'diamond', status: 'SUCCESS', steps: { SUCCESS: 4 }, tags: { team: 'ops' } });
    expect(Object.keys(rows[0] ?? {})).toEqual(['runId', 'job', 'status', 'startedAt', 'endedAt', 'durationSeconds', 'steps', 'tags']);
    expect(JSON.parse((await runCli(['runs', '--storage', storage, '--tag', 'team=other', '--json'])).stdout)).toEqual([]);

    const status = await runCli(['status', runId, '--storage', storage, '--json']);
    expect(JSON.parse(status.stdout)).toEqual({ runId, job: 'diamond', status: 'SUCCESS', steps: { src: 'SUCCESS', left: 'SUCCESS', right: 'SUCCESS', join: 'SUCCESS' } });

    const logs = await runCli(['logs', runId, '--storage', storage, '--json']);
    const events = logs.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events[0]?.type).toBe('RUN_START');
    expect(events.at(-1)?.type).toBe('RUN_SUCCESS');
    expect(events.every((e) => !('cursor' in e))).toBe(true);

    const human = await runCli(['status', runId], { env: { BATON_HOME: storage } });
    expect(human.stdout).toMatch(new RegExp(`^run ${runId}  job diamond  SUCCESS  started `));
  });

  it('cancels a run another process drives', async () => {
    const storage = tempDir();
    const dir = tempDir();
    const config = path.join(dir, 'run-config.yaml');
    writeFileSync(config, `ops:\n  nap: { config: { dir: ${JSON.stringify(dir)} } }\n  after: { config: { dir: ${JSON.stringify(dir)} } }\n`);
    const running = runCli(['run', SLEEPY, '-c', config, '--storage', storage, '--run-id', 'sleepy-1', '--json'], { timeoutMs: 120_000 });
    await waitFor('the step to start', async () => {
      const r = await runCli(['status', 'sleepy-1', '--storage', storage, '--json']);
      return r.code === 0 && (JSON.parse(r.stdout) as { steps: Record<string, string> }).steps.nap === 'IN_PROGRESS' ? true : undefined;
    }, 60_000);
    const canceled = await runCli(['cancel', 'sleepy-1', '--storage', storage, '--json'], { timeoutMs: 90_000 });
    expect(JSON.parse(canceled.stdout)).toEqual({ runId: 'sleepy-1', status: 'CANCELED', by: 'coordinator' });
    const result = await running;
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ runId: 'sleepy-1', status: 'CANCELED' });
  });

  it('cancels a run whose process died, recording it CANCELED', async () => {
    const storage = tempDir();
    const dir = tempDir();
    const config = path.join(dir, 'run-config.yaml');
    const ops = `ops:\n  nap: { config: { dir: ${JSON.stringify(dir)} } }\n  after: { config: { dir: ${JSON.stringify(dir)} } }\n`;
    writeFileSync(config, `execution: { config: { in_process: {} } }\n${ops}`);
    const killed = await runCli(['run', SLEEPY, '-c', config, '--storage', storage, '--run-id', 'orphan-1'], {
      interruptWhen: /nap started/,
      interruptSignal: 'SIGKILL',
      timeoutMs: 120_000,
    });
    expect(killed.signal).toBe('SIGKILL');
    const canceled = await runCli(['cancel', 'orphan-1', '--storage', storage, '--json']);
    expect(JSON.parse(canceled.stdout)).toEqual({ runId: 'orphan-1', status: 'CANCELED', by: 'this-call' });
    const status = JSON.parse((await runCli(['status', 'orphan-1', '--storage', storage, '--json'])).stdout) as Record<string, unknown>;
    expect(status).toEqual({ runId: 'orphan-1', job: 'sleepy', status: 'CANCELED', steps: { nap: 'CANCELED', after: 'CANCELED' } });
  });

  it('refuses --redis with --storage, and names --storage for an unknown run', async () => {
    const both = await runCli(['runs', '--storage', tempDir(), '--redis', 'redis://127.0.0.1:1']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give --redis or --storage, not both');
    const missing = await runCli(['status', 'nope', '--storage', tempDir()]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('RUN_NOT_FOUND');
    expect(missing.stderr).toContain('--storage');
  });
});
