/**
 * Turn-taking in audio, in one call through the production pipeline: the caller speaking over
 * a handoff's bridge line, over a specialist mid-sentence, and hanging up mid-sentence.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { handoffTo } from './fakes/model.js';
import { type VoiceTestCall, describeWithSpeech, startVoiceTestCall } from './speech.js';
import { agentOf } from '../src/models/offlineBrain.js';

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

describeWithSpeech('turn-taking in a voice call', () => {
  let c: VoiceTestCall;

  beforeAll(async () => {
    c = await startVoiceTestCall({
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
    expect(bridgeLine).toMatchObject({ agent: 'reception', voice: 'alloy', interrupted: true });
    expect(bridgeLine.endMs).toBeGreaterThan(startMs); // it was playing when the caller began
    expect(bridgeLine.endMs - voiceAt).toBeLessThanOrEqual(BARGE_IN_MS);
    expect(c.agentsLevel(voiceAt + BARGE_IN_MS, voiceAt + BARGE_IN_MS + 300)).toBeLessThan(50);

    // Recognised by the speech server; then whatever the session makes of it has played.
    await c.onLine(
      () => c.call.server.heard.some((h) => h.text === ONE_MORE),
      'the words recognised',
    );
    await c.until(() => c.call.idle, 'the call settling');
    expect(c.call.call.bridge.state).toBe('billing');
    const answers = c.observed.filter((e) => e.type === 'say' && e.text.includes(ONE_MORE));
    expect(answers).toEqual([
      { type: 'say', agent: 'billing', text: `billing heard: ${ONE_MORE}` },
    ]);
    // No request from reception ever carried the words; billing's did.
    const carrying = c.models
      .flatMap((m) => m.requests)
      .filter((r) => r.messages.some((m) => m.role === 'user' && m.text === ONE_MORE));
    expect(carrying.length).toBeGreaterThan(0);
    expect(carrying.map((r) => agentOf(r))).toEqual(carrying.map(() => 'billing'));
  }, 40_000);

  // Skipped for now: since 15:20 UTC on 2026-12-03 it fails on this machine even alone (the answer
  // after the barge-in is itself recorded as interrupted; the hang-up test shares the call). Cause
  // not found yet: the first thing to fix next session.
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
    expect(cut).toMatchObject({ agent: 'billing', interrupted: true });
    expect(cut.endMs - voiceAt).toBeLessThanOrEqual(BARGE_IN_MS);
    expect(c.agentsLevel(voiceAt + BARGE_IN_MS, voiceAt + BARGE_IN_MS + 300)).toBeLessThan(50);

    await c.onLine(() => c.call.server.heard.some((h) => h.text === SORRY), 'the words recognised');
    await c.until(() => c.call.idle, 'the call settling');
    expect(c.call.call.bridge.state).toBe('billing');
    const answer = c.audio().at(-1)!;
    expect(answer).toMatchObject({ agent: 'billing', interrupted: false });
    expect(answer.startMs).toBeGreaterThan(cut.endMs);
  }, 40_000);

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
  }, 40_000);

  /** Agent audio is on the line in the last tick. */
  function playing(): boolean {
    const now = c.call.line.nowMs();
    return c.agentsLevel(now - 20, now) > 0;
  }
});
