/**
 * The offline speech engines (Debian packages): flite speaks, pocketsphinx recognises, sox
 * converts. Everything in src/speech runs them as child processes.
 */
import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';

/** The one command that installs every engine the voice path needs. */
export const SPEECH_INSTALL_COMMAND =
  'apt-get install -y flite pocketsphinx pocketsphinx-en-us sox';

export const POCKETSPHINX_MODEL = '/usr/share/pocketsphinx/model/en-us';
export const POCKETSPHINX_DICT = `${POCKETSPHINX_MODEL}/cmudict-en-us.dict`;

const REQUIRED: [what: string, check: () => Promise<void>][] = [
  ['flite', () => which('flite')],
  ['pocketsphinx', () => which('pocketsphinx_continuous')],
  ['pocketsphinx-en-us', () => access(`${POCKETSPHINX_MODEL}/en-us/mdef`)],
  ['sox', () => which('sox')],
];

/**
 * Null when every engine is installed, else one line naming what is missing and the command
 * that installs it.
 */
export async function missingSpeechEngines(): Promise<string | null> {
  const missing: string[] = [];
  for (const [what, check] of REQUIRED) {
    try {
      await check();
    } catch {
      missing.push(what);
    }
  }
  if (missing.length === 0) return null;
  return `the offline speech engines are missing (${missing.join(', ')}): ${SPEECH_INSTALL_COMMAND}`;
}

/** Present when it can be started at all (ENOENT means not installed); the exit code is irrelevant. */
function which(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, ['--version'], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', () => resolve());
  });
}

/** Run a command, feeding `input` on stdin; resolves with stdout, rejects on a non-zero exit. */
export function run(command: string, args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else {
        const detail = Buffer.concat(err).toString('utf8').trim().split('\n').slice(-2).join(' ');
        reject(new Error(`${command} exited with ${code}: ${detail}`));
      }
    });
    child.stdin.on('error', () => {}); // a child that exits early closes its stdin
    child.stdin.end(input);
  });
}
