/**
 * MODEL_MODE=realtime in audio: the production session with one `openai.realtime.RealtimeModel`
 * per agent (its voice), speaking the OpenAI Realtime websocket protocol to the local speech
 * server, which hears the caller (energy endpointer as server VAD, pocketsphinx), lets the
 * test's script decide, and answers in flite in the session's voice. Same machine, agents, tools
 * and bridge as the pipeline tests (test/voiceCall.test.ts, test/voiceTurns.test.ts), and their
 * turn-taking: talking into a handoff, over a specialist mid-sentence, hanging up mid-sentence.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { agentOf } from '../src/models/offlineBrain.js';
import { handoffTo, call as toolCall } from './fakes/model.js';
import { type VoiceTestCall, describeWithSpeech, startVoiceTestCall } from './speech.js';

const CHARGED = 'hi i was charged twice for my subscription this month';
const CRASHING = 'also the app keeps crashing when i open it';
const BYE = 'thanks that fixed it bye';
const ONE_MORE = 'wait one more thing';
const NEXT = 'what happens next';
const SORRY = 'sorry what was that';
/** Long enough to be interrupted mid-sentence. */
const PLAN =
  'I will refund the second payment to your card today, you will see it on your statement ' +
  'within five working days, and I will send you an email to confirm it.';

/** How soon playback must stop once the caller's voice starts. */
const BARGE_IN_MS = 300;

describeWithSpeech('a realtime voice call: greeting, billing, support, goodbye', () => {
  let c: VoiceTestCall;

  beforeAll(async () => {
    c = await startVoiceTestCall({
      realtime: true,
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

  it('hears every caller line through the realtime session', () => {
    expect(c.speech().map((s) => s.heard)).toEqual([CHARGED, CRASHING, BYE]);
    expect(c.call.server.heard.map((h) => h.text)).toEqual([CHARGED, CRASHING, BYE]);
  });

  it('takes the machine through each state to the end', () => {
    expect(c.states()).toEqual(['greeting', 'intent', 'billing', 'support', 'ended']);
    expect(c.observed.at(-1)).toEqual({ type: 'end', reason: 'caller said goodbye' });
  });

  it("plays every agent's audio in that agent's own voice, from that agent's session", () => {
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
    // Every response the realtime server gave was in the voice of the agent whose instructions
    // it was given: the specialist's own session, not reception's with new instructions.
    const responses = c.call.server.responses;
    expect(responses.length).toBeGreaterThanOrEqual(audio.length);
    for (const response of responses) {
      expect(response.voice).toBe(voices[agentOf(response.request)]);
    }
  });

  it("gives each specialist the handoff brief and the caller's words", () => {
    const opening = (agent: string) =>
      c.call.server.responses.find(
        (r) => agentOf(r.request) === agent && r.request.instructions.includes('Opening:'),
      );
    expect(opening('billing')?.request.instructions).toContain('a double charge');
    expect(opening('billing')?.request.messages).toContainEqual({ role: 'user', text: CHARGED });
    expect(opening('support')?.request.instructions).toContain('an app crash');
    expect(opening('support')?.request.messages).toContainEqual({ role: 'user', text: CRASHING });
  });
});

describeWithSpeech('turn-taking in a realtime voice call', () => {
  let c: VoiceTestCall;

  beforeAll(async () => {
    c = await startVoiceTestCall({
      realtime: true,
      script: {
        [CHARGED]: { toolCalls: [handoffTo('billing', 'a double charge')] },
        [NEXT]: { text: PLAN },
        [ONE_MORE]: (request) => ({ text: `${agentOf(request)} heard: ${ONE_MORE}` }),
        [SORRY]: (request) => ({ text: `${agentOf(request)} heard: ${SORRY}` }),
      },
    });
    await c.call.start();
  }, 30_000);
  afterAll(() => c?.call.close());

  // The words are split between the two realtime sessions: reception's closes as soon as its
  // bridge line is cut, and billing's hears only what follows, which pocketsphinx sometimes cannot
  // match (README, known limits). What always holds is checked; the answer when it is heard.
  it('the caller talking into a handoff cuts the bridge line, and only the new agent answers', async () => {
    const speaking = c.call.speak(CHARGED);
    await c.until(() => c.states().includes('billing'), 'the handoff to billing');
    await speaking;
    // The bridge line is playing in reception's voice; the caller talks over it.
    const played = c.audio().length;
    const heardBefore = c.call.server.heard.length;
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
    expect(bridgeLine).toMatchObject({ agent: 'reception', voice: 'alloy', interrupted: true });
    expect(bridgeLine.endMs).toBeGreaterThan(startMs); // it was playing when the caller began
    expect(bridgeLine.endMs - voiceAt).toBeLessThanOrEqual(BARGE_IN_MS);
    expect(c.agentsLevel(voiceAt + BARGE_IN_MS, voiceAt + BARGE_IN_MS + 300)).toBeLessThan(50);

    await c.until(() => c.call.server.heard.length > heardBefore, 'the words transcribed', 30_000);
    await c.until(() => c.call.idle, 'the call settling');
    expect(c.call.call.bridge.state).toBe('billing');
    // Reception said nothing more, and nothing of reception's was played after its bridge line.
    expect(
      c
        .audio()
        .slice(played + 1)
        .map((a) => a.agent),
    ).not.toContain('reception');
    // Nor did its session answer anything after the bridge line: every later response is billing's.
    const responses = c.call.server.responses;
    const bridged = responses.findIndex((r) => r.text?.startsWith('One moment'));
    const later = responses.slice(bridged + 1).map((r) => agentOf(r.request));
    expect(later.length).toBeGreaterThan(0);
    expect(later).toEqual(later.map(() => 'billing'));
    const answers = c.observed.filter((e) => e.type === 'say' && e.text.includes(ONE_MORE));
    if (c.call.server.heard.some((h) => h.text === ONE_MORE)) {
      expect(answers).toEqual([
        { type: 'say', agent: 'billing', text: `billing heard: ${ONE_MORE}` },
      ]);
      const answered = c.call.server.responses.filter((r) => r.text?.includes(ONE_MORE));
      expect(answered.map((r) => [agentOf(r.request), r.voice])).toEqual([['billing', 'sage']]);
    } else {
      expect(answers).toEqual([]);
    }
  }, 60_000);

  it('the caller speaking over a specialist mid-sentence stops it within 300 ms and is answered', async () => {
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
    expect(cut).toMatchObject({ agent: 'billing', voice: 'sage', interrupted: true });
    expect(cut.endMs - voiceAt).toBeLessThanOrEqual(BARGE_IN_MS);
    expect(c.agentsLevel(voiceAt + BARGE_IN_MS, voiceAt + BARGE_IN_MS + 300)).toBeLessThan(50);

    await c.until(
      () => c.observed.some((e) => e.type === 'say' && e.text.includes(SORRY)),
      'an answer to the words',
      30_000,
    );
    await c.until(() => c.call.idle, 'the call settling');
    expect(c.call.call.bridge.state).toBe('billing');
    const answer = c.audio().at(-1)!;
    expect(answer).toMatchObject({ agent: 'billing', voice: 'sage', interrupted: false });
    expect(answer.startMs).toBeGreaterThan(cut.endMs);
    // The server stopped generating the long answer: it was cancelled, not played out unheard.
    const long = c.call.server.responses.find((r) => r.text === PLAN);
    expect(long?.status).toBe('cancelled');
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
});
