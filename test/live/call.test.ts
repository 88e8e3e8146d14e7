/**
 * Whole voice calls against a real LiveKit server: the worker started as `npm start` starts it
 * (compiled, cli.runApp) registers, takes an explicit dispatch, joins, and a caller over WebRTC
 * hears the greeting, billing (a handoff, then a plain turn), support and the goodbye, each agent
 * in its own voice; the agent leaves after the goodbye. The timings go to bench/live-figures.json.
 */
import { dispose } from '@livekit/rtc-node';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { ms, recordFigures } from './figures.js';
import { describeLive } from './gate.js';
import { type Rig, startRig } from './rig.js';

describeLive('live call over WebRTC', () => {
  let rig: Rig;

  beforeAll(async () => {
    rig = await startRig();
    await rig.startWorker();
  });
  // A failure in CI shows what the worker did.
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      process.stderr.write(`worker log:\n${rig.workerLogs(120)}\n`);
    });
  });
  afterAll(async () => {
    await rig?.close();
    await dispose();
  });

  it('the first call after the start: greeting, billing, a plain turn, support, goodbye, each in its own voice', async () => {
    const requestsBefore = rig.model.requests.length;
    const dispatchedAt = await rig.dispatch('call-voice-1');
    const caller = await rig.joinCaller('call-voice-1');
    const greeting = await caller.waitForHeard((h) => h.agent === 'reception', 30_000, 'greeting');
    expect(greeting.line?.text).toMatch(/Thank you for calling Acme/);

    await caller.say('Hello, I have a question about my bill');
    const billingAsked = caller.lastSpeechEndedAt;
    const billing = await caller.waitForHeard((h) => h.agent === 'billing', 30_000, 'billing');
    const firstReply = caller.heard.find((h) => h.startedAt > billingAsked)!;

    await caller.say('I was charged twice this month');
    const plainAsked = caller.lastSpeechEndedAt;
    const plain = await caller.waitForHeard(
      (h) => h.agent === 'billing' && h.startedAt > plainAsked,
      30_000,
      'billing answers a plain turn',
    );

    await caller.say('Also the app keeps crashing when I open it');
    const supportAsked = caller.lastSpeechEndedAt;
    const support = await caller.waitForHeard((h) => h.agent === 'support', 30_000, 'support');

    await caller.say('That is all, goodbye');
    const goodbye = await caller.waitForHeard(
      (h) => /goodbye/i.test(h.line?.text ?? ''),
      30_000,
      'goodbye',
    );
    expect(goodbye.agent).toBe('support'); // said in the voice of the agent the caller is with
    await caller.agentLeft(10_000);
    // Each agent was heard in its own voice, in this order.
    const order = caller.heard.map((h) => h.agent).filter((a, i, all) => a !== all[i - 1]);
    const heard = caller.heard.map((h) => `${h.agent}: ${h.line?.text ?? h.text}`).join(' | ');
    expect(order, heard).toEqual(['reception', 'billing', 'support']);

    // Tools derive from the machine: no specialist is offered a handoff to its own department
    // (which the machine would refuse, costing the caller a model turn).
    const selfHandoffsOffered = rig.model.requests.slice(requestsBefore).filter((request) => {
      const self = /You are the (billing|support|sales) specialist/.exec(
        JSON.stringify(request.messages.filter((m) => m.role === 'system')),
      )?.[1];
      return request.tools?.some((t) => t.function.name === `pass_control_to_${self}`);
    }).length;

    recordFigures('first call after start (voice call)', {
      dispatchToGreetingHeardMs: ms(greeting.startedAt - dispatchedAt),
      handoffToBilling: {
        callerEndOfSpeechToFirstWordsMs: ms(firstReply.startedAt - billingAsked),
        callerEndOfSpeechToBillingVoiceMs: ms(billing.startedAt - billingAsked),
      },
      plainTurnCallerEndOfSpeechToReplyMs: ms(plain.startedAt - plainAsked),
      handoffToSupportCallerEndOfSpeechToSupportVoiceMs: ms(support.startedAt - supportAsked),
      modelRequests: rig.model.requests.length - requestsBefore,
      requestsOfferingSelfHandoff: selfHandoffsOffered,
      callerRecognitionLagMaxMs: ms(caller.recognitionLagMs),
    });
    expect(selfHandoffsOffered).toBe(0);
  });

  it('a later call: the greeting is heard again from a warm worker', async () => {
    const requestsBefore = rig.model.requests.length;
    const dispatchedAt = await rig.dispatch('call-voice-2');
    const caller = await rig.joinCaller('call-voice-2');
    const greeting = await caller.waitForHeard((h) => h.agent === 'reception', 30_000, 'greeting');
    await caller.say('That is all, goodbye');
    await caller.waitForHeard((h) => /goodbye/i.test(h.line?.text ?? ''), 30_000, 'goodbye');
    await caller.agentLeft(10_000);
    recordFigures('later call (voice call)', {
      dispatchToGreetingHeardMs: ms(greeting.startedAt - dispatchedAt),
      modelRequests: rig.model.requests.length - requestsBefore,
    });
  });
});
