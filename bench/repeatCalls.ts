/**
 * Diagnosis of benchmark calls that fail: run the handoff call of bench/handoffCall.ts N times
 * per variant (taking turns, as `npm run bench` does) and, for each failure, print what the
 * speech server heard and synthesised and what the model was asked during that call.
 *
 *   tsx bench/repeatCalls.ts [calls per variant] [L ms] [timeout ms]
 */
import { offlineBrain } from '../src/models/offlineBrain.js';
import { createLogger, installAgentsLogger } from '../src/logging.js';
import { startSpeechServer } from '../src/speech/server.js';
import { CALLER_LINE, VARIANTS, runHandoffCall, variantName } from './handoffCall.js';
import { startModelServer } from './modelServer.js';

const [callsArg, latencyArg, timeoutArg] = process.argv.slice(2);
const calls = Number(callsArg ?? 6);
const latencyMs = Number(latencyArg ?? 400);
const timeoutMs = Number(timeoutArg ?? 30_000);

const logger = createLogger({ level: 'error', pii: false, destination: 'stderr' });
installAgentsLogger(logger);
const speech = await startSpeechServer({ phrases: [CALLER_LINE], logger });
const model = await startModelServer(offlineBrain, latencyMs);
let failures = 0;
for (let round = 0; round < calls; round++) {
  for (const variant of VARIANTS) {
    const heard = speech.heard.length;
    const spoken = speech.spoken.length;
    const served = model.served.length;
    const t0 = performance.now();
    try {
      const timing = await runHandoffCall({ variant, model, speech, logger, timeoutMs });
      process.stdout.write(
        `${round} ${variantName(variant)}: ok specialist ${Math.round(timing.specialistMs)} ms ` +
          `(${Math.round(performance.now() - t0)} ms wall)\n`,
      );
    } catch (error) {
      failures++;
      process.stdout.write(
        `${round} ${variantName(variant)}: FAILED after ${Math.round(performance.now() - t0)} ms: ` +
          `${error instanceof Error ? error.message : String(error)}\n` +
          `  heard: ${JSON.stringify(speech.heard.slice(heard).map((h) => [h.text, h.via]))}\n` +
          `  spoken: ${JSON.stringify(speech.spoken.slice(spoken).map((s) => [s.voice, s.text.slice(0, 40)]))}\n` +
          `  model asked: ${model.served.length - served}\n`,
      );
    }
  }
}
process.stdout.write(`${failures} of ${calls * VARIANTS.length} failed\n`);
await model.close();
await speech.close();
process.exit(0);
