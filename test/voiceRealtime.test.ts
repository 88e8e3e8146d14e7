/**
 * What only MODEL_MODE=realtime has: the realtime model answers the caller on its own server, so
 * the reply guard watches its session (src/call/realtimeReplies.ts). The local speech server's
 * Realtime websocket is told to fail a response, or never to start one, and the caller must get
 * the same spoken recovery as in the pipeline: a retry that answers, or an apology.
 *
 * The call, handoff and turn-taking tests run in both model modes: test/voiceCall.test.ts and
 * test/voiceTurns.test.ts.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FIXED_LINE_PREFIX, LINES } from '../src/call/lines.js';
import { agentOf } from '../src/models/offlineBrain.js';
import type { ModelRequest } from '../src/models/scriptedLlm.js';
import type { RealtimeFault } from '../src/speech/realtimeConversation.js';
import { type SpeechServer, startSpeechServer } from '../src/speech/server.js';
import { scriptedBrain } from './fakes/model.js';
import { type VoiceTestCall, describeWithSpeech, startVoiceTestCall } from './speech.js';

const HOURS = 'what are your opening hours';
const SHOP = 'do you have a shop in town';
const HOURS_REPLY = 'We are open from nine to five. We are closed on sundays.';
const SHOP_REPLY = 'Yes, we have a shop on the high street.';

/** What the caller said last, when the model is asked to answer it (not to say a fixed line). */
function callerSaid(request: ModelRequest): string | undefined {
  const last = request.messages.at(-1);
  const fixedLine = request.instructions.includes(FIXED_LINE_PREFIX);
  return last?.role === 'user' && !fixedLine ? last.text : undefined;
}

/** The longest the caller may wait, after a line, before an agent speaks. */
const MAX_SILENCE_MS = 4_000;

describeWithSpeech('the reply guard in a realtime voice call', () => {
  let c: VoiceTestCall;
  let server: SpeechServer;
  /** Responses to HOURS failed so far. */
  let failedHours = 0;

  beforeAll(async () => {
    const script = { [HOURS]: { text: HOURS_REPLY }, [SHOP]: { text: SHOP_REPLY } };
    server = await startSpeechServer({
      phrases: Object.keys(script),
      realtime: {
        brain: scriptedBrain(script),
        fault: (request): RealtimeFault | undefined => {
          // The first answer to HOURS fails; no answer to SHOP ever starts.
          if (callerSaid(request) === HOURS && failedHours === 0) {
            failedHours++;
            return 'fail';
          }
          return callerSaid(request) === SHOP ? 'never-start' : undefined;
        },
      },
    });
    c = await startVoiceTestCall({
      realtime: true,
      script,
      speechServer: server,
      // Shorter deadlines and one retry keep the call short; the policy is the machine's. The
      // dead-air watch (test/deadAir.test.ts) would also report the silence, later: kept out.
      env: { FIRST_TOKEN_TIMEOUT_MS: '2000', MODEL_RETRIES: '1', DEAD_AIR_MS: '60000' },
    });
    await c.call.start();
  }, 30_000);
  afterAll(async () => {
    await c?.call.close();
    await server?.close();
  });

  it('a realtime response that fails is retried, and the caller is answered', async () => {
    const { endMs } = await c.call.speak(HOURS);
    await c.until(
      () => c.observed.some((e) => e.type === 'say' && e.text === HOURS_REPLY),
      'the answer after the retry',
      30_000,
    );
    await c.until(() => c.call.idle, 'the call settling');
    const statuses = c.call.server.responses
      .filter((r) => callerSaid(r.request) === HOURS)
      .map((r) => [agentOf(r.request), r.status, r.text]);
    expect(statuses).toEqual([
      ['reception', 'failed', undefined],
      ['reception', 'completed', HOURS_REPLY],
    ]);
    const reply = c.call.call.bridge.actor.getSnapshot().context.reply;
    expect(reply.failures.map((f) => [f.kind, f.decision])).toEqual([['http', 'retry']]);
    expect(reply.failedTurns).toBe(0);
    const answer = c.audio().at(-1)!;
    expect(answer).toMatchObject({ agent: 'reception', interrupted: false });
    expect(answer.startMs - endMs).toBeLessThan(MAX_SILENCE_MS);
  }, 60_000);

  it('a realtime response that never starts gets the apology, spoken', async () => {
    const apology = LINES.replyFailed('timeout');
    const { endMs } = await c.call.speak(SHOP);
    await c.until(
      () => c.observed.some((e) => e.type === 'say' && e.text === apology),
      'the apology',
      30_000,
    );
    await c.until(() => c.call.idle, 'the call settling');
    const reply = c.call.call.bridge.actor.getSnapshot().context.reply;
    expect(reply.failures.slice(1).map((f) => [f.kind, f.decision])).toEqual([
      ['timeout', 'retry'],
      ['timeout', 'apologise'],
    ]);
    expect(c.call.server.responses.filter((r) => r.status === 'never-started')).toHaveLength(2);
    // The apology was heard: played in reception's voice, within the bound of two deadlines.
    const apologyAudio = c.audio().at(-1)!;
    expect(apologyAudio).toMatchObject({
      agent: 'reception',
      voice: c.config.models.voices.reception,
      interrupted: false,
    });
    expect(apologyAudio.startMs - endMs).toBeLessThan(2 * 2000 + MAX_SILENCE_MS);
    expect(c.call.call.bridge.state).toBe('intent');
  }, 60_000);
});
