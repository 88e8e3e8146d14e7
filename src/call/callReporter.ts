/**
 * What a call tells the outside (console, worker logs, inspector, tests): the observers' fan-out,
 * and the machine's transitions and refusals turned into observer calls. Observers never break a
 * call: their errors are logged, not thrown.
 */
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import {
  type AgentName,
  type CallContext,
  type CallStateName,
  type RefusalRecord,
  callStateOf,
} from '../../machines/callMachine.js';

/** Everything a front end (console, worker, inspector) may want to show. */
export interface CallObserver {
  transition?(change: { from: CallStateName; to: CallStateName; event: string }): void;
  refusal?(refusal: RefusalRecord): void;
  /** An agent's activity started: it is the one talking now. */
  agent?(name: AgentName): void;
  say?(agent: AgentName, text: string): void;
  caller?(text: string): void;
  /** The caller pressed an assigned key. */
  keypad?(digit: string): void;
  /** Dispatch mode: the call's payload was sent to `agent`'s worker. */
  dispatch?(agent: AgentName, bytes: number): void;
  end?(reason: string): void;
}

interface Watched {
  getSnapshot(): { value: unknown; context: CallContext };
}

export class CallReporter {
  #lastState: CallStateName | null = null;
  /** Refusals already reported; a restored call's were reported by the leg that recorded them. */
  #refusalCount: number;

  constructor(
    private readonly observer: CallObserver | undefined,
    private readonly log: Logger,
    /** Runs before each observer call (the bridge marks its first words on `say`). */
    private readonly before: (kind: keyof CallObserver) => void = () => {},
    alreadyReported = 0,
  ) {
    this.#refusalCount = alreadyReported;
  }

  notify<K extends keyof CallObserver>(
    kind: K,
    ...args: Parameters<NonNullable<CallObserver[K]>>
  ): void {
    this.before(kind);
    try {
      (this.observer?.[kind] as ((...a: typeof args) => void) | undefined)?.(...args);
    } catch (error) {
      this.log.warn({ err: error, kind }, 'call observer failed');
    }
  }

  /** A machine inspection event: report a change of state and any new refusal. */
  machineChanged(event: InspectionEvent, actor: Watched & object): boolean {
    if (event.type !== '@xstate.snapshot' || event.actorRef !== actor) return false;
    const snapshot = actor.getSnapshot();
    const state = callStateOf(snapshot);
    if (this.#lastState !== null && state !== this.#lastState) {
      this.notify('transition', { from: this.#lastState, to: state, event: event.event.type });
    }
    this.#lastState = state;
    const refusals = snapshot.context.refusals;
    for (; this.#refusalCount < refusals.length; this.#refusalCount++) {
      this.notify('refusal', refusals[this.#refusalCount]!);
    }
    return true;
  }
}
