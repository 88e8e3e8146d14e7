import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The live tests need a LiveKit server in a network namespace: `npm run test:live`.
    exclude: ['test/live/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Most of these tests wait (a model's reply, a session closing, a browser) more than they
    // compute, and vitest's default on 2 cores is one worker: files would run one at a time.
    maxWorkers: 4,
    // The path suites run each generated path as a concurrent test: a path is mostly waiting.
    maxConcurrency: 24,
    // Audio tests: one line when the speech engines are missing, a failure in CI.
    globalSetup: ['test/speechSetup.ts'],
    // The agents SDK logs through a silent logger (TEST_LOG_LEVEL shows it).
    setupFiles: ['test/sdkLogger.ts'],
  },
});
