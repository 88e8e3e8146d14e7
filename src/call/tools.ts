/**
 * The LLM's tools. Each one only sends an event to the call's machine and reports the decision:
 * no tool switches agents (the bridge does, when the machine changes state).
 *
 * Accepted requests return nothing, so the old agent makes no extra model call: the next voice
 * the caller hears is the specialist's (or the goodbye). A refusal is an expected outcome, not
 * an error: it is returned as the tool's output (what happened and what to tell the caller), so
 * the SDK does not log it as a failing tool; the bridge logs refusals at info.
 */
import { llm, type voice } from '@livekit/agents';
import { z } from 'zod';
import type { AgentName, CallEvent, Department } from '../../machines/callMachine.js';
import type { Decision } from '../../machines/decide.js';
import { DEFAULT_FLOW, type Flow, departmentsOf } from '../../machines/flow.js';
import type { ControlRequest } from '../../machines/offers.js';
import { TOOL_TEXT, helpOf, refusalLine as lineFor, refusalReason } from './lines.js';

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

const handoffParameters = z.object({
  reason: z.string().describe(TOOL_TEXT.handoffReason),
  summary: z.string().describe(TOOL_TEXT.handoffSummary),
});
const transferParameters = z.object({
  reason: z.string().optional().describe(TOOL_TEXT.transferReason),
});
const endParameters = z.object({
  reason: z.string().optional().describe(TOOL_TEXT.endReason),
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tools of any parameter shape
export type AnyFunctionTool = llm.FunctionTool<any, any, any>;

export interface ToolOptions {
  /** The call flow: which departments exist (default: reception, billing, support, sales). */
  flow?: Flow;
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
  return new llm.ToolContext([
    ...guardedTools(options.extra ?? [], options.isRetired ?? (() => false)),
    ...controlTools(() => control, self, options),
  ]);
}

/**
 * The same tools for a call run by `control` in `session`, with the control tools shared by
 * every call of the process: they only differ by agent, flow and what the agent is offered, and
 * find their call through the session they run in (`ctx.session`). So an agent's tools cost
 * nothing per call but its own business tools.
 */
export function callTools(
  session: voice.AgentSession,
  control: CallControl,
  self: AgentName,
  options: ToolOptions = {},
): llm.ToolContext {
  controls.set(session, control);
  const flow = options.flow ?? DEFAULT_FLOW;
  let byKey = shared.get(flow);
  if (!byKey) shared.set(flow, (byKey = new Map()));
  const offers = options.offers?.map((o) => (o.kind === 'handoff' ? o.department : o.kind));
  const key = `${self}|${options.humanTransfer === true}|${offers?.join(',') ?? '*'}`;
  let tools = byKey.get(key);
  if (!tools)
    byKey.set(key, (tools = controlTools((ctx) => controls.get(ctx.session), self, options)));
  return new llm.ToolContext([
    ...guardedTools(options.extra ?? [], options.isRetired ?? (() => false)),
    ...tools,
  ]);
}

const controls = new WeakMap<voice.AgentSession, CallControl>();
const shared = new WeakMap<Flow, Map<string, AnyFunctionTool[]>>();

/**
 * Business tools whose result, once the agent has been retired, is dropped: it would ask a
 * reply of an agent no longer on the line.
 */
function guardedTools(extra: AnyFunctionTool[], isRetired: () => boolean): AnyFunctionTool[] {
  return extra.map((tool) =>
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
}

/** The control tools `self` is offered; `controlOf` finds the call a tool runs for. */
function controlTools(
  controlOf: (ctx: voice.RunContext) => CallControl | undefined,
  self: AgentName,
  options: ToolOptions,
): AnyFunctionTool[] {
  const flow = options.flow ?? DEFAULT_FLOW;
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
      execute: async (args, { ctx }) => {
        const control = controlOf(ctx);
        // A session no call runs any more: nothing to decide, nothing to say.
        if (!control) return undefined;
        return settle(
          control.request(
            {
              ...toRequest(args as z.infer<P>),
              turnId: ctx.speechHandle.id,
            } as CallEvent,
            self,
          ),
          control,
          self,
          flow,
        );
      },
    });

  const tools: AnyFunctionTool[] = [];
  const offers = options.offers;
  const offered = (kind: ControlRequest['kind'], department?: Department) =>
    offers === undefined ||
    offers.some((o) => o.kind === kind && (o.kind !== 'handoff' || o.department === department));
  for (const department of departmentsOf(flow)) {
    if (!offered('handoff', department)) continue;
    tools.push(
      controlTool(
        TOOL_NAMES.handoff(department),
        TOOL_TEXT.handoff(flow, department),
        handoffParameters,
        ({ reason, summary }) => ({ type: 'handoff.requested', department, reason, summary }),
      ),
    );
  }
  if (self !== 'reception' && offered('return')) {
    tools.push(
      controlTool(
        TOOL_NAMES.returnToReception,
        TOOL_TEXT.returnToReception,
        handoffParameters,
        ({ reason, summary }) => ({ type: 'reception.requested', reason, summary }),
      ),
    );
  }
  if (options.humanTransfer && offered('transfer')) {
    tools.push(
      controlTool(
        TOOL_NAMES.transferToHuman,
        TOOL_TEXT.transferToHuman,
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
      controlTool(TOOL_NAMES.endCall, TOOL_TEXT.endCall, endParameters, ({ reason }) => ({
        type: 'end.requested',
        reason: reason?.trim() || 'caller is done',
      })),
    );
  return tools;
}

function settle(
  decision: Decision,
  control: CallControl,
  self: AgentName,
  flow: Flow,
): RefusalOutput | undefined {
  if (decision.accepted) return undefined;
  switch (decision.code) {
    // The turn's first change already won, the call is over, or the machine moved on from this
    // agent (a retired leg): it must not speak again. No output asks for no reply.
    case 'one-per-turn':
    case 'call-ended':
    case 'retired':
      return undefined;
    default:
      return refusalMessage(decision, control, self, flow);
  }
}

type Refusal = Extract<Decision, { accepted: false }>;

/** What the agent should say to the caller about a refusal, if there is a stock line for it. */
export function refusalLine(decision: Refusal, self: AgentName, flow: Flow): string | undefined {
  switch (decision.code) {
    case 'handoff-cap':
    case 'same-department':
    case 'no-human':
    case 'not-available':
      return lineFor(decision.code, helpOf(flow, self));
    default:
      return undefined;
  }
}

/** The tool output for a refusal, which the model reads as JSON. */
export interface RefusalOutput {
  /** What happened. */
  refused: string;
  /** The line to say to the caller, when there is one. */
  tell_caller?: string;
}

export function refusalMessage(
  decision: Refusal,
  control: Pick<CallControl, 'maxHandoffs'>,
  self: AgentName,
  flow: Flow = DEFAULT_FLOW,
): RefusalOutput {
  const line = refusalLine(decision, self, flow);
  if (!line) return { refused: 'Request refused. Keep helping the caller.' };
  const code = decision.code as Parameters<typeof refusalReason>[0];
  return { refused: refusalReason(code, self, control.maxHandoffs), tell_caller: line };
}
