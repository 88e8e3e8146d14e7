/**
 * Dead air: the caller is waiting for the agent and nothing is happening.
 *
 * The agent owes the caller words after the caller's turn (their message lands in the
 * conversation) and when it takes over the call (a handoff, a take-over, a resumed call). It
 * pays when it starts speaking or its message lands. While it owes and nobody is speaking or
 * thinking for `ms`, the watch reports it, with the attempt (0, 1, ...): the reply guard covers a
 * model request that is slow or fails, this covers a reply that was never asked for or was
 * dropped on the way (an opening cut before its first word, a turn the session lost). The
 * machine decides what happens (`reply.failed {kind: 'missing'}`): a fresh reply, then an
 * apology, then a person or the end, as for any failed reply.
 */
import { voice } from '@livekit/agents';

export interface DeadAirOptions {
  /** Nothing said or in progress this long while the agent owes words (DEAD_AIR_MS). */
  ms: number;
  /**
   * Called each time the wait runs out, with what would pay the debt when the agent took over
   * (its opening, asked again) or null after the caller's turn (a reply to it); another `ms` of
   * nothing reports the next attempt.
   */
  onDeadAir: (debt: string, attempt: number, repay: (() => void) | null) => void;
}

export class DeadAirWatch {
  readonly #session: voice.AgentSession;
  readonly #options: DeadAirOptions;
  #owed = false;
  #repay: (() => void) | null = null;
  /** Names the words owed: one id per debt, the same over its attempts. */
  #debts = 0;
  #attempt = 0;
  #agentState: voice.AgentState;
  #userSpeaking = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(session: voice.AgentSession, options: DeadAirOptions) {
    this.#session = session;
    this.#options = options;
    this.#agentState = session.agentState;
    session.on(voice.AgentSessionEventTypes.AgentStateChanged, this.#onAgentState);
    session.on(voice.AgentSessionEventTypes.UserStateChanged, this.#onUserState);
    session.on(voice.AgentSessionEventTypes.ConversationItemAdded, this.#onItem);
  }

  /**
   * The agent owes the caller words from now: it has just taken over the call (`repay` asks for
   * its opening again) or the caller has had their turn (null: a reply is asked for).
   */
  owe(repay: (() => void) | null): void {
    this.#owed = true;
    this.#debts++;
    this.#repay = repay;
    this.#attempt = 0;
    this.#arm();
  }

  /** Whether the agent owes the caller words now. */
  get owed(): boolean {
    return this.#owed;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#session.off(voice.AgentSessionEventTypes.AgentStateChanged, this.#onAgentState);
    this.#session.off(voice.AgentSessionEventTypes.UserStateChanged, this.#onUserState);
    this.#session.off(voice.AgentSessionEventTypes.ConversationItemAdded, this.#onItem);
  }

  #onAgentState = (event: voice.AgentStateChangedEvent): void => {
    this.#agentState = event.newState;
    if (event.newState === 'speaking') this.#owed = false;
    this.#arm();
  };

  #onUserState = (event: voice.UserStateChangedEvent): void => {
    this.#userSpeaking = event.newState === 'speaking';
    this.#arm();
  };

  #onItem = (event: voice.ConversationItemAddedEvent): void => {
    const { item } = event;
    if (item.type !== 'message') return;
    if (item.role === 'user') this.owe(null);
    else if (item.role === 'assistant') {
      this.#owed = false;
      this.#arm();
    }
  };

  /** The clock runs only while the agent owes words and nobody speaks or thinks. */
  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const quiet = this.#agentState === 'listening' || this.#agentState === 'idle';
    if (this.#closed || !this.#owed || !quiet || this.#userSpeaking) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const attempt = this.#attempt++;
      this.#options.onDeadAir(`missing-${this.#debts}`, attempt, this.#repay);
      this.#arm(); // what was done changed nothing: the next attempt after another wait
    }, this.#options.ms);
    this.#timer.unref?.();
  }
}
