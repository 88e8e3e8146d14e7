/**
 * Helpers for the audio tests: the offline engines gate, and caller speech as 20 ms frames.
 */
import { AudioFrame } from '@livekit/rtc-node';
import { describe } from 'vitest';
import { SPEECH_INSTALL_COMMAND, missingSpeechEngines } from '../src/speech/engines.js';

const missing = await missingSpeechEngines();
if (missing && process.env.CI === 'true') {
  // In CI the engines are installed by .ci/run: a skip would hide a broken setup.
  throw new Error(`CI=true but ${missing}`);
}
if (missing) {
  process.stderr.write(
    `audio tests skipped: install the speech engines: ${SPEECH_INSTALL_COMMAND}\n`,
  );
}

/** `describe` when the speech engines are installed; skipped locally (one line) otherwise. */
export const describeWithSpeech = missing ? describe.skip : describe;

/** Split 24 kHz mono PCM into 20 ms frames (the last one padded). */
export function frames20ms(samples: Int16Array, sampleRate = 24_000): AudioFrame[] {
  const size = sampleRate / 50;
  const out: AudioFrame[] = [];
  for (let at = 0; at < samples.length; at += size) {
    const chunk = new Int16Array(size);
    chunk.set(samples.subarray(at, Math.min(at + size, samples.length)));
    out.push(new AudioFrame(chunk, sampleRate, 1, size));
  }
  return out;
}
