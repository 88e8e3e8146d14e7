/**
 * The specialist's first words after a handoff (HANDOFF_OPENING).
 *
 * - `model` (default): the old agent says the bridge line; the specialist's first model reply,
 *   requested the moment it is active, is its first words. The caller hears the specialist two
 *   model turns after they stop: the decision, then the opening.
 * - `brief`: no bridge line; the moment the specialist is active it says one sentence in its own
 *   voice built from the decision's own arguments (its team and the model's reason), and its
 *   first model reply is requested at the same time, to follow that sentence. The caller hears
 *   the specialist one model turn after they stop; its first sentence is a template around the
 *   reason the deciding model wrote, and what follows is the specialist model's, grounded in the
 *   conversation and the brief like any reply.
 *
 * Measured in audio against native LiveKit handoffs by `npm run bench` (BENCHMARKS.md).
 */
import type { voice } from '@livekit/agents';
import type { AgentName, HandoffRecord } from '../machines/callMachine.js';
import { openingInstructions } from './lines.js';

export type HandoffOpening = 'model' | 'brief';

/** The old agent's bridge line is left out: the specialist's own voice is the bridge. */
export function skipsBridgeLine(opening: HandoffOpening | undefined): boolean {
  return opening === 'brief';
}

/** The specialist's first sentence, from the handoff decision alone (no model request). */
export function briefOpeningLine(name: AgentName, handoff: HandoffRecord): string {
  const who = name === 'reception' ? 'reception' : `the ${name} team`;
  const reason = handoff.reason.trim().replace(/[.!?]+$/, '');
  return reason
    ? `Hi, this is ${who}. You're calling about ${reason}.`
    : `Hi, this is ${who}, taking over your call.`;
}

/** Marks the request for what follows the opening sentence (the offline model reads it too). */
export const CONTINUATION_PREFIX = 'Continuing:';

/** What the specialist's first model reply is asked for, after the sentence already said. */
export function continuationInstructions(line: string): string {
  return [
    `${CONTINUATION_PREFIX} you have just taken over the call and said: "${line}"`,
    'Do not greet the caller or introduce yourself again. In one or two short sentences, continue',
    'from what the caller already said and the brief. Do not ask them to repeat it.',
  ].join(' \n');
}

/** The new agent's first words, as `opening` says; called from its `onEnter`. */
export function openSpecialist(
  session: voice.AgentSession,
  name: AgentName,
  handoff: HandoffRecord,
  opening: HandoffOpening,
): void {
  if (opening === 'model') {
    session.generateReply({ instructions: openingInstructions(name, handoff) });
    return;
  }
  const line = briefOpeningLine(name, handoff);
  session.say(line, { allowInterruptions: true });
  // Its model request starts now, while the sentence is synthesised and played: the SDK runs a
  // reply's inference as soon as it is scheduled and only holds back its playout.
  session.generateReply({ instructions: continuationInstructions(line) });
}
