/**
 * The LLM's tools. Each one only sends an event to the call's machine and reports the decision:
 * no tool switches agents (the bridge does, when the machine changes state).
 *
 * Accepted requests return nothing, so the old agent makes no extra model call: the next voice
 * the caller hears is the specialist's (or the goodbye). Refusals become `llm.ToolError`s whose
 * text the agent can turn into a sentence for the caller.
 */
import { llm, voice } from '@livekit/agents';
import { z } from 'zod';
import {
  type AgentName,
  type CallEvent,
  DEPARTMENTS,
  type Department,
} from '../machines/callMachine.js';
import type { Decision } from '../machines/decide.js';

/** What tools need from the call: send an event, get the machine's decision back. */
export interface CallControl {
  request(event: CallEvent): Decision;
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

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tools of any parameter shape
export type AnyFunctionTool = llm.FunctionTool<any, any, any>;

export interface ToolOptions {
  /** The agent's own business tools. */
  extra?: AnyFunctionTool[];
  /** Offer `transfer_to_human`: only where a number is configured. */
  humanTransfer?: boolean;
  /**
   * Whether the agent has been retired (the machine moved on). A business tool that finishes
   * after that returns nothing, so its result asks no reply of the old agent: this holds for
   * realtime models too, whose replies do not go through the agent's `llmNode`.
   */
  isRetired?: () => boolean;
}

/** The control tools every agent of this call gets, plus the agent's own business tools. */
export function buildTools(
  control: CallControl,
  self: AgentName,
  options: ToolOptions = {},
): llm.ToolContext {
  const isRetired = options.isRetired ?? (() => false);
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
  for (const department of DEPARTMENTS) {
    tools.push(
      llm.tool({
        name: TOOL_NAMES.handoff(department),
        description:
          `Transfer the caller to the ${department} team (${TOPICS[department]}). ` +
          'The caller stays on the line and the specialist greets them next, so do not say goodbye.',
        parameters: handoffParameters,
        execute: async ({ reason, summary }, { ctx }) =>
          settle(
            control.request({
              type: 'handoff.requested',
              department,
              reason,
              summary,
              turnId: ctx.speechHandle.id,
            }),
            control,
            self,
          ),
      }),
    );
  }
  if (self !== 'reception') {
    tools.push(
      llm.tool({
        name: TOOL_NAMES.returnToReception,
        description:
          'Send the caller back to reception when their need fits no department. ' +
          'Reception will pick up from the summary.',
        parameters: handoffParameters,
        execute: async ({ reason, summary }, { ctx }) =>
          settle(
            control.request({
              type: 'reception.requested',
              reason,
              summary,
              turnId: ctx.speechHandle.id,
            }),
            control,
            self,
          ),
      }),
    );
  }
  if (options.humanTransfer) {
    tools.push(
      llm.tool({
        name: TOOL_NAMES.transferToHuman,
        description:
          'Transfer the caller to a person on our team when they ask for a human or you cannot ' +
          'help. The caller is told to hold; if it fails you will be asked to keep helping.',
        parameters: z.object({
          reason: z.string().optional().describe('Why a person is needed, in a few words.'),
        }),
        execute: async ({ reason }, { ctx }) =>
          settle(
            control.request({
              type: 'transfer.requested',
              reason: reason?.trim() || 'caller asked for a person',
              turnId: ctx.speechHandle.id,
            }),
            control,
            self,
          ),
      }),
    );
  }
  tools.push(
    llm.tool({
      name: TOOL_NAMES.endCall,
      description:
        'End the call when the caller is done or says goodbye. A goodbye is spoken for you.',
      parameters: z.object({
        reason: z.string().optional().describe('Why the call is ending, in a few words.'),
      }),
      execute: async ({ reason }, { ctx }) =>
        settle(
          control.request({
            type: 'end.requested',
            reason: reason?.trim() || 'caller is done',
            turnId: ctx.speechHandle.id,
          }),
          control,
          self,
        ),
    }),
  );
  return new llm.ToolContext(tools);
}

function settle(decision: Decision, control: CallControl, self: AgentName): undefined {
  if (decision.accepted) return undefined;
  switch (decision.code) {
    // The turn's first change already won, or the call is over: this agent is leaving, so it
    // must not speak again. StopResponse records no output and asks for no reply.
    case 'one-per-turn':
    case 'call-ended':
      throw new voice.StopResponse();
    default:
      throw new llm.ToolError(refusalMessage(decision, control, self));
  }
}

/** The text the model sees for a refusal: what happened and what to tell the caller. */
export function refusalMessage(
  decision: Extract<Decision, { accepted: false }>,
  control: Pick<CallControl, 'maxHandoffs'>,
  self: AgentName,
): string {
  const help = TOPICS[self];
  switch (decision.code) {
    case 'handoff-cap':
      return (
        `Transfer refused: this call has reached its limit of ${control.maxHandoffs} transfers. ` +
        `Tell the caller: "I can't transfer you again, but I can help with ${help} myself."`
      );
    case 'same-department':
      return (
        `Transfer refused: the caller is already with ${self}, which is you. ` +
        `Do not transfer; help them directly. Tell the caller: "You're in the right place, I can help with that."`
      );
    case 'no-human':
      return (
        'Transfer refused: nobody can take a transfer from here. ' +
        `Tell the caller: "I can't connect you to a person right now, but I can help with ${help} myself."`
      );
    case 'not-available':
      return (
        `That is not possible from ${self} right now. ` +
        `Tell the caller: "Sorry, I can't do that right now, but I can help with ${help}."`
      );
    default:
      return 'Request refused. Keep helping the caller.';
  }
}
