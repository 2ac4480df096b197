#!/usr/bin/env node
import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { reportError } from '../common/exit-codes.js';
import { collect, jobPathsOf, positive } from '../common/options.js';
import { assertRedisReachable, redactRedisUrl } from '../src/distributed/connection.js';
import { loadJobRegistry } from '../src/distributed/job-registry.js';
import { DISTRIBUTED_DEFAULTS, REDIS_URL_HELP, redisUrlFrom } from '../src/distributed/options.js';
import { startStepWorker, WORKER_DEFAULTS } from '../src/distributed/step-worker.js';
import { createProcessLogger } from '../src/logger.js';

const program = new Command('worker')
  .description('take steps from a baton queue and run the ops of the jobs given with --jobs')
  .option('--redis <url>', REDIS_URL_HELP)
  .option('--queue <name>', 'BullMQ queue to take steps from', DISTRIBUTED_DEFAULTS.queue)
  .option('--concurrency <n>', `steps run at once (default ${WORKER_DEFAULTS.concurrency})`, positive('--concurrency'))
  .option('--jobs <path>', 'job file or directory of job files this worker may run (repeatable)', collect, [])
  .option('--lock-duration <ms>', `step lock; a dead worker's step is re-queued after about lock + stalled interval (default ${WORKER_DEFAULTS.lockDurationMs})`, positive('--lock-duration'))
  .option('--stalled-interval <ms>', `how often stalled steps are looked for (default ${WORKER_DEFAULTS.stalledIntervalMs})`, positive('--stalled-interval'))
  .option('--grace <ms>', `on SIGTERM/SIGINT, how long running steps may finish before they are re-queued (default ${WORKER_DEFAULTS.graceMs})`, positive('--grace'))
  .option('--id <name>', 'worker name in events and logs (default host:pid)')
  .exitOverride();

interface WorkerFlags {
  redis?: string;
  queue: string;
  concurrency?: number;
  jobs: string[];
  lockDuration?: number;
  stalledInterval?: number;
  grace?: number;
  id?: string;
}

try {
  program.parse(process.argv);
  const f = program.opts<WorkerFlags>();
  const jobPaths = jobPathsOf(f.jobs);
  if (jobPaths.length === 0) throw new InvalidArgumentError('give the jobs this worker may run with --jobs PATH (or $BATON_JOBS)');
  const redisUrl = redisUrlFrom(f.redis);
  const logger = createProcessLogger('baton-worker');
  const jobs = await loadJobRegistry(jobPaths);
  await assertRedisReachable(redisUrl); // a wrong URL or password: exit 2 now, not retry forever
  logger.info({ redis: redactRedisUrl(redisUrl), cpus: availableParallelism() }, `loaded ${jobs.size} job(s)`);
  const worker = await startStepWorker({
    redisUrl,
    queue: f.queue,
    jobs,
    logger,
    ...(f.concurrency ? { concurrency: f.concurrency } : {}),
    ...(f.lockDuration ? { lockDurationMs: f.lockDuration } : {}),
    ...(f.stalledInterval ? { stalledIntervalMs: f.stalledInterval } : {}),
    ...(f.grace ? { graceMs: f.grace } : {}),
    ...(f.id ? { id: f.id } : {}),
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      logger.warn('second signal: exiting now; running steps will be re-queued by stalled-step recovery');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal }, 'stopping: no new steps; running steps may finish');
    worker.close().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error({ err: String(e) }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
} catch (e) {
  // Exit at once: connections opened before the failure would keep retrying and hold the process.
  process.exit(reportError(e));
}
