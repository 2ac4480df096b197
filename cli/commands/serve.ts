import type { Command } from 'commander';
import { SERVE_DEFAULTS } from '../../src/distributed/tuning.js';
import { BatonError } from '../../src/errors.js';
import { collect, jobPathsOf, positive } from '../../common/options.js';
import { REDIS_OPTION, redisUrlOf } from '../redis-option.js';

interface ServeFlags {
  redis?: string;
  jobs: string[];
  interval: number;
  maxRuns: number;
  scheduleInterval: number;
  queueInterval: number;
  status?: boolean;
  json?: boolean;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('long-running: adopt orphaned runs (their coordinator died) of the jobs given with --jobs, and finish them; run their schedules and sensors; start their queued runs')
    .option(...REDIS_OPTION)
    .option('--jobs <path>', 'job file or directory of job files whose runs this process may adopt (repeatable; default $BATON_JOBS)', collect, [])
    .option('--interval <seconds>', 'how often runs are looked at', positive('--interval', false), SERVE_DEFAULTS.intervalMs / 1000)
    .option('--max-runs <n>', 'runs driven at once', positive('--max-runs', true), SERVE_DEFAULTS.maxRuns)
    .option('--schedule-interval <seconds>', 'how often the schedules and sensors of --jobs are evaluated (a sensor at most once per its interval_seconds)', positive('--schedule-interval', false), SERVE_DEFAULTS.scheduleIntervalMs / 1000)
    .option('--queue-interval <seconds>', 'how often the run queue is looked at', positive('--queue-interval', false), SERVE_DEFAULTS.queueIntervalMs / 1000)
    .option('--status', 'list the live serve processes (from their heartbeats) and exit')
    .option('--json', '--status: print an array of daemon objects')
    .action(async (flags: ServeFlags) => {
      if (flags.status) return printStatus(flags);
      const jobPaths = jobPathsOf(flags.jobs);
      if (jobPaths.length === 0) throw new BatonError('USAGE', 'give the jobs whose runs may be adopted with --jobs PATH (or $BATON_JOBS)');
      const redisUrl = redisUrlOf(flags.redis);
      const [{ assertRedisReachable, redactRedisUrl }, { loadJobRegistry }, { serveOrphans }, { createProcessLogger }] = await Promise.all([
        import('../../src/distributed/connection.js'),
        import('../../src/distributed/job-registry.js'),
        import('../../src/distributed/serve.js'),
        import('../../src/logger.js'),
      ]);
      const jobs = await loadJobRegistry(jobPaths);
      await assertRedisReachable(redisUrl);
      const logger = createProcessLogger('baton-serve');
      const stopping = new AbortController();
      const server = serveOrphans({
        redisUrl,
        jobs,
        logger,
        intervalMs: flags.interval * 1000,
        maxRuns: flags.maxRuns,
        scheduleIntervalMs: flags.scheduleInterval * 1000,
        queueIntervalMs: flags.queueInterval * 1000,
        signal: stopping.signal,
      });
      // Stopping leaves adopted runs as a crash would: their leases lapse and another serve (or
      // `resume`) adopts them. Waiting for them instead could take as long as the runs do.
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        process.once(signal, () => {
          logger.info({ signal, driving: [...server.driving] }, 'stopping: runs driven here are adopted again once their leases lapse');
          // Finishes the tick or queue pass under way (so a tick is never left half recorded), and
          // leaves the daemon registry at once (a killed serve drops out when its heartbeat expires).
          stopping.abort();
          const giveUp = new Promise((r) => setTimeout(r, 5000).unref());
          const finished = Promise.all([server.loopsStopped(), server.unregister().catch(() => {})]);
          void Promise.race([finished, giveUp]).finally(() => process.exit(0));
        });
      }
      logger.info({ id: server.id, redis: redactRedisUrl(redisUrl), jobs: [...jobs.keys()], intervalS: flags.interval, maxRuns: flags.maxRuns }, 'serve ready');
      await server.done;
    });
}

/** `serve --status`: the live daemons. */
async function printStatus(flags: ServeFlags): Promise<void> {
  const { openInstance } = await import('../../src/instance/open-instance.js');
  const instance = await openInstance({ redis: redisUrlOf(flags.redis) });
  try {
    const daemons = await instance.daemons.list();
    if (flags.json) process.stdout.write(`${JSON.stringify(daemons)}\n`);
    else if (daemons.length === 0) process.stdout.write('no live serve process\n');
    else {
      for (const d of daemons) {
        process.stdout.write(`${d.id}  pid ${d.pid} on ${d.host}  runs ${d.runs.join(', ')}  jobs ${d.jobs.join(', ') || '-'}  since ${d.startedAt}  last seen ${d.lastSeen}\n`);
      }
    }
  } finally {
    await instance.close();
  }
}
