#!/usr/bin/env node
import { availableParallelism } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { reportError } from '../common/exit-codes.js';
import { collect, jobPathsOf, positive } from '../common/options.js';
import { assertRedisReachable, redactRedisUrl } from '../src/distributed/connection.js';
import { loadJobLocation } from '../src/distributed/job-registry.js';
import { DISTRIBUTED_DEFAULTS, REDIS_URL_HELP, queueList, queueSpec, redisUrlFrom } from '../src/distributed/options.js';
import { QUEUE_RE } from '../src/job/run-config-schema.js';
import { WORKER_DEFAULTS } from '../src/distributed/step-worker.js';
import { DEFAULT_MAX_DELIVERIES } from '../src/distributed/poison.js';
import { DEFAULT_HEARTBEAT_MS } from '../src/distributed/worker-registry.js';
import { DEFAULT_PLACEMENT_WAIT_MS } from '../src/distributed/job-placement.js';
import { ISOLATIONS, type Isolation } from '../src/executors/step-pool.js';
import { createProcessLogger } from '../src/logger.js';
import { batonVersion } from '../src/version.js';
import { startWorkerProcess } from './start.js';

function nonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`${name} must be a port number (0-65535)`);
    return n;
  };
}

/** `--queue a,b` or `--queue a --queue b`: every name checked. */
function queues(value: string, previous: string[]): string[] {
  const names = queueList(value);
  const bad = names.find((n) => !QUEUE_RE.test(n));
  if (names.length === 0 || bad !== undefined) {
    throw new InvalidArgumentError(`expected queue names of letters, digits, "_", "." and "-" (comma-separated), got ${JSON.stringify(bad ?? value)}`);
  }
  return [...previous, ...names];
}

const program = new Command('worker')
  .description('take steps from a baton queue and run the ops of the jobs given with --jobs')
  .version(batonVersion())
  .showHelpAfterError()
  .option('--redis <url>', REDIS_URL_HELP)
  .option('--queue <names>', `queue to take steps from; several: comma-separated or repeated (default ${DISTRIBUTED_DEFAULTS.queue})`, queues, [])
  .option('--concurrency <n>', `steps run at once (default ${WORKER_DEFAULTS.concurrency})`, positive('--concurrency'))
  .option('--jobs <path>', 'job file or directory of job files this worker may run (repeatable)', collect, [])
  .option('--strict', 'a bad job file is fatal (default: it is logged and listed as a load error; the good ones load)')
  .option('--lock-duration <ms>', `step lock; a dead worker's step is re-queued after about lock + stalled interval (default ${WORKER_DEFAULTS.lockDurationMs})`, positive('--lock-duration'))
  .option('--stalled-interval <ms>', `how often stalled steps are looked for (default ${WORKER_DEFAULTS.stalledIntervalMs})`, positive('--stalled-interval'))
  .option('--grace <ms>', `on SIGTERM/SIGINT, how long running steps may finish before they are re-queued (default ${WORKER_DEFAULTS.graceMs})`, positive('--grace'))
  .option('--id <name>', 'worker name in events and logs (default host:pid)')
  .addOption(
    new Option('--isolation <mode>', 'process: steps run in a pool of step processes, so an op cannot take the worker down; none: inside the worker (trusted, light ops)')
      .choices(ISOLATIONS)
      .default('process'),
  )
  .option('--max-steps-per-process <n>', 'recycle a step process after this many steps (default: never)', positive('--max-steps-per-process'))
  .option('--max-deliveries <n>', `a step whose workers all died this many times fails (a poison step; default ${DEFAULT_MAX_DELIVERIES})`, positive('--max-deliveries'))
  .option('--metrics-port <port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port, logged)', nonNegativeInt('--metrics-port'))
  .option('--metrics-host <host>', 'interface for --metrics-port (default: all)')
  .option('--placement-wait <ms>', `a step no live worker can take (its job unknown here, or at another hash: a rolling deploy) is left on the queue for a worker that has it, and fails only after this long with none (default ${DEFAULT_PLACEMENT_WAIT_MS})`, positive('--placement-wait'))
  .option('--heartbeat <ms>', `how often this worker renews its entry in the worker registry; it drops out 3 heartbeats after its last (default ${DEFAULT_HEARTBEAT_MS})`, positive('--heartbeat'))
  .exitOverride();

interface WorkerFlags {
  redis?: string;
  queue: string[];
  concurrency?: number;
  jobs: string[];
  lockDuration?: number;
  stalledInterval?: number;
  grace?: number;
  id?: string;
  isolation: Isolation;
  maxStepsPerProcess?: number;
  heartbeat?: number;
  maxDeliveries?: number;
  metricsPort?: number;
  metricsHost?: string;
  strict?: boolean;
  placementWait?: number;
}

try {
  program.parse(process.argv);
  const f = program.opts<WorkerFlags>();
  const jobPaths = jobPathsOf(f.jobs);
  if (jobPaths.length === 0) program.error('error: give the jobs this worker may run with --jobs PATH (or $BATON_JOBS)', { exitCode: 2, code: 'baton.usage' });
  const redisUrl = redisUrlFrom(f.redis);
  const logger = createProcessLogger('baton-worker');
  const { jobs, errors: loadErrors } = await loadJobLocation(jobPaths, { strict: f.strict === true });
  for (const e of loadErrors) logger.error({ file: e.file, code: e.code, problems: e.message }, `could not load job file ${e.file} [${e.code}]:\n${e.message}`);
  if (loadErrors.length > 0) logger.warn({ files: loadErrors.map((e) => e.file) }, `${loadErrors.length} job file(s) could not be loaded (listed as load errors in coordinator workers); --strict makes this fatal`);
  await assertRedisReachable(redisUrl); // a wrong URL or password: exit 2 now, not retry forever
  logger.info({ redis: redactRedisUrl(redisUrl), cpus: availableParallelism() }, `loaded ${jobs.size} job(s)`);
  const worker = await startWorkerProcess({
    redisUrl,
    queue: queueSpec(f.queue.length > 0 ? f.queue : [DISTRIBUTED_DEFAULTS.queue]),
    jobs,
    loadErrors: loadErrors.map((e) => ({ file: e.file, message: e.message })),
    logger,
    concurrency: f.concurrency ?? WORKER_DEFAULTS.concurrency,
    isolation: f.isolation,
    ...(f.maxStepsPerProcess ? { maxStepsPerProcess: f.maxStepsPerProcess } : {}),
    ...(f.heartbeat ? { heartbeatMs: f.heartbeat } : {}),
    ...(f.maxDeliveries ? { maxDeliveries: f.maxDeliveries } : {}),
    ...(f.metricsPort !== undefined ? { metricsPort: f.metricsPort } : {}),
    ...(f.metricsHost ? { metricsHost: f.metricsHost } : {}),
    ...(f.lockDuration ? { lockDurationMs: f.lockDuration } : {}),
    ...(f.stalledInterval ? { stalledIntervalMs: f.stalledInterval } : {}),
    ...(f.grace ? { graceMs: f.grace } : {}),
    ...(f.placementWait ? { placementWaitMs: f.placementWait } : {}),
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
    worker
      .close()
      .then(
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
