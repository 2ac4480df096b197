import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import { isoInZone, nextTicks } from '../../src/core/schedule-ticks.js';
import type { JobDefinition, ScheduleDefinition } from '../../src/core/types.js';
import { BatonError } from '../../src/errors.js';
import { collect, jobPathsOf, positive } from '../../common/options.js';
import { REDIS_OPTION, redisUrlOf } from '../redis-option.js';

interface Flags {
  redis?: string;
  jobs: string[];
}

const JOBS_FLAGS = '--jobs <path>';
const JOBS_HELP = 'job file or directory of job files declaring the schedules (repeatable; default $BATON_JOBS)';

async function loadJobs(flags: Flags): Promise<Map<string, JobDefinition>> {
  const paths = jobPathsOf(flags.jobs);
  if (paths.length === 0) throw new BatonError('USAGE', 'give the job files that declare the schedules with --jobs PATH (or $BATON_JOBS)');
  const { loadJobRegistry } = await import('../../src/distributed/job-registry.js');
  return loadJobRegistry(paths);
}

interface Found {
  job: JobDefinition;
  schedule: ScheduleDefinition;
  id: string;
}

/** `job/name`, or `name` alone when only one job has a schedule of that name. */
function findSchedule(jobs: ReadonlyMap<string, JobDefinition>, name: string): Found {
  const all = [...jobs.values()].flatMap((job) => [...(job.schedules?.values() ?? [])].map((schedule) => ({ job, schedule, id: `${job.name}/${schedule.name}` })));
  const slash = name.indexOf('/');
  const matches = slash >= 0 ? all.filter((f) => f.id === name) : all.filter((f) => f.schedule.name === name);
  if (matches.length === 1) return matches[0] as Found;
  if (matches.length > 1) {
    throw new BatonError('USAGE', `schedule "${name}" is declared by several jobs: name one of ${matches.map((f) => f.id).join(', ')}`);
  }
  const known = all.map((f) => f.id).join(', ') || 'none';
  throw new BatonError('SCHEDULE_NOT_FOUND', `no schedule "${name}" in the jobs given with --jobs (schedules: ${known})`);
}

async function withRedis<T>(flag: string | undefined, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const { assertRedisReachable, createRedis } = await import('../../src/distributed/connection.js');
  const url = redisUrlOf(flag);
  await assertRedisReachable(url);
  const redis = createRedis(url, { onError: () => {} });
  try {
    return await fn(redis);
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

async function storeOf(redis: Redis) {
  const { createScheduleStore } = await import('../../src/distributed/schedule-store.js');
  return createScheduleStore(redis);
}

export function registerSchedules(program: Command): void {
  const schedules = program.command('schedules').description('the schedules declared in job files; start and stop them in this Redis');

  schedules
    .command('list')
    .description('each schedule with its cron line, time zone, status in this Redis and next tick')
    .option(...REDIS_OPTION)
    .option(JOBS_FLAGS, JOBS_HELP, collect, [])
    .option('--json', 'print an array of schedule objects')
    .action(async (flags: Flags & { json?: boolean }) => {
      const jobs = await loadJobs(flags);
      const rows = await withRedis(flags.redis, async (redis) => {
        const store = await storeOf(redis);
        const { listDaemons } = await import('../../src/distributed/daemon-registry.js');
        const daemons = await listDaemons(redis);
        // A live serve that runs the schedules of this job.
        const served = (job: string): boolean => daemons.some((d) => d.runs.includes('schedules') && d.jobs.includes(job));
        const out = [];
        for (const job of jobs.values()) {
          for (const s of job.schedules?.values() ?? []) {
            const id = `${job.name}/${s.name}`;
            const status = (await store.statusOf(id)) ?? s.defaultStatus;
            const next = nextTicks(s, new Date(), 1)[0];
            out.push({ id, job: job.name, name: s.name, cron: s.cron, timezone: s.timezone, status, catchup: s.catchup, nextTick: next ? isoInZone(next, s.timezone) : null, daemonLive: served(job.name) });
          }
        }
        return out;
      });
      if (flags.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else if (rows.length === 0) process.stdout.write('no schedules in these jobs\n');
      else {
        for (const r of rows) {
          const flag = r.status === 'running' && !r.daemonLive ? '  (no live serve runs it: start `coordinator serve --jobs ...`)' : '';
          process.stdout.write(`${r.id}  ${r.status}  "${r.cron}" ${r.timezone}  next ${r.nextTick ?? '-'}${flag}\n`);
        }
      }
    });

  for (const status of ['running', 'stopped'] as const) {
    const verb = status === 'running' ? 'start' : 'stop';
    schedules
      .command(verb)
      .description(status === 'running' ? 'start a schedule (from now on: ticks missed while stopped are not caught up)' : 'stop a schedule; serve makes no more runs for it')
      .argument('<name>', 'job/schedule, or the schedule name alone when only one job has it')
      .option(...REDIS_OPTION)
      .option(JOBS_FLAGS, JOBS_HELP, collect, [])
      .action(async (name: string, flags: Flags) => {
        const found = findSchedule(await loadJobs(flags), name);
        await withRedis(flags.redis, async (redis) => (await storeOf(redis)).setStatus(found.id, status, Date.now()));
        process.stdout.write(`${found.id} ${status}\n`);
      });
  }

  schedules
    .command('preview')
    .description('the next tick times of a schedule, in its time zone')
    .argument('<name>', 'job/schedule, or the schedule name alone when only one job has it')
    .option(JOBS_FLAGS, JOBS_HELP, collect, [])
    .option('--count <n>', 'how many tick times', positive('--count', true), 5)
    .action(async (name: string, flags: Flags & { count: number }) => {
      const { schedule } = findSchedule(await loadJobs(flags), name);
      for (const t of nextTicks(schedule, new Date(), flags.count)) process.stdout.write(`${isoInZone(t, schedule.timezone)}\n`);
    });

  program
    .command('ticks')
    .description("a schedule's tick history, newest first: STARTED, SUCCESS (its runs), SKIPPED (why), FAILURE (the error)")
    .argument('<name>', 'job/schedule, or the schedule name alone when only one job has it')
    .option(...REDIS_OPTION)
    .option(JOBS_FLAGS, JOBS_HELP, collect, [])
    .option('--limit <n>', 'at most this many ticks', positive('--limit', true), 50)
    .option('--json', 'print an array of tick objects')
    .action(async (name: string, flags: Flags & { json?: boolean; limit: number }) => {
      const { id } = findSchedule(await loadJobs(flags), name);
      const ticks = await withRedis(flags.redis, async (redis) => (await storeOf(redis)).ticks(id, flags.limit));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(ticks, null, 2)}\n`);
        return;
      }
      if (ticks.length === 0) process.stdout.write(`no ticks yet for ${id}\n`);
      for (const t of ticks) {
        const detail = t.status === 'SKIPPED' ? t.reason : t.status === 'FAILURE' ? t.error : t.runIds.join(', ');
        process.stdout.write(`${t.tickTime}  ${t.status}${detail ? `  ${detail}` : ''}\n`);
      }
    });
}
