/**
 * Vitest setup file, run in every test worker before its tests: the agents SDK logs through a
 * silent logger (TEST_LOG_LEVEL=debug shows it on stderr).
 */
import { createLogger, installAgentsLogger } from '../src/logging.js';

installAgentsLogger(
  createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', pii: true, destination: 'stderr' }),
);
