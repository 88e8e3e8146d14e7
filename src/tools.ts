/**
 * The LLM's tools. Each one only sends an event to the call's machine and reports the decision:
 * no tool switches agents (the bridge does, when the machine changes state).
 *
 * Accepted requests return nothing, so the old agent makes no extra model call: the next voice
 * the caller hears is the specialist's (or the goodbye). A refusal is an expected outcome, not
 * an error: it is returned as the tool's output (what happened and what to tell the caller), so
 * the SDK does not log it as a failing tool; the bridge logs refusals at info.
 */
import { llm } from '@livekit/agents';
import { z } from 'zod';
import {
  type AgentName,
  type CallEvent,
  DEPARTMENTS,
  type Department,
} from '../machines/callMachine.js';
import type { Decision } from '../machines/decide.js';
import type { ControlRequest } from '../machines/offers.js';

/** What tools need from the call: send an event, get the machine's decision back. */
export interface CallControl {
  /** `from`: the agent whose tool asks; a request from a retired agent is refused. */
  request(event: CallEvent, from?: AgentName): Decision;
  /** Handoffs allowed per call, for refusal messages. */
  readonly maxHandoffs: number;
}

export const TOOL_NAMES = {
  handoff: (department: Department) => `pass_control_to_${department}` as const,
  returnToReception: 'return_to_reception',
  transferToHuman: 'transfer_to_human',
  endCall: 'end_call',
} as const;

const TOPICS: Record<AgentName, string> = {
  reception: 'finding the right team',
  billing: 'billing and payments',
  support: 'technical support',
  sales: 'plans and purchases',
};

const handoffParameters = z.object({
  reason: z.string().describe('Why the caller needs this department, in a few words.'),
  summary: z
    .string()
    .describe(
      'What the caller has said so far that the next agent needs: facts, numbers, what they tried. ' +
        'The next agent must not have to ask again.',
    ),
});

const transferParameters = z.object({
  reason: z.string().optional().describe('Why a person is needed, in a few words.'),
});

const endCallParameters = z.object({
  reason: z.string().optional().describe('Why the call is ending, in a few words.'),
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tools of any parameter shape
export type AnyFunctionTool = llm.FunctionTool<any, any, any>;

export interface ToolOptions {
  /** The agent's own business tools. */
  extra?: AnyFunctionTool[];
  /** Offer `transfer_to_human`: only where a number is configured. */
  humanTransfer?: boolean;
  /**
   * The control requests this agent's state accepts (from `acceptedRequests` in
   * machines/offers.ts): only those become tools. Default: every one.
   */
  offers?: readonly ControlRequest[];
  /**
   * Whether the agent has been retired (the machine moved on). A business tool that finishes
   * after that returns nothing, so its result asks no reply of the old agent: this holds for
   * realtime models too, whose replies do not go through the agent's `llmNode`.
   */
  isRetired?: () => boolean;
}

/** A request a tool sends; the tool adds the model turn it came from. */
type TurnRequest<E = Extract<CallEvent, { turnId?: string }>> = E extends unknown
  ? Omit<E, 'turnId'>
  : never;

/** The control tools every agent of this call gets, plus the agent's own business tools. */
export function buildTools(
  control: CallControl,
  self: AgentName,
  options: ToolOptions = {},
): llm.ToolContext {
  const isRetired = options.isRetired ?? (() => false);
  // Every control tool is the same: send the request with its model turn, report the decision.
  const controlTool = <P extends z.ZodObject<z.ZodRawShape>>(
    name: string,
    description: string,
    parameters: P,
    toRequest: (args: z.infer<P>) => TurnRequest,
  ) =>
    llm.tool({
      name,
      description,
      parameters,
      execute: async (args, { ctx }) =>
        settle(
          control.request(
            {
              ...toRequest(args as z.infer<P>),
              turnId: ctx.speechHandle.id,
            } as CallEvent,
            self,
          ),
          control,
          self,
        ),
    });

  const tools: AnyFunctionTool[] = (options.extra ?? []).map((tool) =>
    llm.tool({
      name: tool.name,
      description: tool.description,
      parameters: tool.parameters,
      flags: tool.flags,
      onDuplicate: tool.onDuplicate,
      execute: async (args, opts) => {
        const result: unknown = await tool.execute(args, opts);
        return isRetired() ? undefined : result;
      },
    }),
  );
  const offers = options.offers;
  const offered = (kind: ControlRequest['kind'], department?: Department) =>
    offers === undefined ||
    offers.some((o) => o.kind === kind && (o.kind !== 'handoff' || o.department === department));
  for (const department of DEPARTMENTS) {
    if (!offered('handoff', department)) continue;
    tools.push(
      controlTool(
        TOOL_NAMES.handoff(department),
        `Transfer the caller to the ${department} team (${TOPICS[department]}). ` +
          'The caller stays on the line and the specialist greets them next, so do not say goodbye.',
        handoffParameters,
        ({ reason, summary }) => ({ type: 'handoff.requested', department, reason, summary }),
      ),
    );
  }
  if (self !== 'reception' && offered('return')) {
    tools.push(
      controlTool(
        TOOL_NAMES.returnToReception,
        'Send the caller back to reception when their need fits no department. ' +
          'Reception will pick up from the summary.',
        handoffParameters,
        ({ reason, summary }) => ({ type: 'reception.requested', reason, summary }),
      ),
    );
  }
  if (options.humanTransfer && offered('transfer')) {
    tools.push(
      controlTool(
        TOOL_NAMES.transferToHuman,
        'Transfer the caller to a person on our team when they ask for a human or you cannot ' +
          'help. The caller is told to hold; if it fails you will be asked to keep helping.',
        transferParameters,
        ({ reason }) => ({
          type: 'transfer.requested',
          reason: reason?.trim() || 'caller asked for a person',
        }),
      ),
    );
  }
  if (offered('end'))
    tools.push(
      controlTool(
        TOOL_NAMES.endCall,
        'End the call when the caller is done or says goodbye. A goodbye is spoken for you.',
        endCallParameters,
        ({ reason }) => ({ type: 'end.requested', reason: reason?.trim() || 'caller is done' }),
      ),
    );
  return new llm.ToolContext(tools);
}

function settle(decision: Decision, control: CallControl, self: AgentName): string | undefined {
  if (decision.accepted) return undefined;
  switch (decision.code) {
    // The turn's first change already won, the call is over, or the machine moved on from this
    // agent (a retired leg): it must not speak again. No output asks for no reply.
    case 'one-per-turn':
    case 'call-ended':
    case 'retired':
      return undefined;
    default:
      return refusalMessage(decision, control, self);
  }
}

/** What the agent should say to the caller about a refusal, if there is a stock line for it. */
export function refusalLine(
  decision: Extract<Decision, { accepted: false }>,
  self: AgentName,
): string | undefined {
  const help = TOPICS[self];
  switch (decision.code) {
    case 'handoff-cap':
      return `I can't transfer you again, but I can help with ${help} myself.`;
    case 'same-department':
      return "You're in the right place, I can help with that.";
    case 'no-human':
      return `I can't connect you to a person right now, but I can help with ${help} myself.`;
    case 'not-available':
      return `Sorry, I can't do that right now, but I can help with ${help}.`;
    default:
      return undefined;
  }
}

/** The text the model sees for a refusal: what happened and what to tell the caller. */
export function refusalMessage(
  decision: Extract<Decision, { accepted: false }>,
  control: Pick<CallControl, 'maxHandoffs'>,
  self: AgentName,
): string {
  const what: Record<string, string> = {
    'handoff-cap': `Handoff refused: this call has reached its limit of ${control.maxHandoffs} handoffs.`,
    'same-department': `Handoff refused: the caller is already with ${self}, which is you. Do not hand off; help them directly.`,
    'no-human': 'Transfer refused: nobody can take a transfer from here.',
    'not-available': `That is not possible from ${self} right now.`,
  };
  const line = refusalLine(decision, self);
  return line
    ? `${what[decision.code]} Tell the caller: "${line}"`
    : 'Request refused. Keep helping the caller.';
}
