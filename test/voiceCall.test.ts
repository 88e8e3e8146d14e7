/**
 * A whole call in audio, per model mode: caller lines spoken by flite in real time, the machine,
 * agents, tools and bridge, against the local speech server.
 *
 * - pipeline: Silero VAD, openai.STT over the realtime transcription websocket, the scripted
 *   model, openai.TTS per agent voice;
 * - realtime (MODEL_MODE=realtime): one `openai.realtime.RealtimeModel` per agent, in its voice,
 *   speaking the Realtime websocket protocol to the speech server, which hears the caller (its
 *   turn detection, pocketsphinx), lets the same script decide, and answers in flite.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { agentOf } from '../src/models/offlineBrain.js';
import { handoffTo, call as toolCall } from './fakes/model.js';
import {
  MODEL_MODES,
  type VoiceTestCall,
  describeWithSpeech,
  startVoiceTestCall,
} from './speech.js';

const CHARGED = 'hi i was charged twice for my subscription this month';
const CRASHING = 'also the app keeps crashing when i open it';
const BYE = 'thanks that fixed it bye';

describeWithSpeech.each(MODEL_MODES)(
  'a voice call (%s): greeting, billing, support, goodbye',
  (mode) => {
    let c: VoiceTestCall;

    beforeAll(async () => {
      c = await startVoiceTestCall({
        realtime: mode === 'realtime',
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
    }, 120_000);
    afterAll(() => c?.call.close());

    it('hears every caller line with its keywords', () => {
      const heard = c.speech().map((s) => s.heard);
      expect(heard).toEqual([CHARGED, CRASHING, BYE]);
      expect(heard.join(' ')).toMatch(/charged.*crashing.*bye/);
      if (mode === 'realtime') {
        // Heard by the realtime sessions themselves: there is no separate speech-to-text.
        expect(c.call.server.heard.map((h) => h.text)).toEqual([CHARGED, CRASHING, BYE]);
      }
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
      if (mode === 'realtime') {
        // Every response the realtime server gave was in the voice of the agent whose
        // instructions it was given: the specialist's own session, not reception's with new
        // instructions.
        const responses = c.call.server.responses;
        expect(responses.length).toBeGreaterThanOrEqual(audio.length);
        for (const response of responses) {
          expect(response.voice).toBe(voices[agentOf(response.request)]);
        }
      }
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

    // Realtime only: the pipeline's model requests are checked in test/session.test.ts.
    if (mode !== 'realtime') return;
    it("gives each specialist's session the handoff brief and the caller's words", () => {
      const opening = (agent: string) =>
        c.call.server.responses.find(
          (r) => agentOf(r.request) === agent && r.request.instructions.includes('Opening:'),
        );
      expect(opening('billing')?.request.instructions).toContain('a double charge');
      expect(opening('billing')?.request.messages).toContainEqual({
        role: 'user',
        text: CHARGED,
      });
      expect(opening('support')?.request.instructions).toContain('an app crash');
      expect(opening('support')?.request.messages).toContainEqual({
        role: 'user',
        text: CRASHING,
      });
    });
  },
);
