/**
 * The console's offline model, through the real machine, agents, tools and bridge: everyday
 * lines a first caller types must lead somewhere, never to a dead end.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_KEYPAD } from '../src/call/keypad.js';
import { LINES } from '../src/call/lines.js';
import { offlineBrain } from '../src/models/offlineBrain.js';
import { ScriptedLLM } from '../src/models/scriptedLlm.js';
import { startTestCall } from './fakes/session.js';

const DIDNT_CATCH = /didn't catch that/;

async function offlineCall(options: Parameters<typeof startTestCall>[0] = {}) {
  return startTestCall({ llm: new ScriptedLLM(offlineBrain), keypad: DEFAULT_KEYPAD, ...options });
}

describe('the offline model', () => {
  it.each([
    ['my internet is down', 'support'],
    ['I want to cancel my account', 'billing'],
    ['billing... actually no, sales', 'sales'],
    ['I was charged twice and the app crashes', 'billing'],
  ])('takes "%s" to %s', async (line, department) => {
    const c = await offlineCall();
    await c.say(line);
    await c.until(() => c.bridge.speakingAgent === department, `${department} on the line`);
    expect(c.bridge.state).toBe(department);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('answers a plain hello like a receptionist, not with "didn\'t catch that"', async () => {
    const c = await offlineCall();
    await c.say('Hello');
    expect(c.said('reception').at(-1)).toMatch(/^Hello! How can I help you today\?/);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('asked for a person with nobody to take the call, says so and offers help', async () => {
    const c = await offlineCall();
    await c.say('can I talk to a person');
    expect(c.said('reception').at(-1)).toMatch(/can't put you through to a person/);
    expect(c.said('reception').at(-1)).not.toMatch(DIDNT_CATCH);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('asked for a person where a number is configured, transfers', async () => {
    const transfers: string[] = [];
    const c = await offlineCall({
      telephony: { transferCaller: async (to) => void transfers.push(to) },
      humanNumbers: { reception: '+15550100000' },
    });
    await c.say('can I talk to a person');
    expect((await c.bridge.done).reason).toBe('transferred');
    expect(transfers).toEqual(['+15550100000']);
  });

  it('ends the call on "no" after "anything else?", instead of repeating itself', async () => {
    const c = await offlineCall();
    await c.say('I was charged twice');
    await c.until(() => c.said('billing').length > 0, 'billing');
    expect(c.said('billing').at(-1)).toMatch(/anything else\?$/);
    await c.say('no');
    expect((await c.bridge.done).reason).toBe('caller has nothing else');
  });

  it('back at reception, opens without a garbled reason', async () => {
    const c = await offlineCall();
    await c.say('I was charged twice');
    await c.until(() => c.bridge.speakingAgent === 'billing', 'billing');
    await c.say('wrong department, take me back to reception');
    await c.until(() => c.bridge.state === 'intent' && c.said('reception').length > 2, 'reception');
    const opening = c.said('reception').at(-1)!;
    expect(opening).toMatch(/^Hi, this is reception again\./);
    expect(opening).not.toMatch(/calling about the caller asked/);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('at the handoff cap says only the refusal, with no bridge line before it', async () => {
    const c = await offlineCall({ maxHandoffs: 1 });
    await c.say('I was charged twice');
    await c.until(() => c.bridge.speakingAgent === 'billing', 'billing');
    const before = c.said('billing').length;
    await c.say('I also want to upgrade my plan');
    expect(c.said('billing').slice(before)).toEqual([
      "I can't transfer you again, but I can help with billing myself.",
    ]);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('answers a key that does nothing with the keys that do', async () => {
    const c = await offlineCall();
    c.bridge.keypad('5');
    await c.bridge.settled();
    expect(c.said('reception').at(-1)).toBe(LINES.unknownKey(DEFAULT_KEYPAD));
    c.bridge.callerHungUp();
    await c.bridge.done;
  });
});
