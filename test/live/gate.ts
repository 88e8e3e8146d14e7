/**
 * Whether the live tests can run here: a LiveKit server and Redis installed, the speech engines,
 * and a private network namespace (scripts/netns.sh sets NETNS_INSIDE). Locally a missing part
 * skips them with one line; with CI=true it fails, since .ci/run installs everything.
 */
import { describe } from 'vitest';
import { loadStackConfig } from '../../src/config.js';
import { missingSpeechEngines } from '../../src/speech/engines.js';
import { STACK_INSTALL_COMMAND } from '../../src/stack/install.js';
import { findRedisServer, findServerBin } from '../../src/stack/localStack.js';

async function missingPart(): Promise<string | null> {
  if (!(await findServerBin(loadStackConfig(process.env).serverBin))) {
    return `the LiveKit server is not installed: ${STACK_INSTALL_COMMAND}`;
  }
  if (!(await findRedisServer())) return `redis-server is not installed: ${STACK_INSTALL_COMMAND}`;
  const speech = await missingSpeechEngines();
  if (speech) return speech;
  if (process.env.NETNS_INSIDE !== '1') {
    return 'not inside a private network namespace: run them with npm run test:live (as root)';
  }
  return null;
}

const missing = await missingPart();
if (missing && process.env.CI === 'true') throw new Error(`CI=true but ${missing}`);
if (missing) process.stderr.write(`live tests skipped: ${missing}\n`);

/** `describe` when the live stack can run; skipped (one line) otherwise. */
export const describeLive = missing ? describe.skip : describe;
