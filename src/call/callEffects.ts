/**
 * The call machine with its effects provided once per flow, not once per call.
 *
 * `machine.provide(...)` builds a whole new machine: every state node again, about 27 KB and
 * 130 µs per call, and transition caches that start cold for each call's first events. Here the
 * flow's machine is provided once, with effects that look up the implementations of the call
 * the running actor belongs to (`bindEffects`, before the actor starts).
 */
import type { AnyActorRef } from 'xstate';
import { type CallMachine, machineFor } from '../../machines/callMachine.js';
import type { Flow } from '../../machines/flow.js';

type Implementations = NonNullable<NonNullable<Parameters<CallMachine['provide']>[0]>['actions']>;

/** The named effects of machines/callMachine.ts, which a call implements. */
const EFFECTS = [
  'greetCaller',
  'activateAgent',
  'dispatchCall',
  'takeOverHere',
  'leaveCall',
  'transferCall',
  'apologiseForTransfer',
  'endCall',
  'holdLine',
  'retryReply',
  'apologiseForReply',
  'reportHearingTrouble',
  'hearingRestored',
] as const;

export type CallEffects = Required<Pick<Implementations, (typeof EFFECTS)[number]>>;

const bound = new WeakMap<AnyActorRef, CallEffects>();
const provided = new WeakMap<Flow, CallMachine>();

/** The flow's machine, whose effects run those bound to the actor running it. */
export function effectsMachine(flow: Flow): CallMachine {
  let machine = provided.get(flow);
  if (!machine) {
    const actions = Object.fromEntries(
      EFFECTS.map((name) => [
        name,
        (args: { self: AnyActorRef }, params: unknown) =>
          (bound.get(args.self)?.[name] as ((a: unknown, p: unknown) => void) | undefined)?.(
            args,
            params,
          ),
      ]),
    ) as Implementations;
    provided.set(flow, (machine = machineFor(flow).provide({ actions })));
  }
  return machine;
}

/** The effects of the call `actor` runs (an actor of `effectsMachine`'s machine). */
export function bindEffects(actor: AnyActorRef, effects: CallEffects): void {
  bound.set(actor, effects);
}
