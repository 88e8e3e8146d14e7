/**
 * A whole call in audio, through the production pipeline: caller lines spoken by flite in real
 * time, Silero VAD, openai.STT over the realtime transcription websocket, the machine, agents,
 * tools and bridge, openai.TTS per agent voice, all against the local speech server.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { handoffTo, call as toolCall } from './fakes/model.js';
import { type VoiceTestCall, describeWithSpeech, startVoiceTestCall } from './speech.js';

const CHARGED = 'hi i was charged twice for my subscription this month';
const CRASHING = 'also the app keeps crashing when i open it';
const BYE = 'thanks that fixed it bye';

describeWithSpeech('a voice call: greeting, billing, support, goodbye', () => {
  let c: VoiceTestCall;

  beforeAll(async () => {
    c = await startVoiceTestCall({
      // The model answers what it hears: a transcript that differs finds no script entry.
      script: {
        [CHARGED]: { toolCalls: [handoffTo('billing', 'a double charge')] },
        [CRASHING]: { toolCalls: [handoffTo('support', 'an app crash')] },
        [BYE]: { toolCalls: [toolCall('end_call', { reason: 'caller said goodbye' })] },
      },
    });
    await c.call.start();
    for (const line of [CHARGED, CRASHING, BYE]) await c.call.say(line);
    await c.call.close();
  }, 90_000);
  afterAll(() => c?.call.close());

  it('hears every caller line with its keywords', () => {
    const heard = c.speech().map((s) => s.heard);
    expect(heard).toEqual([CHARGED, CRASHING, BYE]);
    expect(heard.join(' ')).toMatch(/charged.*crashing.*bye/);
  });

  it('takes the machine through each state to the end', () => {
    expect(c.states()).toEqual(['greeting', 'intent', 'billing', 'support', 'ended']);
    expect(c.observed.at(-1)).toEqual({ type: 'end', reason: 'caller said goodbye' });
  });

  it("plays every agent's audio in that agent's own voice", () => {
    const voices = c.config.models.voices;
    const audio = c.audio();
    expect(audio.map((a) => a.agent)).toEqual([
      'reception', // greeting
      'reception', // bridge line to billing
      'billing', // opening
      'billing', // bridge line to support
      'support', // opening
      'support', // goodbye
    ]);
    for (const segment of audio) {
      expect(segment.voice, `${segment.agent} at ${segment.startMs} ms`).toBe(
        voices[segment.agent],
      );
      expect(segment.interrupted).toBe(false);
    }
    expect(new Set(audio.map((a) => a.voice)).size).toBe(3);
  });

  it('keeps caller and agents on one clock: nobody talks over anybody, answers follow words', () => {
    const turns = [...c.audio(), ...c.speech()].sort((a, b) => a.startMs - b.startMs);
    for (let i = 1; i < turns.length; i++) {
      expect(turns[i]!.startMs).toBeGreaterThanOrEqual(turns[i - 1]!.endMs);
    }
    const { caller, agents } = c.call.line.recording();
    expect(caller.length).toBe(agents.length);
    expect(caller.length / 24_000).toBeGreaterThan(turns.at(-1)!.endMs / 1000);
  });
});
