/**
 * Properties of the actor and bridge under random request sequences (fast-check): handoffs,
 * returns and ends from fresh or same model turns, and hang-ups, sent the way tools and the
 * keypad send them. A failing sequence shrinks to a minimal reproduction.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AgentName,
  type CallEvent,
  callStateOf,
  agentForState,
} from '../machines/callMachine.js';
import { DEFAULT_FLOW, departmentsOf } from '../machines/flow.js';
import { CallAgent } from '../src/call/agents.js';
import { startTestCall } from './fakes/session.js';

const CAP = 3;
const RUNS = Number(process.env.PROPERTY_RUNS ?? 25);

type Command =
  | { kind: 'handoff'; department: string; sameTurn: boolean }
  | { kind: 'return'; sameTurn: boolean }
  | { kind: 'end'; sameTurn: boolean }
  | { kind: 'hangup' };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('handoff' as const),
      department: fc.constantFrom(...departmentsOf(DEFAULT_FLOW)),
      sameTurn: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('return' as const), sameTurn: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('end' as const), sameTurn: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'hangup' as const }) },
);

async function runSequence(commands: Command[]): Promise<void> {
  const c = await startTestCall({ maxHandoffs: CAP });
  const actor = c.bridge.actor;

  const accepted: CallEvent[] = [];
  let turn = 0;
  try {
    for (const [index, cmd] of commands.entries()) {
      const before = actor.getSnapshot();
      const agentBefore = c.bridge.speakingAgent;
      const turnId = `turn-${'sameTurn' in cmd && cmd.sameTurn ? turn : ++turn}`;
      let event: CallEvent;
      switch (cmd.kind) {
        case 'handoff':
          event = {
            type: 'handoff.requested',
            department: cmd.department,
            reason: `r${index}`,
            summary: `s${index}`,
            turnId,
          };
          break;
        case 'return':
          event = {
            type: 'reception.requested',
            reason: `r${index}`,
            summary: `s${index}`,
            turnId,
          };
          break;
        case 'end':
          event = { type: 'end.requested', reason: `done ${index}`, turnId };
          break;
        case 'hangup':
          event = { type: 'caller.hungUp' };
      }
      const decision = c.bridge.request(event);
      const after = actor.getSnapshot();

      // Ended is absorbing.
      if (before.status === 'done') {
        expect(decision.accepted).toBe(false);
        expect(after.status).toBe('done');
        continue;
      }
      if (decision.accepted) {
        if (event.type !== 'caller.hungUp' && event.type !== 'end.requested') accepted.push(event);
      } else {
        // A refused request changes neither the state nor the agent.
        expect(callStateOf(after)).toBe(callStateOf(before));
        expect(c.bridge.speakingAgent).toBe(agentBefore);
      }
      // The cap holds.
      expect(after.context.handoffs.length).toBeLessThanOrEqual(CAP);

      if (after.status === 'done') {
        await c.bridge.done;
        continue;
      }
      // Exactly one agent is active, and it is the machine's.
      const agent: AgentName = agentForState(callStateOf(after))!;
      await c.until(() => c.bridge.speakingAgent === agent, `${agent} active`);
      const current = c.session.currentAgent;
      expect(current).toBeInstanceOf(CallAgent);
      expect((current as CallAgent).callAgent).toBe(agent);
    }
    // Every accepted handoff is in the log exactly once, in order.
    const log = actor.getSnapshot().context.handoffs;
    expect(log.map((h) => `${h.to}:${h.reason}`)).toEqual(
      accepted.map(
        (e) =>
          `${e.type === 'handoff.requested' ? e.department : 'reception'}:${'reason' in e ? e.reason : ''}`,
      ),
    );
  } finally {
    c.bridge.callerHungUp();
    await c.bridge.done;
  }
  // Nothing is activated after the end (every sequence ends, by the hang-up above if not before).
  await c.bridge.settled();
  const end = c.events.findIndex((e) => e.type === 'end');
  expect(end).toBeGreaterThanOrEqual(0);
  expect(c.events.slice(end).filter((e) => e.type === 'agent')).toEqual([]);
}

describe('call properties under random request sequences', () => {
  it('one active agent, absorbing end, bounded handoffs, a complete log, inert refusals', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 10 }), runSequence),
      { numRuns: RUNS, seed: Number(process.env.PROPERTY_SEED ?? 20261124) },
    );
  }, 120_000);
});
