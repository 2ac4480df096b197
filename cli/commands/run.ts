import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { BatonError } from '../../src/errors.js';
import { executeJob } from '../../src/run/execute-job.js';
import { driveWithProgress } from '../drive.js';
import { loadInputs, type CommonInput } from '../load-inputs.js';
import { collect, parseTags } from '../../common/options.js';
import { maxRuntimeOf } from '../../src/run/max-runtime.js';

interface RunFlags extends CommonInput {
  tag: string[];
  storage?: string;
  json?: boolean;
  verbose?: boolean;
  detach?: boolean;
  runId?: string;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a job (exit 0 success, 1 run failed, 2 invalid input, 130 interrupted)')
    .argument('<job>', 'job file (job.yaml)')
    .option('-s, --select <query>', 'op selection, Dagster syntax (repeatable; unioned)', collect, [])
    .option('--op-selection <query>', 'alias of --select', collect, [])
    .option('-c, --config <file>', 'run config YAML (repeatable; deep-merged in order over the job\'s own run_config)', collect, [])
    .option('--tag <key=value>', 'run tag (repeatable)', collect, [])
    .option('--json', 'print one JSON summary object on stdout; logs go to stderr')
    .option('--verbose', "show a failed step's whole stack (default: its last lines)")
    .option('--storage <dir>', 'local executors: record the run under this directory (default $BATON_HOME), for runs, status, logs and cancel')
    .option('--detach', 'distributed executor: start the run in the background and print its id at once')
    .option('--run-id <id>', 'use this run id (letters, digits, "-" and "_")', (v: string) => {
      if (!/^[A-Za-z0-9_-]{1,100}$/.test(v)) throw new InvalidArgumentError('expected letters, digits, "-" and "_"');
      return v;
    })
    .action(async (jobPath: string, flags: RunFlags) => {
      process.exitCode = flags.detach ? await detach(jobPath, flags) : await runCommand(jobPath, flags);
    });
}

async function runCommand(jobPath: string, flags: RunFlags): Promise<number> {
  const tags = parseTags(flags.tag);
  const { job, plan, runConfig } = await loadInputs(jobPath, flags);
  maxRuntimeOf(runConfig, { ...job.tags, ...tags }); // a bad baton/max_runtime tag: exit 2 before anything runs
  const storageDir = flags.storage ?? process.env.BATON_HOME;
  if (storageDir && runConfig.executor.kind !== 'distributed') {
    // Recorded like a run launched through a local instance, so other commands see it.
    const { runRecordedLocally } = await import('../../src/instance/local/record-run.js');
    const select = [...(flags.select ?? []), ...(flags.opSelection ?? [])];
    const meta = { runId: flags.runId ?? randomUUID(), tags: { ...job.tags, ...tags }, selection: select.length > 0 ? select : null };
    return driveWithProgress(plan.steps.length, flags.json, (signal, onEvent) =>
      runRecordedLocally(resolve(storageDir), job, { plan, runConfig }, { ...meta, signal, onEvent }),
      { verbose: flags.verbose === true },
    );
  }
  return driveWithProgress(plan.steps.length, flags.json, (signal, onEvent) =>
    executeJob(job, {
      prepared: { plan, runConfig },
      tags: { ...job.tags, ...tags },
      ...(flags.runId ? { runId: flags.runId } : {}),
      signal,
      onEvent,
    }),
    { verbose: flags.verbose === true },
  );
}

/**
 * Checks the input here (so a bad file still exits 2), then hands the run to a background
 * coordinator process and returns once the run is recorded in Redis.
 */
async function detach(jobPath: string, flags: RunFlags): Promise<number> {
  parseTags(flags.tag);
  const { runConfig } = await loadInputs(jobPath, flags);
  const ex = runConfig.executor;
  if (ex.kind !== 'distributed') {
    throw new BatonError('USAGE', '--detach needs the distributed executor (its progress is then followed from Redis with status and logs)');
  }
  const runId = flags.runId ?? randomUUID();
  const { createRedis } = await import('../../src/distributed/connection.js');
  const { createRunStore } = await import('../../src/distributed/run-store.js');
  const redis = createRedis(ex.redisUrl);
  redis.on('error', () => {});
  const store = createRunStore(redis);
  const recorded = async (): Promise<boolean> => (await store.getRun(runId)) !== null;
  let pid: number | undefined;
  try {
    if (await recorded()) throw new BatonError('RUN_BUSY', `run id "${runId}" is already taken by another run`);
    pid = await startDetached(runId, recorded);
  } finally {
    await store.close();
    await redis.quit().catch(() => {});
  }
  process.stdout.write(flags.json ? `${JSON.stringify({ runId, pid })}\n` : `${runId}\n`);
  return 0;
}

/** Hands the run to a background coordinator process; returns once the run is recorded in Redis. */
async function startDetached(runId: string, recorded: () => Promise<boolean>): Promise<number | undefined> {
  const argv = process.argv.slice(2).filter((a) => a !== '--detach' && a !== '--json');
  const withId = argv.includes('--run-id') ? argv : [...argv, '--run-id', runId];
  const child = spawn(process.execPath, [process.argv[1] as string, ...withId], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  const deadline = Date.now() + 30_000;
  while (!(await recorded())) {
    if (child.exitCode !== null) throw new BatonError('USAGE', `the background coordinator exited (${child.exitCode}) before recording run ${runId}`);
    if (Date.now() > deadline) throw new BatonError('REDIS_UNAVAILABLE', `run ${runId} was not recorded within 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return child.pid;
}
