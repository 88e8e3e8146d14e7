/**
 * Turn-taking in audio, in one call per model mode: the caller speaking over a handoff's bridge
 * line, over a specialist mid-sentence, and hanging up mid-sentence.
 *
 * - pipeline: Silero VAD, openai.STT, the scripted model, openai.TTS per agent voice;
 * - realtime (MODEL_MODE=realtime): one `openai.realtime.RealtimeModel` per agent speaking the
 *   Realtime websocket protocol to the local speech server, whose turn detection interrupts and
 *   whose brain is the same script (its requests are in `call.server.responses`).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { agentOf } from '../src/models/offlineBrain.js';
import { handoffTo } from './fakes/model.js';
import {
  MODEL_MODES,
  type VoiceTestCall,
  describeWithSpeech,
  startVoiceTestCall,
} from './speech.js';

const CHARGED = 'hi i was charged twice for my subscription this month';
const ONE_MORE = 'wait one more thing';
const NEXT = 'what happens next';
const SORRY = 'sorry what was that';
/** Long enough to be interrupted mid-sentence. */
const PLAN =
  'I will refund the second payment to your card today, you will see it on your statement ' +
  'within five working days, and I will send you an email to confirm it.';

/** How soon playback must stop once the caller's voice starts. */
const BARGE_IN_MS = 300;

describeWithSpeech.each(MODEL_MODES)('turn-taking in a voice call (%s)', (mode) => {
  let c: VoiceTestCall;

  beforeAll(async () => {
    c = await startVoiceTestCall({
      realtime: mode === 'realtime',
      script: {
        [CHARGED]: { toolCalls: [handoffTo('billing', 'a double charge')] },
        [NEXT]: { text: PLAN },
        // Words the agents answer with their default "<agent> heard: ..."
        [ONE_MORE]: (request) => ({ text: `${agentOf(request)} heard: ${ONE_MORE}` }),
        [SORRY]: (request) => ({ text: `${agentOf(request)} heard: ${SORRY}` }),
      },
    });
    await c.call.start();
  }, 30_000);
  afterAll(() => c?.call.close());

  it('the caller speaking over the bridge line stops it and reaches the new agent only', async () => {
    const voices = c.config.models.voices;
    const speaking = c.call.speak(CHARGED);
    await c.until(() => c.states().includes('billing'), 'the handoff to billing');
    await speaking;
    // The bridge line is playing in reception's voice; the caller talks over it.
    const played = c.audio().length;
    let lineStart = 0;
    await c.onLine(() => {
      lineStart ||=
        c.call.line.nowMs() > (c.audio().at(-1)?.endMs ?? 0) && playing() ? c.call.line.nowMs() : 0;
      return lineStart > 0 && c.call.line.nowMs() - lineStart >= 500;
    }, 'the bridge line playing for half a second');
    const { startMs } = await c.call.speak(ONE_MORE);
    const voiceAt = c.callerVoiceStartMs(startMs);
    await c.until(() => c.audio().length > played, 'the bridge line stopping');
    const bridgeLine = c.audio()[played]!;
    expect(bridgeLine).toMatchObject({
      agent: 'reception',
      voice: voices.reception,
      interrupted: true,
    });
    expect(bridgeLine.endMs).toBeGreaterThan(startMs); // it was playing when the caller began
    expect(bridgeLine.endMs - voiceAt).toBeLessThanOrEqual(BARGE_IN_MS);
    expect(c.agentsLevel(voiceAt + BARGE_IN_MS, voiceAt + BARGE_IN_MS + 300)).toBeLessThan(50);

    // Recognised whole (in realtime mode by the new agent's session: the retiring one closed
    // before it could finish hearing them); then whatever the session makes of it has played.
    await c.onLine(
      () => c.call.server.heard.some((h) => h.text === ONE_MORE),
      'the words recognised',
      30_000,
    );
    // Heard by the server a moment before its answer reaches the session: wait for the answer.
    await c.until(
      () => c.observed.some((e) => e.type === 'say' && e.text.includes(ONE_MORE)),
      'an answer to the words',
    );
    await c.until(() => c.call.idle, 'the call settling');
    expect(c.call.call.bridge.state).toBe('billing');
    const answers = c.observed.filter((e) => e.type === 'say' && e.text.includes(ONE_MORE));
    expect(answers).toEqual([
      { type: 'say', agent: 'billing', text: `billing heard: ${ONE_MORE}` },
    ]);
    // The answer played whole, in billing's voice; an opening the words cut short before it is
    // recorded as cut (in realtime mode billing's session hears the words as it starts).
    const afterBridge = c.audio().slice(played + 1);
    expect(afterBridge.at(-1)).toMatchObject({
      agent: 'billing',
      voice: voices.billing,
      interrupted: false,
    });
    if (mode === 'realtime') {
      const opening = c.call.server.responses.find(
        (r) => agentOf(r.request) === 'billing' && r.request.instructions.includes('Opening:'),
      );
      const openingAudio = afterBridge.slice(0, -1);
      if (opening?.status === 'cancelled') {
        expect(openingAudio.map((a) => a.interrupted)).toEqual(openingAudio.map(() => true));
      } else {
        expect(openingAudio.map((a) => a.interrupted)).toEqual([false]);
      }
    }
    // Nothing of reception's was played after its bridge line.
    expect(
      c
        .audio()
        .slice(played + 1)
        .map((a) => a.agent),
    ).not.toContain('reception');
    // No request from reception ever carried the words; billing's did.
    const carrying = requests().filter((r) =>
      r.messages.some((m) => m.role === 'user' && m.text === ONE_MORE),
    );
    expect(carrying.length).toBeGreaterThan(0);
    expect(carrying.map((r) => agentOf(r))).toEqual(carrying.map(() => 'billing'));
    if (mode === 'realtime') {
      // Reception's session answered nothing after its bridge line: every later response is
      // billing's, the answer in billing's own voice from billing's own session.
      const responses = c.call.server.responses;
      const bridged = responses.findIndex((r) => r.text?.startsWith('One moment'));
      const later = responses.slice(bridged + 1).map((r) => agentOf(r.request));
      expect(later.length).toBeGreaterThan(0);
      expect(later).toEqual(later.map(() => 'billing'));
      const answered = responses.filter((r) => r.text?.includes(ONE_MORE));
      expect(answered.map((r) => [agentOf(r.request), r.voice])).toEqual([
        ['billing', voices.billing],
      ]);
    }
  }, 60_000);

  it('the caller speaking over a specialist mid-sentence stops it within 300 ms and is answered', async () => {
    const voices = c.config.models.voices;
    const played = c.audio().length;
    await c.call.speak(NEXT);
    // Billing is 1.5 s into its long answer.
    let answerStart = 0;
    await c.onLine(() => {
      answerStart ||= playing() ? c.call.line.nowMs() : 0;
      return answerStart > 0 && c.call.line.nowMs() - answerStart >= 1500;
    }, 'the answer playing for 1.5 s');
    const { startMs } = await c.call.speak(SORRY);
    const voiceAt = c.callerVoiceStartMs(startMs);
    await c.until(() => c.audio().length > played, 'the answer stopping');
    const cut = c.audio()[played]!;
    expect(cut).toMatchObject({ agent: 'billing', voice: voices.billing, interrupted: true });
    expect(cut.endMs - voiceAt).toBeLessThanOrEqual(BARGE_IN_MS);
    expect(c.agentsLevel(voiceAt + BARGE_IN_MS, voiceAt + BARGE_IN_MS + 300)).toBeLessThan(50);

    await c.onLine(
      () => c.call.server.heard.some((h) => h.text === SORRY),
      'the words recognised',
      30_000,
    );
    await c.until(
      () => c.observed.some((e) => e.type === 'say' && e.text.includes(SORRY)),
      'an answer to the words',
      30_000,
    );
    await c.until(() => c.call.idle, 'the call settling');
    expect(c.call.call.bridge.state).toBe('billing');
    const answer = c.audio().at(-1)!;
    expect(answer).toMatchObject({ agent: 'billing', voice: voices.billing, interrupted: false });
    expect(answer.startMs).toBeGreaterThan(cut.endMs);
    if (mode === 'realtime') {
      // The server stopped generating the long answer: cancelled, not played out unheard.
      const long = c.call.server.responses.find((r) => r.text === PLAN);
      expect(long?.status).toBe('cancelled');
    }
  }, 60_000);

  it('hanging up mid-sentence stops playback at once and ends the call', async () => {
    const played = c.audio().length;
    await c.call.speak(NEXT);
    let answerStart = 0;
    await c.onLine(() => {
      answerStart ||= playing() ? c.call.line.nowMs() : 0;
      return answerStart > 0 && c.call.line.nowMs() - answerStart >= 1000;
    }, 'the answer playing for 1 s');
    const hungUpAt = c.call.line.nowMs();
    c.call.hangUp();
    const end = await c.call.done;
    expect(end.reason).toBe('caller-hung-up');
    await c.until(() => c.audio().length > played, 'the answer stopping');
    const cut = c.audio()[played]!;
    expect(cut).toMatchObject({ agent: 'billing', interrupted: true });
    expect(cut.endMs - hungUpAt).toBeLessThanOrEqual(100);
    expect(c.call.events.filter((e) => e.type === 'ended')).toHaveLength(1);
    // Nothing more is played: the agents' channel stays silent after the cut.
    await c.onLine(() => c.call.line.nowMs() >= cut.endMs + 500, 'half a second more');
    expect(c.agentsLevel(cut.endMs + 20, cut.endMs + 500)).toBe(0);
    expect(c.audio().length).toBe(played + 1);
  }, 60_000);

  /** Agent audio is on the line in the last tick. */
  function playing(): boolean {
    const now = c.call.line.nowMs();
    return c.agentsLevel(now - 20, now) > 0;
  }

  /** Every request the model was given: the pipeline's LLM calls, or the realtime responses. */
  function requests() {
    return mode === 'realtime'
      ? c.call.server.responses.map((r) => r.request)
      : c.models.flatMap((m) => m.requests);
  }
});
