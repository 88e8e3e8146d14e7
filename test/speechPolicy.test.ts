/**
 * The speech-health policy as pure transitions: what the machine decides when the ears or the
 * voice fail. Effects are provided as recorders, the way the bridge provides the real ones.
 */
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import {
  type AgentName,
  type CallEvent,
  callMachine,
  callStateOf,
} from '../machines/callMachine.js';

function call(humanTransfers: AgentName[] = []) {
  const effects: string[] = [];
  const machine = callMachine.provide({
    actions: {
      reportHearingTrouble: () => effects.push('reportHearingTrouble'),
      hearingRestored: () => effects.push('hearingRestored'),
      transferCall: () => effects.push('transferCall'),
      endCall: (_, { reason, farewell }) => effects.push(`endCall ${reason} ${farewell}`),
    },
  });
  const actor = createActor(machine, { input: { humanTransfers } }).start();
  const send = (...events: CallEvent[]) => events.forEach((event) => actor.send(event));
  send({ type: 'call.started' }, { type: 'greeting.spoken' });
  return { actor, effects, send, state: () => callStateOf(actor.getSnapshot()) };
}

const sttDown: CallEvent = { type: 'speech.failed', kind: 'stt', reason: 'http', remaining: 0 };

describe('speech health', () => {
  it('records a provider lost with a fallback left, and nothing else', () => {
    const c = call();
    c.send({ type: 'speech.failed', kind: 'stt', reason: 'refused', remaining: 1 });
    expect(c.effects).toEqual([]);
    expect(c.state()).toBe('intent');
    expect(c.actor.getSnapshot().context.speech.failures).toMatchObject([
      { agent: 'reception', kind: 'stt', reason: 'refused', remaining: 1 },
    ]);
  });

  it('says once that it has trouble hearing, however often recognition fails', () => {
    const c = call();
    c.send(sttDown, sttDown, sttDown);
    expect(c.effects).toEqual(['reportHearingTrouble']);
    expect(c.actor.getSnapshot().context.speech.hearingLost).toBe(true);
  });

  it('takes the keypad while recognition is down', () => {
    const c = call();
    c.send(sttDown, {
      type: 'handoff.requested',
      department: 'billing',
      reason: 'key 1',
      summary: '',
    });
    expect(c.state()).toBe('billing');
  });

  it('forgets the outage when recognition is back; a late time-out then does nothing', () => {
    const c = call();
    c.send(
      sttDown,
      { type: 'speech.recovered', kind: 'stt' },
      { type: 'speech.timedOut', kind: 'stt' },
    );
    expect(c.effects).toEqual(['reportHearingTrouble', 'hearingRestored']);
    expect(c.state()).toBe('intent');
  });

  it('after the outage bound, says goodbye and ends speech-unavailable (no person configured)', () => {
    const c = call();
    c.send(sttDown, { type: 'speech.timedOut', kind: 'stt' });
    expect(c.effects.at(-1)).toBe('endCall speech-unavailable true');
    expect(c.actor.getSnapshot().context.endReason).toBe('speech-unavailable');
  });

  it('after the outage bound, transfers to a person where one is configured', () => {
    const c = call(['reception']);
    c.send(sttDown, { type: 'speech.timedOut', kind: 'stt' });
    expect(c.state()).toBe('transferring');
    expect(c.actor.getSnapshot().context.transfer).toMatchObject({
      from: 'reception',
      cause: 'speech-unavailable',
    });
  });

  it('with no voice left, ends without a goodbye, or transfers where configured', () => {
    const noVoice: CallEvent = { type: 'speech.failed', kind: 'tts', reason: 'http', remaining: 0 };
    const alone = call();
    alone.send(noVoice);
    expect(alone.effects.at(-1)).toBe('endCall speech-unavailable false');
    const staffed = call(['reception']);
    staffed.send(noVoice);
    expect(staffed.state()).toBe('transferring');
  });
});
