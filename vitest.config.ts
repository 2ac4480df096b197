import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // 2-core machines: tests start real processes and Redis servers; keep parallelism modest.
    maxWorkers: 2,
    pool: 'forks',
  },
});
