import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Ceilings, not expectations: on a busy machine a process start alone can take many seconds.
    testTimeout: 300_000,
    hookTimeout: 180_000,
    // 2-core machines: tests start real processes and Redis servers; keep parallelism modest.
    maxWorkers: 2,
    pool: 'forks',
  },
});
