import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import {
  CALL_MACHINE_VERSION,
  DEFAULT_MAX_HANDOFFS,
  END_REASON_HUNG_UP,
  callMachine,
  callStateOf,
  type AgentName,
  type CallEvent,
} from '../machines/callMachine.js';
import { sendAndDecide } from '../machines/decide.js';
import { acceptedRequests } from '../machines/offers.js';

function startCall(maxHandoffs?: number) {
  const actor = createActor(callMachine, {
    input: maxHandoffs === undefined ? {} : { maxHandoffs },
  });
  actor.start();
  return actor;
}

const toBilling: CallEvent = {
  type: 'handoff.requested',
  department: 'billing',
  reason: 'double charge',
  summary: 'Caller was charged twice in March.',
};
const handoff = (department: 'billing' | 'support' | 'sales', turnId?: string): CallEvent => ({
  type: 'handoff.requested',
  department,
  reason: `${department} question`,
  summary: `Caller needs ${department}.`,
  ...(turnId === undefined ? {} : { turnId }),
});

describe('call machine', () => {
  it('starts in greeting, records the caller and moves to intent once the greeting is spoken', () => {
    const actor = startCall();
    expect(callStateOf(actor.getSnapshot())).toBe('greeting');
    actor.send({ type: 'call.started', caller: { number: '+919876543210' } });
    expect(actor.getSnapshot().context.caller).toEqual({ number: '+919876543210' });
    actor.send({ type: 'greeting.spoken' });
    expect(callStateOf(actor.getSnapshot())).toBe('intent');
  });

  it('greets once: a second call.started is ignored', () => {
    const greetings: string[] = [];
    const machine = callMachine.provide({
      actions: { greetCaller: () => void greetings.push('hi') },
    });
    const actor = createActor(machine, { input: {} }).start();
    actor.send({ type: 'call.started', caller: { number: '+1555' } });
    actor.send({ type: 'call.started', caller: { number: '+1666' } });
    expect(greetings).toHaveLength(1);
    expect(actor.getSnapshot().context.caller).toEqual({ number: '+1555' });
  });

  it('hands off from reception to a department and logs from, to, reason and summary', () => {
    const actor = startCall();
    actor.send({ type: 'greeting.spoken' });
    expect(sendAndDecide(actor, toBilling)).toEqual({ accepted: true, state: 'billing' });
    const [record] = actor.getSnapshot().context.handoffs;
    expect(record).toMatchObject({
      from: 'reception',
      to: 'billing',
      reason: 'double charge',
      summary: 'Caller was charged twice in March.',
    });
    expect(typeof record?.at).toBe('number');
  });

  it('accepts a handoff while reception is still greeting (the caller spoke first)', () => {
    const actor = startCall();
    expect(sendAndDecide(actor, handoff('sales')).accepted).toBe(true);
    expect(callStateOf(actor.getSnapshot())).toBe('sales');
  });

  it('lets a specialist hand over to another specialist', () => {
    const actor = startCall();
    actor.send(handoff('billing'));
    expect(sendAndDecide(actor, handoff('support'))).toEqual({ accepted: true, state: 'support' });
    expect(actor.getSnapshot().context.handoffs.map((h) => [h.from, h.to])).toEqual([
      ['reception', 'billing'],
      ['billing', 'support'],
    ]);
  });

  it('lets a specialist return the caller to reception (listening, not greeting again)', () => {
    const actor = startCall();
    actor.send(handoff('support'));
    const decision = sendAndDecide(actor, {
      type: 'reception.requested',
      reason: 'not a support issue',
      summary: 'Caller wants something else.',
    });
    expect(decision).toEqual({ accepted: true, state: 'intent' });
    expect(actor.getSnapshot().context.handoffs.at(-1)).toMatchObject({
      from: 'support',
      to: 'reception',
    });
  });

  describe('guard: no handoff to the active department', () => {
    it('refuses billing -> billing and keeps the state', () => {
      const actor = startCall();
      actor.send(handoff('billing'));
      const decision = sendAndDecide(actor, handoff('billing'));
      expect(decision).toMatchObject({
        accepted: false,
        state: 'billing',
        code: 'same-department',
      });
      expect(actor.getSnapshot().context.handoffs).toHaveLength(1);
      expect(actor.getSnapshot().context.refusals).toMatchObject([
        { code: 'same-department', request: 'handoff', from: 'billing', to: 'billing' },
      ]);
    });

    it('allows billing -> sales', () => {
      const actor = startCall();
      actor.send(handoff('billing'));
      expect(sendAndDecide(actor, handoff('sales')).accepted).toBe(true);
    });
  });

  describe('guard: handoff cap', () => {
    it(`defaults to ${DEFAULT_MAX_HANDOFFS} handoffs, then refuses`, () => {
      const actor = startCall();
      const route = ['billing', 'support', 'sales', 'billing'] as const;
      for (const d of route) expect(sendAndDecide(actor, handoff(d)).accepted).toBe(true);
      const decision = sendAndDecide(actor, handoff('support'));
      expect(decision).toMatchObject({ accepted: false, state: 'billing', code: 'handoff-cap' });
      expect(actor.getSnapshot().context.handoffs).toHaveLength(4);
    });

    it('is configurable and counts returns to reception', () => {
      const actor = startCall(2);
      actor.send(handoff('billing'));
      actor.send({ type: 'reception.requested', reason: 'r', summary: 's' });
      expect(callStateOf(actor.getSnapshot())).toBe('intent');
      expect(sendAndDecide(actor, handoff('sales'))).toMatchObject({
        accepted: false,
        code: 'handoff-cap',
      });
      expect(callStateOf(actor.getSnapshot())).toBe('intent');
    });

    it('allows the handoff just under the cap', () => {
      const actor = startCall(2);
      actor.send(handoff('billing'));
      expect(sendAndDecide(actor, handoff('sales')).accepted).toBe(true);
    });

    it('refuses a return to reception at the cap', () => {
      const actor = startCall(1);
      actor.send(handoff('billing'));
      expect(
        sendAndDecide(actor, { type: 'reception.requested', reason: 'r', summary: 's' }),
      ).toMatchObject({ accepted: false, state: 'billing', code: 'handoff-cap' });
    });
  });

  describe('guard: one control change per model turn', () => {
    it('keeps the first accepted handoff of a turn and refuses the second', () => {
      const actor = startCall();
      expect(sendAndDecide(actor, handoff('billing', 'turn-1')).accepted).toBe(true);
      expect(sendAndDecide(actor, handoff('sales', 'turn-1'))).toMatchObject({
        accepted: false,
        state: 'billing',
        code: 'one-per-turn',
      });
    });

    it('accepts the next change from a different turn', () => {
      const actor = startCall();
      actor.send(handoff('billing', 'turn-1'));
      expect(sendAndDecide(actor, handoff('sales', 'turn-2')).accepted).toBe(true);
    });

    it('refuses an end requested in the same turn as an accepted handoff', () => {
      const actor = startCall();
      actor.send(handoff('billing', 'turn-1'));
      expect(
        sendAndDecide(actor, { type: 'end.requested', reason: 'done', turnId: 'turn-1' }),
      ).toMatchObject({ accepted: false, code: 'one-per-turn' });
    });

    it('does not count refused requests as the turn’s change', () => {
      const actor = startCall();
      actor.send(handoff('billing', 'turn-1'));
      expect(sendAndDecide(actor, handoff('billing', 'turn-2')).accepted).toBe(false);
      expect(sendAndDecide(actor, handoff('sales', 'turn-2')).accepted).toBe(true);
    });
  });

  describe('ending', () => {
    it('ends on request with the reason, from any live state', () => {
      for (const setup of [[], [handoff('billing')], [{ type: 'greeting.spoken' } as CallEvent]]) {
        const actor = startCall();
        for (const e of setup) actor.send(e);
        expect(sendAndDecide(actor, { type: 'end.requested', reason: 'resolved' }).accepted).toBe(
          true,
        );
        expect(actor.getSnapshot().status).toBe('done');
        expect(actor.getSnapshot().context.endReason).toBe('resolved');
      }
    });

    it('ends when the caller hangs up', () => {
      const actor = startCall();
      actor.send(handoff('sales'));
      actor.send({ type: 'caller.hungUp' });
      expect(callStateOf(actor.getSnapshot())).toBe('ended');
      expect(actor.getSnapshot().context.endReason).toBe(END_REASON_HUNG_UP);
    });

    it('is absorbing: nothing is accepted after the end', () => {
      const actor = startCall();
      actor.send({ type: 'caller.hungUp' });
      expect(sendAndDecide(actor, handoff('billing'))).toMatchObject({
        accepted: false,
        code: 'call-ended',
      });
      expect(callStateOf(actor.getSnapshot())).toBe('ended');
    });
  });

  it('names its effects so the bridge can implement them', () => {
    const calls: string[] = [];
    const machine = callMachine.provide({
      actions: {
        greetCaller: () => void calls.push('greet'),
        activateAgent: (_, params) => void calls.push(`activate:${params.agent}`),
        endCall: (_, params) => void calls.push(`end:${params.reason}:${params.farewell}`),
      },
    });
    const actor = createActor(machine, { input: {} }).start();
    actor.send({ type: 'call.started' });
    actor.send({ type: 'greeting.spoken' });
    actor.send(handoff('billing'));
    actor.send({ type: 'reception.requested', reason: 'r', summary: 's' });
    actor.send({ type: 'end.requested', reason: 'resolved' });
    expect(calls).toEqual([
      'activate:reception', // on start: the bridge already runs reception, so this is a no-op there
      'greet',
      'activate:billing',
      'activate:reception',
      'end:resolved:true',
    ]);
  });

  it('round-trips through a persisted snapshot with its version', () => {
    const actor = startCall();
    actor.send(handoff('billing'));
    const persisted = { version: CALL_MACHINE_VERSION, snapshot: actor.getPersistedSnapshot() };
    const stored = JSON.parse(JSON.stringify(persisted)) as typeof persisted;
    expect(stored.version).toBe(CALL_MACHINE_VERSION);
    expect(CALL_MACHINE_VERSION).toBeGreaterThan(0);
    const restored = createActor(callMachine, { snapshot: stored.snapshot, input: {} }).start();
    expect(callStateOf(restored.getSnapshot())).toBe('billing');
    expect(restored.getSnapshot().context.handoffs).toHaveLength(1);
  });
});

describe('what each agent is offered, derived from the machine', () => {
  const input = { maxHandoffs: 4, humanTransfers: ['billing' as const] };
  const names = (agent: AgentName) =>
    acceptedRequests(agent, input).map((r) => (r.kind === 'handoff' ? r.department : r.kind));

  it('offers reception every department and the end, nothing to return to', () => {
    expect(names('reception')).toEqual(['billing', 'support', 'sales', 'end']);
  });

  it('never offers a specialist its own department; a person only where one is configured', () => {
    expect(names('billing')).toEqual(['support', 'sales', 'return', 'transfer', 'end']);
    expect(names('support')).toEqual(['billing', 'sales', 'return', 'end']);
    expect(names('sales')).toEqual(['billing', 'support', 'return', 'end']);
  });
});
