/**
 * The bare BullMQ side of the whole-process figures: what a coordinator does on bare BullMQ, as a
 * process of its own, timed from outside like `coordinator run` (start-up, connect, the jobs, exit):
 *   node dist/bench/bare-driver.js REDIS_URL QUEUE chain|fan N
 * chain: N jobs, each added once a QueueEvents listener saw the previous one complete.
 * fan:   N jobs in one addBulk, done when QueueEvents saw N completions.
 * The worker runs in another process (bare-worker.js), as baton's always does.
 */
import { Queue, QueueEvents } from 'bullmq';
import { createRedis } from '../src/distributed/connection.js';

const [redisUrl, queueName, shape, count] = process.argv.slice(2);
const n = Number(count);
if (!redisUrl || !queueName || (shape !== 'chain' && shape !== 'fan') || !(n >= 1)) {
  console.error('usage: bare-driver REDIS_URL QUEUE chain|fan N');
  process.exit(2);
}
const connections = [createRedis(redisUrl, { role: 'bullmq' }), createRedis(redisUrl, { role: 'bullmq' })];
const queue = new Queue(queueName, { connection: connections[0]! });
const events = new QueueEvents(queueName, { connection: connections[1]! });
await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
let remaining = n;
const finished = new Promise<void>((resolve, reject) => {
  events.on('completed', () => {
    remaining -= 1;
    if (remaining === 0) return resolve();
    if (shape === 'chain') queue.add('hop', {}, { removeOnComplete: { age: 3600 } }).catch(reject);
  });
  events.on('failed', ({ failedReason }) => reject(new Error(failedReason)));
});
if (shape === 'chain') await queue.add('hop', {}, { removeOnComplete: { age: 3600 } });
else await queue.addBulk(Array.from({ length: n }, (_v, i) => ({ name: 'fan', data: { i }, opts: { removeOnComplete: { age: 3600 } } })));
await finished;
await events.close();
await queue.close();
await Promise.all(connections.map((c) => c.quit()));
