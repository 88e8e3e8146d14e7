/**
 * Speech provider faults in voice calls, through the production pipeline (openai.STT and
 * openai.TTS inside the SDK's fallback adapters, Silero VAD, the machine and bridge) against
 * the local speech server with a fault script per request. Each call checks what the caller
 * hears and when (no silence over 2 s after a caller line before an agent speaks), the
 * machine's path and one clean `end`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LINES } from '../src/call/lines.js';
import { handoffTo, call as toolCall } from './fakes/model.js';
import { type VoiceTestCall, describeWithSpeech, startVoiceTestCall } from './speech.js';
import {
  type FaultyServer,
  type SpeechFaultScript,
  startFaultySpeechServer,
} from './speechFaults.js';
import { type ScriptEntry } from './fakes/model.js';

const CHARGED = 'hi i was charged twice for my subscription this month';
const BYE = 'thanks that fixed it bye';
const HOURS = 'what are your opening hours';
const SHOP = 'do you have a shop in town';
const CARD = 'can i pay by card';
const HOURS_REPLY = 'We are open from nine to five. We are closed on sundays.';
const SHOP_REPLY = 'Yes, we have a shop on the high street. It opens at ten.';
const CARD_REPLY = 'Yes, you can pay by card. We also take cash.';

/** The longest the caller may wait, after a line, before an agent speaks. */
const MAX_SILENCE_MS = 2_000;

interface FaultCall {
  c: VoiceTestCall;
  faults: FaultyServer;
}

async function startFaultCall(
  script: Record<string, ScriptEntry>,
  faultScript: SpeechFaultScript,
  env: NodeJS.ProcessEnv = {},
): Promise<FaultCall> {
  const faults = await startFaultySpeechServer(Object.keys(script), faultScript);
  // The header deadline is not under test here, and a loaded CI machine synthesises slowly.
  const settings = { SPEECH_TIMEOUT_MS: '10000', ...env };
  const c = await startVoiceTestCall({ script, env: settings, speechServer: faults.server });
  return { c, faults };
}

async function closeFaultCall(call: FaultCall | undefined): Promise<void> {
  if (!call) return;
  await call.c.call.close();
  await call.faults.server.close();
}

/** For each caller line, how long until the next agent audio started (Infinity if none). */
function silencesAfterCaller(c: VoiceTestCall): number[] {
  return c.speech().map((line) => {
    const next = c.audio().find((audio) => audio.startMs >= line.endMs);
    return next ? next.startMs - line.endMs : Infinity;
  });
}

function expectNoLongSilence(c: VoiceTestCall): void {
  const silences = silencesAfterCaller(c);
  expect(
    Math.max(...silences),
    `silences after caller lines: ${silences.join(', ')} ms`,
  ).toBeLessThanOrEqual(MAX_SILENCE_MS);
}

function context(c: VoiceTestCall) {
  return c.call.call.bridge.actor.getSnapshot().context;
}

function ends(c: VoiceTestCall) {
  return c.observed.filter((e) => e.type === 'end');
}

describeWithSpeech('speech faults in a voice call', () => {
  describe('the realtime transcription websocket is refused from the start', () => {
    let call: FaultCall;
    beforeAll(async () => {
      call = await startFaultCall(
        {
          [CHARGED]: { toolCalls: [handoffTo('billing', 'a double charge')] },
          [BYE]: { toolCalls: [toolCall('end_call', { reason: 'caller said goodbye' })] },
        },
        { refuseRealtime: true },
      );
      await call.c.call.start();
      for (const line of [CHARGED, BYE]) await call.c.call.say(line);
      await call.c.call.done;
    }, 90_000);
    afterAll(() => closeFaultCall(call));

    it('hears the whole greeting and every line through the HTTP endpoint instead', () => {
      const { c, faults } = call;
      expect(c.audio()[0]).toMatchObject({ agent: 'reception', interrupted: false });
      expect(context(c).greeting).toBe('spoken');
      expect(c.speech().map((s) => s.heard)).toEqual([CHARGED, BYE]);
      expect(faults.server.heard.map((h) => h.via)).toEqual(['transcriptions', 'transcriptions']);
      expect(faults.served.some((f) => f.fault === 'refused')).toBe(true);
      expect(context(c).speech.failures[0]).toMatchObject({ kind: 'stt', remaining: 1 });
    });

    it('answers every line within 2 s and ends once, as the caller asked', () => {
      const { c } = call;
      expectNoLongSilence(call.c);
      expect(c.states()).toEqual(['greeting', 'intent', 'billing', 'ended']);
      expect(ends(c)).toEqual([{ type: 'end', reason: 'caller said goodbye' }]);
    });
  });

  describe('the realtime transcription websocket closes after the first utterance', () => {
    let call: FaultCall;
    beforeAll(async () => {
      call = await startFaultCall(
        {
          [CHARGED]: { toolCalls: [handoffTo('billing', 'a double charge')] },
          [BYE]: { toolCalls: [toolCall('end_call', { reason: 'caller said goodbye' })] },
        },
        { closeRealtimeAfter: 1 },
      );
      await call.c.call.start();
      for (const line of [CHARGED, BYE]) await call.c.call.say(line);
      await call.c.call.done;
    }, 90_000);
    afterAll(() => closeFaultCall(call));

    it("hears the caller's next sentence after the websocket closed", () => {
      const { c, faults } = call;
      expect(faults.served).toContainEqual({ route: 'realtime', fault: 'closed' });
      expect(c.speech().map((s) => s.heard)).toEqual([CHARGED, BYE]);
      // The adapter probes the websocket again with live audio; the call hears through HTTP.
      expect(faults.server.heard[0]).toMatchObject({ via: 'realtime', text: CHARGED });
      const overHttp = faults.server.heard.filter((h) => h.via === 'transcriptions');
      expect(overHttp.map((h) => h.text)).toEqual([BYE]);
      expect(context(c).speech.failures[0]).toMatchObject({
        kind: 'stt',
        reason: 'closed',
        remaining: 1,
      });
    });

    it('answers every line within 2 s and ends once', () => {
      const { c } = call;
      expectNoLongSilence(c);
      expect(c.states()).toEqual(['greeting', 'intent', 'billing', 'ended']);
      expect(ends(c)).toEqual([{ type: 'end', reason: 'caller said goodbye' }]);
    });
  });

  describe('recognition is down (websocket refused, HTTP transcription 500)', () => {
    let call: FaultCall;
    beforeAll(async () => {
      call = await startFaultCall(
        { [CHARGED]: { toolCalls: [handoffTo('billing', 'a double charge')] } },
        { refuseRealtime: true, transcriptionStatus: 500 },
        { SPEECH_OUTAGE_MS: '9000' },
      );
      const { c } = call;
      await c.call.start();
      await c.call.speak(CHARGED);
      await c.call.until(() =>
        c.observed.some((e) => e.type === 'say' && e.text === LINES.hearingTrouble),
      );
      await c.call.waitIdle();
      // The keypad still works while nothing is heard.
      await c.call.say('[1]');
      await c.call.done;
    }, 90_000);
    afterAll(() => closeFaultCall(call));

    it('says once, within 2 s of the caller, that it has trouble hearing', () => {
      const { c } = call;
      const lines = c.observed.filter((e) => e.type === 'say').map((e) => e.text);
      expect(lines.filter((text) => text === LINES.hearingTrouble)).toHaveLength(1);
      expect(silencesAfterCaller(c)[0]).toBeLessThanOrEqual(MAX_SILENCE_MS);
      expect(context(c).speech.failures.at(-1)).toMatchObject({ kind: 'stt', remaining: 0 });
    });

    it('takes the keypad, then says goodbye after SPEECH_OUTAGE_MS and ends speech-unavailable', () => {
      const { c } = call;
      expect(c.states()).toEqual(['greeting', 'intent', 'billing', 'ended']);
      expect(c.audio().at(-1), JSON.stringify(c.audio())).toMatchObject({
        agent: 'billing',
        interrupted: false,
      });
      const lines = c.observed.filter((e) => e.type === 'say').map((e) => e.text);
      expect(lines.at(-1)).toBe(LINES.speechUnavailable(c.config.companyName));
      expect(ends(c)).toEqual([{ type: 'end', reason: 'speech-unavailable' }]);
    });
  });

  describe('a speech request fails or stalls for one sentence', () => {
    let call: FaultCall;
    const turns: { line: string; reply: string; atMs: number }[] = [];
    beforeAll(async () => {
      call = await startFaultCall(
        {
          [HOURS]: { text: HOURS_REPLY },
          [SHOP]: { text: SHOP_REPLY },
          [CARD]: { text: CARD_REPLY },
        },
        {},
      );
      const { c, faults } = call;
      await c.call.start();
      for (const [line, reply, fault] of [
        [HOURS, HOURS_REPLY, 'http-500'],
        [SHOP, SHOP_REPLY, 'http-429'],
        [CARD, CARD_REPLY, 'stall'],
      ] as const) {
        await c.call.waitIdle();
        turns.push({ line, reply, atMs: Date.now() });
        faults.arm(fault);
        await c.call.say(line);
      }
      await c.call.close();
    }, 90_000);
    afterAll(() => closeFaultCall(call));

    it('speaks every sentence of every reply (the fallback voice takes the failed one)', () => {
      const { faults } = call;
      expect(faults.served.map((f) => f.fault)).toEqual(['http-500', 'http-429', 'stall']);
      const spoken = faults.server.spoken.map((s) => s.text);
      for (const { reply } of turns) {
        for (const sentence of reply.match(/[^.]+\./g)!) expect(spoken).toContain(sentence.trim());
      }
    });

    it('keeps each reply whole in the transcript and answers within 2 s', () => {
      const { c } = call;
      const lines = c.observed.filter((e) => e.type === 'say').map((e) => e.text);
      for (const { reply } of turns) expect(lines).toContain(reply);
      expect(c.speech().map((s) => s.heard)).toEqual([HOURS, SHOP, CARD]);
      expectNoLongSilence(c);
      expect(c.audio().every((a) => !a.interrupted)).toBe(true);
    });

    it('records each failed voice in the machine, with a fallback left, and ends once', () => {
      const { c } = call;
      const failures = context(c).speech.failures.map(({ kind, reason, remaining }) => ({
        kind,
        reason,
        remaining,
      }));
      expect(failures).toEqual([
        { kind: 'tts', reason: 'http', remaining: 1 },
        { kind: 'tts', reason: 'http', remaining: 1 },
        { kind: 'tts', reason: 'timeout', remaining: 1 },
      ]);
      expect(c.states()).toEqual(['greeting', 'intent', 'ended']);
      expect(ends(c)).toEqual([{ type: 'end', reason: 'caller-hung-up' }]);
    });
  });

  describe('no voice can speak at all', () => {
    let call: FaultCall;
    let callerLineAtMs = 0;
    beforeAll(async () => {
      call = await startFaultCall({ [HOURS]: { text: HOURS_REPLY } }, {});
      const { c, faults } = call;
      await c.call.start();
      faults.arm('http-500', Number.POSITIVE_INFINITY);
      const { endMs } = await c.call.speak(HOURS);
      callerLineAtMs = endMs;
      await c.call.done;
    }, 90_000);
    afterAll(() => closeFaultCall(call));

    it('ends the call with speech-unavailable instead of an open line with nobody talking', () => {
      const { c } = call;
      const ended = c.call.events.find((e) => e.type === 'ended')!;
      expect(ended.atMs - callerLineAtMs).toBeLessThan(5_000);
      expect(c.states()).toEqual(['greeting', 'intent', 'ended']);
      expect(context(c).speech.failures.at(-1)).toMatchObject({ kind: 'tts', remaining: 0 });
      expect(ends(c)).toEqual([{ type: 'end', reason: 'speech-unavailable' }]);
    });
  });
});
