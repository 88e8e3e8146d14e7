/**
 * Text to speech with flite, one flite voice per OpenAI voice name so every agent sounds
 * different. Output is what OpenAI's `response_format: "pcm"` returns: 24 kHz s16le mono.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './engines.js';

export const TTS_SAMPLE_RATE = 24_000;

/**
 * Flite's voices. The 16 kHz ones (slt, rms, awb, kal16) are recognised well, so kal16 is kept
 * for callers; agents' speech is only listened to, so kal (8 kHz) is fine for a fourth agent.
 */
export type FliteVoice = 'slt' | 'rms' | 'awb' | 'kal' | 'kal16';

/**
 * OpenAI voice -> flite voice. The four agents' default voices (alloy, sage, echo, shimmer) get
 * four different speakers; any other name gets one of them by a stable hash.
 */
export const DEFAULT_FLITE_VOICES: Readonly<Record<string, FliteVoice>> = {
  alloy: 'slt',
  sage: 'rms',
  echo: 'awb',
  shimmer: 'kal',
};

const ALL: FliteVoice[] = ['slt', 'rms', 'awb', 'kal'];

export function fliteVoiceFor(
  openaiVoice: string,
  voices: Readonly<Record<string, FliteVoice>> = DEFAULT_FLITE_VOICES,
): FliteVoice {
  const mapped = voices[openaiVoice];
  if (mapped) return mapped;
  let hash = 0;
  for (const char of openaiVoice) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return ALL[hash % ALL.length]!;
}

/** Speak `text` in `voice`; resolves with 24 kHz s16le mono PCM. */
export async function synthesize(text: string, voice: FliteVoice): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'flite-'));
  try {
    const wav = join(dir, 'speech.wav');
    // The text goes in a file, never on the command line (flite reads -f files verbatim).
    const textFile = join(dir, 'text.txt');
    await writeFile(textFile, text, 'utf8');
    await run('flite', ['-voice', voice, '-f', textFile, '-o', wav]);
    const raw = join(dir, 'speech.raw');
    await run('sox', [
      wav,
      '-t',
      'raw',
      '-r',
      String(TTS_SAMPLE_RATE),
      '-e',
      'signed-integer',
      '-b',
      '16',
      '-c',
      '1',
      raw,
    ]);
    return await readFile(raw);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
