import { defineConfig } from 'vitest/config';

// The live tests (test/live/): a real LiveKit server in a private network namespace.
// `npm run test:live` runs them through scripts/netns.sh; see the README, "Live tests".
export default defineConfig({
  test: {
    include: ['test/live/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // One stack per namespace: files run one after another.
    fileParallelism: false,
    // rtc-node logs at debug level unless NODE_ENV is production.
    env: { NODE_ENV: 'production' },
    // The agents SDK logs through a silent logger (TEST_LOG_LEVEL shows it).
    setupFiles: ['test/sdkLogger.ts'],
  },
});
