/**
 * Speech provider faults on the live path: the worker (compiled, cli.runApp) takes calls over
 * WebRTC through RoomIO while the local speech server follows a fault script per call, and the
 * caller recognises what it hears. One worker takes the three calls:
 *
 * - the realtime transcription websocket is refused: the greeting is heard in full and the
 *   caller's sentences are answered through the HTTP transcription endpoint (before the
 *   fallbacks the session closed with `stt_error` and the caller heard nothing);
 * - the websocket closes after the caller's first sentence: the next one is still answered;
 * - one sentence's speech request gets a 500: the fallback voice speaks it, whole.
 *
 * Each call: what the caller hears, the machine's path (the worker's JSON log) and one `end`.
 */
import { dispose } from '@livekit/rtc-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type SpeechFaultScript, speechFaults } from '../speechFaults.js';
import { type Caller } from './caller.js';
import { describeLive } from './gate.js';
import { type LogLine, type Rig, type WorkerProcess, startRig } from './rig.js';

describeLive('speech faults on a live worker', () => {
  const faults = speechFaults();
  let rig: Rig;
  let worker: WorkerProcess;

  beforeAll(async () => {
    rig = await startRig({ speechHooks: faults.hooks });
    faults.watch(rig.speech);
    // The header deadline is not under test, and this shared machine synthesises slowly.
    worker = await rig.startWorker({ env: { SPEECH_TIMEOUT_MS: '10000' } });
  });
  afterAll(async () => {
    await rig?.close();
    await dispose();
  });

  /** A new call under `script`: dispatched, the caller joined, the greeting heard. */
  async function callWith(room: string, script: SpeechFaultScript) {
    faults.setScript(script);
    const heardFrom = rig.speech.heard.length;
    await rig.dispatch(room);
    const caller = await rig.joinCaller(room);
    await caller.waitForHeard((h) => h.agent === 'reception', 30_000, `${room}: greeting`);
    // The greeting has played out (every sentence of it synthesised): the machine moved on.
    await worker.waitForLog(
      (l) => l.msg === 'call state changed' && l.room === room && l.from === 'greeting',
      30_000,
      `${room}: greeting played out`,
      true,
    );
    return { caller, heardFrom };
  }

  /** The caller says goodbye, hears it, and the agent leaves. */
  async function goodbye(caller: Caller) {
    await caller.say('That is all, goodbye');
    await caller.waitForHeard((h) => /goodbye/i.test(h.line?.text ?? ''), 30_000, 'goodbye');
    await caller.agentLeft(10_000);
  }

  const logsOf = (room: string, msg: string): LogLine[] =>
    worker.logs.filter((l) => l.msg === msg && l.room === room);

  /** The machine's states, in order, from the worker's log of that call. */
  function path(room: string): string[] {
    const changes = logsOf(room, 'call state changed');
    return changes.length === 0
      ? []
      : [changes[0]!.from as string, ...changes.map((c) => c.to as string)];
  }

  /** The event that took the machine out of the greeting. */
  const greetingOutcome = (room: string) =>
    logsOf(room, 'call state changed').find((c) => c.from === 'greeting')?.event;

  /** Exactly one `end`, logged once the job is over. */
  async function endedOnce(room: string) {
    await worker.waitForLog(
      (l) => l.msg === 'call end observed' && l.room === room,
      10_000,
      `${room}: the call's end`,
      true,
    );
    return logsOf(room, 'call end observed').map((l) => l.reason);
  }

  it('the transcription websocket is refused: the whole greeting, then every sentence through HTTP', async () => {
    const room = 'speech-refused';
    const { caller, heardFrom } = await callWith(room, { refuseRealtime: true });
    const greeting = caller.heard.find((h) => h.agent === 'reception')!;
    expect(greeting.line?.text).toMatch(/Thank you for calling Acme/);

    await caller.say('Hello, I have a question about my bill');
    await caller.waitForHeard((h) => h.agent === 'billing', 30_000, 'billing answers');
    await goodbye(caller);

    expect(faults.served.filter((f) => f.fault === 'refused').length).toBeGreaterThan(0);
    expect(rig.speech.heard.slice(heardFrom).map((h) => [h.via, h.text])).toEqual([
      ['transcriptions', 'hello i have a question about my bill'],
      ['transcriptions', 'that is all goodbye'],
    ]);
    // The greeting played to its end before anything else happened.
    expect(greetingOutcome(room)).toBe('greeting.spoken');
    expect(logsOf(room, 'speech provider failed')[0]).toMatchObject({ kind: 'stt' });
    expect(path(room)).toEqual(['greeting', 'intent', 'billing', 'ended']);
    expect(await endedOnce(room)).toEqual(['caller said goodbye']);
  });

  it('the transcription websocket closes after the first sentence: the next is still answered', async () => {
    const room = 'speech-closed';
    const { caller, heardFrom } = await callWith(room, { closeRealtimeAfter: 1 });
    await caller.say('Hello, I have a question about my bill');
    await caller.waitForHeard((h) => h.agent === 'billing', 30_000, 'billing answers');
    await goodbye(caller);

    expect(faults.served).toContainEqual({ route: 'realtime', fault: 'closed' });
    const heard = rig.speech.heard.slice(heardFrom);
    expect(heard[0]).toMatchObject({
      via: 'realtime',
      text: 'hello i have a question about my bill',
    });
    // The adapter probes the websocket again with live audio; the call hears through HTTP.
    expect(heard.filter((h) => h.via === 'transcriptions').map((h) => h.text)).toEqual([
      'that is all goodbye',
    ]);
    expect(logsOf(room, 'speech provider failed')[0]).toMatchObject({
      kind: 'stt',
      reason: 'closed',
    });
    expect(path(room)).toEqual(['greeting', 'intent', 'billing', 'ended']);
    expect(await endedOnce(room)).toEqual(['caller said goodbye']);
  });

  it("a sentence's speech request fails: the fallback voice speaks it, whole", async () => {
    const room = 'speech-tts-500';
    const { caller } = await callWith(room, {});
    faults.arm('http-500');
    await caller.say('Hello, can you hear me');
    const asked = caller.lastSpeechEndedAt;
    // The caller hears the refused sentence, in reception's voice, after their line.
    const refused = (text: string | undefined) =>
      faults.served.some((f) => f.fault === 'http-500' && text !== undefined && f.text === text);
    await caller.waitForHeard(
      (h) => h.startedAt > asked && h.agent === 'reception' && refused(h.line?.text),
      30_000,
      'the sentence refused with a 500',
    );
    await goodbye(caller);

    expect(faults.served.filter((f) => f.route === 'speech')).toHaveLength(1);
    expect(logsOf(room, 'speech provider failed')[0]).toMatchObject({
      kind: 'tts',
      reason: 'http',
      remaining: 1,
    });
    expect(path(room)).toEqual(['greeting', 'intent', 'ended']);
    expect(await endedOnce(room)).toEqual(['caller said goodbye']);
  });
});
