/**
 * Send a control event to a call actor and read back the machine's decision, synchronously.
 * Tools and the keypad use this, so every request gets an answer that can be told to the caller.
 */
import type { Actor } from 'xstate';
import {
  type AgentName,
  type CallEvent,
  type CallStateName,
  type RefusalCode,
  type RefusalRecord,
  activeAgentOf,
  type callMachine,
  callStateOf,
} from './callMachine.js';

export type CallActor = Actor<typeof callMachine>;

export type Decision =
  | { accepted: true; state: CallStateName }
  | {
      accepted: false;
      state: CallStateName;
      /**
       * Why: a recorded refusal, the call having ended, the event meaning nothing here, or
       * `retired`: the sender is not the agent on the line (the machine has moved on from it).
       */
      code: RefusalCode | 'call-ended' | 'not-available' | 'retired';
      refusal?: RefusalRecord;
    };

export function currentState(actor: CallActor): CallStateName {
  return callStateOf(actor.getSnapshot());
}

/**
 * `from` is the agent whose tool sends the request (absent for the caller's keypad). A request
 * from an agent the machine has moved on from is refused as `retired` and never reaches the
 * machine, which would otherwise take it as the agent on the line's. The one exception is the
 * turn that made the last change: its other requests get the machine's own answer
 * (`one-per-turn`), recorded as before.
 */
export function sendAndDecide(actor: CallActor, event: CallEvent, from?: AgentName): Decision {
  const before = actor.getSnapshot();
  if (before.status !== 'active') {
    return { accepted: false, state: callStateOf(before), code: 'call-ended' };
  }
  if (from !== undefined && isRetiredSender(before, event, from)) {
    return { accepted: false, state: callStateOf(before), code: 'retired' };
  }
  // XState processes the event synchronously when it is not sent from inside its own transition.
  actor.send(event);
  const after = actor.getSnapshot();
  const state = callStateOf(after);
  if (after.context.refusals.length > before.context.refusals.length) {
    const refusal = after.context.refusals.at(-1)!;
    return { accepted: false, state, code: refusal.code, refusal };
  }
  if (
    state !== callStateOf(before) ||
    after.context.handoffs.length > before.context.handoffs.length
  ) {
    return { accepted: true, state };
  }
  return { accepted: false, state, code: 'not-available' };
}

function isRetiredSender(
  snapshot: ReturnType<CallActor['getSnapshot']>,
  event: CallEvent,
  from: AgentName,
): boolean {
  if (activeAgentOf(snapshot) === from) return false;
  const turnId = 'turnId' in event ? event.turnId : undefined;
  return turnId === undefined || turnId !== snapshot.context.controlTurnId;
}
