import { describe, expect, it } from 'vitest';
import { decidePlacement, type StepIdentity } from '../src/distributed/job-placement.js';
import type { JobHashes } from '../src/distributed/worker-registry.js';

const mismatch = { code: 'JOB_HASH_MISMATCH' as const, message: 'job "etl" on worker w1 has definition hash aaaa, but the run was planned from bbbb' };
const step = (placement?: StepIdentity['placement']): StepIdentity => ({ jobName: 'etl', jobHash: 'bbbbbbbbbbbb', op: 'extract', ...(placement ? { placement } : {}) });
const found = (byHash: Record<string, string[]>, workers: number): JobHashes => ({ queue: 'baton', job: 'etl', workers, byHash: new Map(Object.entries(byHash)) });

describe('placement during a rolling deploy', () => {
  it('leaves a step for the live workers that have its copy, however long that takes', () => {
    const p = decidePlacement(mismatch, found({ bbbbbbbbbbbb: ['w2'], aaaaaaaaaaaa: ['w1'] }, 2), step({ leaves: 40, unplacedSince: 0 }), 10_000_000, 60_000);
    expect(p).toMatchObject({ kind: 'leave', note: { leaves: 41 } });
    expect(p.kind === 'leave' && p.note.unplacedSince).toBeUndefined();
  });

  it('leaves it while no live worker has it for less than the wait, then refuses it naming who has what', () => {
    const nobody = found({ aaaaaaaaaaaa: ['w1'] }, 1);
    const first = decidePlacement(mismatch, nobody, step(), 1000, 60_000);
    expect(first).toMatchObject({ kind: 'leave', note: { leaves: 1, unplacedSince: 1000 } });
    const later = decidePlacement(mismatch, nobody, step({ leaves: 5, unplacedSince: 1000 }), 50_000, 60_000);
    expect(later).toMatchObject({ kind: 'leave', note: { leaves: 6, unplacedSince: 1000 } });
    const past = decidePlacement(mismatch, nobody, step({ leaves: 9, unplacedSince: 1000 }), 61_000, 60_000);
    expect(past).toEqual({
      kind: 'refuse',
      code: 'JOB_HASH_MISMATCH',
      message: `${mismatch.message} (no live worker on queue \`baton\` has job \`etl\` at hash bbbbbbbb; 1 worker has it at aaaaaaaa, for 60 s)`,
    });
  });

  it('backs off: a step left again and again waits longer each time, up to a few seconds', () => {
    const delays = [0, 1, 2, 3, 4, 10].map((leaves) => {
      const p = decidePlacement(mismatch, found({ bbbbbbbbbbbb: ['w2'] }, 2), step({ leaves }), 0, 60_000);
      return p.kind === 'leave' ? p.delayMs : -1;
    });
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 4000]);
  });
});
