/**
 * Words the caller says while a handoff is under way reach the new agent.
 *
 * agents-js 1.9 drops a caller turn that ends while the old agent's activity is draining for a
 * switch ("skipping user input, speech scheduling is paused"; the SDK leaves forwarding it as a
 * TODO). Found by the voice tests: a caller talking over the bridge line lost their words. The
 * retiring agent's activity is watched for exactly those turns, and the new agent answers them
 * once it is on the line, after its opening; the retired agent never does.
 */
import type { voice } from '@livekit/agents';
import type { Logger } from 'pino';

type Activity = NonNullable<voice.Agent['_agentActivity']>;

export class HandoffCarryOver {
  #words: string[] = [];
  #deliver: ((text: string) => void) | null = null;
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** The agent is being switched out: keep the turns its draining activity would drop. */
  watch(agent: voice.Agent): void {
    this.#deliver = null;
    const activity: Activity | undefined = agent._agentActivity;
    if (!activity) return;
    const onEndOfTurn = activity.onEndOfTurn.bind(activity);
    activity.onEndOfTurn = async (info) => {
      const text = info.newTranscript.trim();
      if (activity.schedulingPaused && text !== '') this.#carry(text);
      return onEndOfTurn(info);
    };
  }

  /**
   * The new agent is on the line: it answers what was carried, now and from now on. `answer`
   * asks it for a reply to the words (the session effects do: src/call/effects.ts).
   */
  deliverTo(answer: (words: string) => void): void {
    this.#deliver = (text) => {
      try {
        answer(text);
      } catch (error) {
        this.#log.warn({ err: error }, 'carried caller words not delivered');
      }
    };
    const words = this.#words.splice(0);
    if (words.length > 0) this.#deliver(words.join(' '));
  }

  /** The call ended: nothing is delivered. */
  drop(): void {
    this.#words = [];
    this.#deliver = null;
  }

  #carry(text: string): void {
    this.#log.info({ transcript: text }, 'caller words carried over a handoff');
    if (this.#deliver) this.#deliver(text);
    else this.#words.push(text);
  }
}
