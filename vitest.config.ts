import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Audio tests: one line when the speech engines are missing, a failure in CI.
    globalSetup: ['test/speechSetup.ts'],
    // The agents SDK logs through a silent logger (TEST_LOG_LEVEL shows it).
    setupFiles: ['test/sdkLogger.ts'],
    // Most of these tests wait (a model's reply, a session closing, a browser) more than they
    // compute, and vitest's default on 2 cores is one worker: files would run one at a time.
    maxWorkers: 4,
    // The path suites run each generated path as a concurrent test: a path is mostly waiting.
    maxConcurrency: 10,
    // Two projects: the offline suite and the audio tests (`npm test` runs them in turn).
    projects: [
      {
        extends: true,
        test: {
          name: 'offline',
          include: ['test/**/*.test.ts'],
          // The live tests need a LiveKit server in a network namespace: `npm run test:live`.
          exclude: ['test/live/**', 'test/voice*.test.ts', 'node_modules/**'],
          // Each worker loads the agents SDK and the project once for all the files it runs,
          // not once per file (~2 s of CPU each). The files leave no global state behind: no
          // fake timers, module mocks or environment changes; spies are restored.
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'audio',
          include: ['test/voice*.test.ts'],
        },
      },
    ],
  },
});
