/**
 * A bare BullMQ worker in its own process, for baselines with the same topology as baton (the
 * listener or coordinator in one process, the worker in another):
 *   node dist/bench/bare-worker.js REDIS_URL QUEUE CONCURRENCY [EXPECTED] [inline|sandboxed]
 * Prints "ready" once connected and, if EXPECTED is given (not ''), "done" when that many jobs
 * completed. `sandboxed` runs each job in BullMQ's sandbox (a processor file in child processes).
 */
import { fileURLToPath } from 'node:url';
import { Worker } from 'bullmq';
import { createRedis } from '../src/distributed/connection.js';

const [redisUrl, queue, concurrency, expected, processor] = process.argv.slice(2);
if (!redisUrl || !queue) {
  console.error('usage: bare-worker REDIS_URL QUEUE CONCURRENCY [EXPECTED]');
  process.exit(2);
}
const connection = createRedis(redisUrl, { role: 'bullmq' });
const processFile = fileURLToPath(new URL('./bare-processor.js', import.meta.url));
const worker = new Worker(queue, processor === 'sandboxed' ? processFile : async () => null, { connection, concurrency: Number(concurrency ?? 1) });
const total = expected === undefined || expected === '' ? undefined : Number(expected);
let completed = 0;
worker.on('completed', () => {
  completed += 1;
  if (completed === total) process.stdout.write('done\n');
});
worker.on('failed', (_job, err) => {
  console.error(`job failed: ${err.message}`);
  process.exit(1);
});
await worker.waitUntilReady();
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void worker
    .close()
    .then(() => connection.quit())
    .finally(() => process.exit(0));
});
