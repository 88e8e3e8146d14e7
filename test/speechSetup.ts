/**
 * Vitest global setup: the audio tests need the offline speech engines. Locally, without them,
 * they are skipped with one line naming the install command; in CI (CI=true) that is a failure,
 * since .ci/run installs them.
 */
import { SPEECH_INSTALL_COMMAND, missingSpeechEngines } from '../src/speech/engines.js';

export default async function setup(): Promise<void> {
  const missing = await missingSpeechEngines();
  if (!missing) return;
  if (process.env.CI === 'true') throw new Error(`CI=true but ${missing}`);
  process.stderr.write(`audio tests skipped (no speech engines): ${SPEECH_INSTALL_COMMAND}\n`);
}
