/**
 * Who may speak: the one place that says whether an agent still has the caller. The bridge gives
 * the floor to the agent it switches in (or to nobody, once the call has ended or moved to
 * another worker); everything that could reach the caller asks here first:
 * - an agent's reply (`CallAgent.llmNode`: no model call for an agent without the floor),
 * - a business tool's result (dropped, so it asks no reply of the old agent),
 * - reply-health reports (a late or failed reply of an agent no longer on the line is noise).
 * Control requests are the machine's to refuse (`retired`, machines/decide.ts); fixed lines the
 * bridge speaks (greeting, bridge line, goodbye) are its own and need no floor.
 */
export interface FloorHolder {
  readonly callAgent: string;
}

export class Floor {
  #holder: FloorHolder | null = null;

  /** `agent` has the caller from now on; `null`: nobody does (ended, handed over). */
  give(agent: FloorHolder | null): void {
    this.#holder = agent;
  }

  /** This very agent (not just one of the same name) has the caller. */
  holds(agent: FloorHolder | null | undefined): boolean {
    return agent != null && this.#holder === agent;
  }

  /** The agent named `name` has the caller. */
  heldBy(name: string): boolean {
    return this.#holder?.callAgent === name;
  }

  get holder(): FloorHolder | null {
    return this.#holder;
  }
}
