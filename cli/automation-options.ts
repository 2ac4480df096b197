import type { Redis } from 'ioredis';
/**
 * What `coordinator schedules`, `sensors` and `ticks` share: the `--jobs`, `--redis` and
 * `--storage` options, finding a schedule or sensor by `job/name` (or `name` alone where only one
 * job has it), and opening the instance's schedule and sensor state.
 */
import type { Command } from 'commander';
import type { AutomationStores, TickRecord } from '../src/automation/tick-store.js';
import type { JobDefinition } from '../src/core/types.js';
import { findEntry, KIND_WORD } from '../src/automation/find.js';
import { BatonError } from '../src/errors.js';
import { collect, jobPathsOf } from '../common/options.js';
import { STORAGE_OPTION, storageDirOf, type InstanceFlags } from './instance-option.js';
import { REDIS_OPTION, redisUrlOf } from './redis-option.js';

export interface AutomationFlags extends InstanceFlags {
  jobs: string[];
}

export { entriesOf, findEntry } from '../src/automation/find.js';

export type Kind = 'schedules' | 'sensors';
const WORD = KIND_WORD;

/** `--jobs` (and with `instance`, `--redis` / `--storage`) on a subcommand. */
export function withAutomationOptions(cmd: Command, kind: Kind | 'both', instance = true): Command {
  const what = kind === 'both' ? 'schedules and sensors' : kind;
  cmd.option('--jobs <path>', `job file or directory of job files declaring the ${what} (repeatable; default $BATON_JOBS)`, collect, []);
  if (instance) cmd.option(...REDIS_OPTION).option(...STORAGE_OPTION);
  return cmd;
}

export const nameArgument = (kind: Kind | 'both'): [string, string] => {
  const what = kind === 'both' ? 'schedule or sensor' : WORD[kind];
  return ['<name>', `job/${what}, or the ${what} name alone when only one job has it`];
};

export async function loadJobs(flags: AutomationFlags, kind: Kind | 'both'): Promise<Map<string, JobDefinition>> {
  const paths = jobPathsOf(flags.jobs);
  const what = kind === 'both' ? 'schedules and sensors' : kind;
  if (paths.length === 0) throw new BatonError('USAGE', `give the job files that declare the ${what} with --jobs PATH (or $BATON_JOBS)`);
  const { loadJobRegistry } = await import('../src/distributed/job-registry.js');
  return loadJobRegistry(paths);
}

/** The instance's schedule and sensor state (`--storage` / `$BATON_HOME`: files; else Redis), closed after `fn`. */
export async function withStores<T>(flags: InstanceFlags, fn: (stores: AutomationStores, redis?: Redis) => Promise<T>): Promise<T> {
  const dir = storageDirOf(flags);
  if (dir !== undefined) {
    const { openLocalAutomationStores } = await import('../src/automation/local-tick-store.js');
    return fn(openLocalAutomationStores(dir));
  }
  const { assertRedisReachable, createRedis } = await import('../src/distributed/connection.js');
  const { redisAutomationStores } = await import('../src/distributed/schedule-store.js');
  const url = redisUrlOf(flags.redis);
  await assertRedisReachable(url);
  const redis = createRedis(url, { onError: () => {} });
  try {
    return await fn(redisAutomationStores(redis), redis);
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

/** `coordinator schedules|sensors start|stop NAME`: on/off in the instance, not the file. */
export function registerStartStop(parent: Command, kind: Kind, describe: (status: 'running' | 'stopped') => string): void {
  for (const status of ['running', 'stopped'] as const) {
    const cmd = parent
      .command(status === 'running' ? 'start' : 'stop')
      .description(describe(status))
      .argument(...nameArgument(kind));
    withAutomationOptions(cmd, kind).action(async (name: string, flags: AutomationFlags) => {
      const found = findEntry((await loadJobs(flags, kind)).values(), name, [kind]);
      // Starting a schedule evaluates from now on; a sensor keeps its cursor.
      await withStores(flags, (stores) => stores[kind].setStatus(found.id, status, kind === 'schedules' ? Date.now() : undefined));
      process.stdout.write(`${found.id} ${status}\n`);
    });
  }
}

/** One line of `ticks`: status, then the runs, the skip reason or the error. */
export function tickLine(t: TickRecord): string {
  const detail = t.status === 'SKIPPED' ? t.reason : t.status === 'FAILURE' ? t.error : t.runIds.map((r, i) => (t.runKeys?.[i] ? `${r} (${t.runKeys[i]})` : r)).join(', ');
  return `${t.tickTime}  ${t.status}${detail ? `  ${detail}` : ''}`;
}

/** Prints `value` as JSON, or each of `lines`. */
export function print(json: boolean | undefined, value: unknown, lines: () => string[]): void {
  if (json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else for (const l of lines()) process.stdout.write(`${l}\n`);
}
