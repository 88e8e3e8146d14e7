/**
 * Speech recognition with pocketsphinx. Given the lines a caller is expected to say, recognition
 * is constrained to them (and to their clauses) with a JSGF grammar, which makes it exact for
 * flite speech; without them the stock en-us language model is used.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POCKETSPHINX_DICT, POCKETSPHINX_MODEL, run } from './engines.js';
import { encodeWav } from './wav.js';

const RECOGNITION_SAMPLE_RATE = 16_000;

let dictionary: Promise<Set<string>> | undefined;

/** The words pocketsphinx can recognise (a grammar naming any other word is refused). */
function knownWords(): Promise<Set<string>> {
  dictionary ??= readFile(POCKETSPHINX_DICT, 'utf8').then(
    (text) => new Set(text.split('\n').map((line) => line.split(' ')[0]!)),
  );
  return dictionary;
}

/** Lowercase words the dictionary knows, without punctuation. */
async function words(text: string): Promise<string[]> {
  const known = await knownWords();
  return text
    .toLowerCase()
    .replace(/[^a-z' ]+/g, ' ')
    .split(/\s+/)
    .map((word) => word.replace(/^'+|'+$/g, ''))
    .filter((word) => word !== '' && known.has(word));
}

/**
 * A JSGF grammar accepting each phrase and each of its clauses (split at punctuation), so a
 * phrase cut in two by a pause is still recognised piece by piece.
 */
export async function grammarFor(phrases: readonly string[]): Promise<string | null> {
  const alternatives = new Set<string>();
  for (const phrase of phrases) {
    for (const part of [phrase, ...phrase.split(/[,.;:!?]+/)]) {
      const clause = (await words(part)).join(' ');
      if (clause !== '') alternatives.add(clause);
    }
  }
  if (alternatives.size === 0) return null;
  return `#JSGF V1.0;\ngrammar lines;\npublic <line> = ${[...alternatives].join(' | ')};\n`;
}

/** A faint noise floor: pure digital silence makes pocketsphinx hear words that are not there. */
function withNoiseFloor(samples: Int16Array): Int16Array {
  const out = new Int16Array(samples.length);
  let seed = 12345;
  for (let i = 0; i < samples.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const noise = (seed % 9) - 4;
    out[i] = Math.max(-32768, Math.min(32767, samples[i]! + noise));
  }
  return out;
}

/**
 * Recognise mono 16-bit speech at any sample rate. `grammar` is from {@link grammarFor}; null
 * uses the stock language model. Resolves with the words heard ('' for none).
 */
export async function recognize(
  samples: Int16Array,
  sampleRate: number,
  grammar: string | null,
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sphinx-'));
  try {
    const input = join(dir, 'input.wav');
    const wav = join(dir, 'speech.wav');
    await writeFile(
      input,
      encodeWav({ samples: withNoiseFloor(samples), sampleRate, channels: 1 }),
    );
    await run('sox', [input, '-r', String(RECOGNITION_SAMPLE_RATE), '-c', '1', wav]);
    const args = [
      '-infile',
      wav,
      '-hmm',
      `${POCKETSPHINX_MODEL}/en-us`,
      '-dict',
      POCKETSPHINX_DICT,
    ];
    if (grammar) {
      const jsgf = join(dir, 'lines.jsgf');
      await writeFile(jsgf, grammar, 'utf8');
      args.push('-jsgf', jsgf);
    } else {
      args.push('-lm', `${POCKETSPHINX_MODEL}/en-us.lm.bin`);
    }
    args.push('-logfn', '/dev/null');
    const out = await run('pocketsphinx_continuous', args);
    return out
      .toString('utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '')
      .join(' ');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
