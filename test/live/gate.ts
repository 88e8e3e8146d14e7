/**
 * Whether the live tests can run here: the LiveKit server, Redis and the speech engines
 * installed, inside a private network namespace (scripts/netns.sh sets NETNS_INSIDE), with the
 * worker built (`npm run test:live` does all of it). Locally a missing part skips them with one
 * line; with CI=true it fails, since .ci/run installs everything.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'vitest';
import { loadStackConfig } from '../../src/config.js';
import { missingForLiveTests } from '../../src/cli/stack.js';

export const WORKER_ENTRY = join(import.meta.dirname, '..', '..', 'dist', 'src', 'main.js');

async function missingPart(): Promise<string | null> {
  const missing = await missingForLiveTests(loadStackConfig(process.env).serverBin);
  if (missing) return missing;
  if (process.env.NETNS_INSIDE !== '1') {
    return 'not inside a private network namespace: run them with npm run test:live (as root)';
  }
  if (!existsSync(WORKER_ENTRY)) return 'the worker is not built: npm run build';
  return null;
}

const missing = await missingPart();
if (missing && process.env.CI === 'true') throw new Error(`CI=true but ${missing}`);
if (missing) process.stderr.write(`live tests skipped: ${missing}\n`);

/** `describe` when the live stack can run; skipped (one line) otherwise. */
export const describeLive = missing ? describe.skip : describe;
