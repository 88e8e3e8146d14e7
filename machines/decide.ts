/**
 * Send a control event to a call actor and read back the machine's decision, synchronously.
 * Tools and the keypad use this, so every request gets an answer that can be told to the caller.
 */
import type { Actor } from 'xstate';
import type {
  CallEvent,
  CallStateName,
  RefusalCode,
  RefusalRecord,
  callMachine,
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
  return actor.getSnapshot().value as CallStateName;
}

export function sendAndDecide(actor: CallActor, event: CallEvent): Decision {
  const before = actor.getSnapshot();
  if (before.status !== 'active') {
    return { accepted: false, state: before.value as CallStateName, code: 'call-ended' };
  }
  // XState processes the event synchronously when it is not sent from inside its own transition.
  actor.send(event);
  const after = actor.getSnapshot();
  const state = after.value as CallStateName;
  if (after.context.refusals.length > before.context.refusals.length) {
    const refusal = after.context.refusals.at(-1)!;
    return { accepted: false, state, code: refusal.code, refusal };
  }
  if (
    after.value !== before.value ||
    after.context.handoffs.length > before.context.handoffs.length
  ) {
    return { accepted: true, state };
  }
  return { accepted: false, state, code: 'not-available' };
}
