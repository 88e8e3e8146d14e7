/**
 * `npm run console -- --voice` end to end, as a child process: a short call spoken and heard,
 * its JSON audio and speech events, the two-channel recording and the timeline; and the one-line
 * failure when the speech engines are missing.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rms } from '../src/speech/endpointer.js';
import { decodeWav } from '../src/speech/wav.js';
import { ROOT, runConsole } from './consoleProcess.js';
import { describeWithSpeech } from './speech.js';

describeWithSpeech('voice console', () => {
  it('speaks a scripted call, prints audio and speech events, records both sides and draws it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'voice-console-'));
    const script = join(dir, 'call.txt');
    await writeFile(script, 'Thanks, bye!\n');
    const wav = join(dir, 'call.wav');
    const svg = join(dir, 'call.svg');
    const run = await runConsole([
      '--voice',
      '--script',
      script,
      '--json',
      '--record',
      wav,
      '--timeline',
      svg,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const events = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const audio = events.filter((e) => e.type === 'audio') as {
      agent: string;
      startMs: number;
      endMs: number;
      voice: string;
    }[];
    const speech = events.filter((e) => e.type === 'speech') as {
      startMs: number;
      endMs: number;
      heard: string;
    }[];
    expect(audio.map((a) => [a.agent, a.voice])).toEqual([
      ['reception', 'alloy'], // greeting
      ['reception', 'alloy'], // goodbye
    ]);
    expect(speech).toHaveLength(1);
    expect(speech[0]!.heard).toBe('thanks bye');
    expect(events.at(-1)).toEqual({ type: 'end', reason: 'caller said goodbye' });

    // Caller left, agents right, on the events' clock: each side is loud where it spoke.
    const recording = decodeWav(await readFile(wav));
    expect(recording).toMatchObject({ channels: 2, sampleRate: 24_000 });
    const channel = (c: number, fromMs: number, toMs: number) =>
      recording.samples
        .subarray(Math.round(fromMs * 24) * 2, Math.round(toMs * 24) * 2)
        .filter((_, i) => i % 2 === c);
    const [greeting, goodbye] = audio;
    const said = speech[0]!;
    expect(rms(channel(1, greeting!.startMs, greeting!.endMs))).toBeGreaterThan(300);
    expect(rms(channel(1, goodbye!.startMs, goodbye!.endMs))).toBeGreaterThan(300);
    expect(rms(channel(0, said.startMs, said.endMs))).toBeGreaterThan(300);
    expect(rms(channel(0, greeting!.startMs, greeting!.endMs))).toBeLessThan(10);
    expect(rms(channel(1, said.startMs, said.endMs))).toBe(0);

    const picture = await readFile(svg, 'utf8');
    expect(picture).toMatch(/^<svg /);
    for (const lane of ['caller', 'reception', 'state', 'greeting', 'intent', 'ended']) {
      expect(picture).toContain(`>${lane}</text>`);
    }
  }, 60_000);
});

describe('voice console without the speech engines', () => {
  it('fails with one line naming the packages to install', async () => {
    const run = await runConsole(
      ['--voice', '--script', join(ROOT, 'examples', 'billing-then-support.txt')],
      {
        PATH: '/nonexistent',
      },
    );
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('apt-get install -y flite pocketsphinx pocketsphinx-en-us sox');
  });

  it('refuses --record without --voice', async () => {
    const run = await runConsole(['--record', 'x.wav']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--record and --timeline need --voice');
  });
});
