/**
 * Send a control event to a call actor and read back the machine's decision, synchronously.
 * Tools and the keypad use this, so every request gets an answer that can be told to the caller.
 */
import type { Actor } from 'xstate';
import {
  type CallEvent,
  type CallStateName,
  type RefusalCode,
  type RefusalRecord,
  type callMachine,
  callStateOf,
} from './callMachine.js';

export type CallActor = Actor<typeof callMachine>;

export type Decision =
  | { accepted: true; state: CallStateName }
  | {
      accepted: false;
      state: CallStateName;
      /** Why: a recorded refusal, the call having ended, or the event meaning nothing here. */
      code: RefusalCode | 'call-ended' | 'not-available';
      refusal?: RefusalRecord;
    };

export function currentState(actor: CallActor): CallStateName {
  return callStateOf(actor.getSnapshot());
}

export function sendAndDecide(actor: CallActor, event: CallEvent): Decision {
  const before = actor.getSnapshot();
  if (before.status !== 'active') {
    return { accepted: false, state: callStateOf(before), code: 'call-ended' };
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
