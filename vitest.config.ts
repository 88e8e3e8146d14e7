import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Audio tests: one line when the speech engines are missing, a failure in CI.
    globalSetup: ['test/speechSetup.ts'],
  },
});
