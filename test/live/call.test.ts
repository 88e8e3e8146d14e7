/**
 * A whole voice call against a real LiveKit server: the worker started as a user starts it
 * (`src/main.ts start`, cli.runApp) registers, takes an explicit dispatch, joins, and a caller
 * over WebRTC hears the greeting, billing, support and the goodbye, each agent in its own voice.
 */
import { dispose } from '@livekit/rtc-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeLive } from './gate.js';
import { type Rig, startRig } from './rig.js';

describeLive('live call over WebRTC', () => {
  let rig: Rig;

  beforeAll(async () => {
    rig = await startRig();
    await rig.startWorker();
  });
  afterAll(async () => {
    await rig?.close();
    await dispose();
  });

  it('greeting, billing, support and goodbye, each agent heard in its own voice', async () => {
    const dispatchedAt = await rig.dispatch('call-voice');
    const caller = await rig.joinCaller('call-voice');
    const greeting = await caller.waitForHeard((h) => h.agent === 'reception', 30_000, 'greeting');
    expect(greeting.line?.text).toMatch(/Thank you for calling Acme/);
    console.log('greeting heard after', Math.round(greeting.startedAt - dispatchedAt), 'ms');

    await caller.say('Hello, I have a question about my bill');
    const billing = await caller.waitForHeard((h) => h.agent === 'billing', 30_000, 'billing');
    console.log('billing heard after', Math.round(billing.startedAt - caller.lastSpeechEndedAt));
    await caller.say('Also the app keeps crashing when I open it');
    await caller.waitForHeard((h) => h.agent === 'support', 30_000, 'support');
    await caller.say('That is all, goodbye');
    await caller.waitForHeard((h) => /goodbye/i.test(h.line?.text ?? ''), 30_000, 'goodbye');
    await caller.agentLeft(10_000);
    console.log(caller.heard.map((h) => `${h.agent}: ${h.text}`));
  });
});
