/** 6. The runs API: a filtered page of getRuns with 10,000 runs recorded in Redis. */
import { createRedis } from '../src/distributed/connection.js';
import { createRunStore } from '../src/distributed/run-store.js';
import type { ExecutionPlan, RunStatus } from '../src/core/types.js';
import { openInstance } from '../src/instance/open-instance.js';
import type { RunsFilter } from '../src/instance/types.js';
import type { Section } from './report.js';

const RUNS = 10_000;
const SAMPLES = 50;

export async function benchGetRuns(redisUrl: string): Promise<Section> {
  const section: Section = {
    title: `6. getRuns with ${RUNS.toLocaleString('en-US')} runs recorded`,
    short: '6. getRuns',
    method: [
      `${RUNS.toLocaleString('en-US')} runs of 5 jobs recorded through the run store (3 steps each; 90% SUCCESS, 8% FAILURE,`,
      '2% STARTED; a team tag of 10 values), then a Redis instance answers pages of 50, newest first;',
      `median of ${SAMPLES} calls each, measured from the caller (round trips included).`,
    ].join('\n'),
    figures: [],
  };
  const redis = createRedis(redisUrl);
  const store = createRunStore(redis);
  const plan: ExecutionPlan = {
    job: 'j',
    steps: ['a', 'b', 'c'].map((key) => ({ key, op: key, upstream: [], inputs: {}, config: {}, tags: {}, retry: null })),
  };
  const t0 = Date.now() - RUNS * 1000;
  const statusOf = (i: number): RunStatus => (i % 50 === 0 ? 'STARTED' : i % 12 === 0 ? 'FAILURE' : 'SUCCESS');
  for (let i = 0; i < RUNS; i += 200) {
    await Promise.all(
      Array.from({ length: Math.min(200, RUNS - i) }, async (_, j) => {
        const n = i + j;
        const at = new Date(t0 + n * 1000).toISOString();
        const runId = `bench-run-${n}`;
        await store.createRun(
          { runId, job: `job${n % 5}`, jobHash: 'h', jobPath: '/x.yaml', status: 'STARTED', tags: { team: `t${n % 10}` }, startedAt: at, createdAt: at, runConfig: {}, queue: 'q' },
          { ...plan, job: `job${n % 5}` },
        );
        if (statusOf(n) !== 'STARTED') await store.setRunStatus(runId, statusOf(n), at);
      }),
    );
  }
  await store.close();
  await redis.quit();
  const instance = await openInstance({ redis: redisUrl });
  try {
    const time = async (name: string, filter: RunsFilter): Promise<void> => {
      await instance.getRuns(filter); // warm: scripts loaded
      const ms: number[] = [];
      let count = 0;
      for (let i = 0; i < SAMPLES; i++) {
        const t = performance.now();
        count = (await instance.getRuns(filter)).runs.length;
        ms.push(performance.now() - t);
      }
      ms.sort((a, b) => a - b);
      section.figures.push({
        name,
        value: ms[Math.floor(ms.length / 2)] as number,
        unit: 'ms',
        target: { cmp: '<=', limit: 20 },
        note: `${count} runs; p95 ${(ms[Math.floor(ms.length * 0.95)] as number).toFixed(2)} ms`,
      });
    };
    await time('no filter', { limit: 50 });
    await time('status FAILURE + job', { statuses: ['FAILURE'], job: 'job3', limit: 50 });
    await time('status STARTED or FAILURE + tag', { statuses: ['STARTED', 'FAILURE'], tags: { team: 't4' }, limit: 50 });
    await time('tag + job (no match)', { tags: { team: 't1' }, job: 'job2', limit: 50 });
    const first = await instance.getRuns({ statuses: ['SUCCESS'], limit: 50 });
    await time('page 2 by cursor, status SUCCESS', { statuses: ['SUCCESS'], limit: 50, cursor: first.cursor ?? '' });
  } finally {
    await instance.close();
  }
  return section;
}
