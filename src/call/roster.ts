/**
 * Builds the call's agents: each one's instructions (with the handoff brief when it is the one
 * handed to), its tools (built once per call, only those its state can accept), its voice and
 * model, and the conversation so far. Building touches no session: the session effects switch
 * the agent in (src/call/effects.ts), and its `onEnter` goes back to them.
 */
import type { llm, tts, voice } from '@livekit/agents';
import type { AgentName, CallContext, HandoffRecord } from '../../machines/callMachine.js';
import type { Flow } from '../../machines/flow.js';
import type { ControlRequest } from '../../machines/offers.js';
import { CallAgent } from './agents.js';
import type { CallConversation } from './conversation.js';
import type { Floor } from './floor.js';
import { type RestorePoint, restoredChatContext } from './handover.js';
import { handoffBrief, instructionsFor } from './lines.js';
import type { ReplyReporter } from './replyGuard.js';
import { type AnyFunctionTool, type CallControl, callTools } from './tools.js';

/** What an agent's `onEnter` needs to open its part of the call. */
export interface AgentEntry {
  name: AgentName;
  /** The handoff that brought the call to this agent: it opens with it. */
  brief?: HandoffRecord;
  /** A call resumed after a crash: the agent picks up instead of greeting. */
  resumed: boolean;
  tts?: tts.TTS;
}

export interface RosterOptions {
  flow: Flow;
  companyName: string;
  /** Tools send their requests here. */
  control: CallControl;
  /** The call's session: the tools, shared by every call, find their call through it. */
  session: voice.AgentSession;
  floor: Floor;
  conversation: CallConversation;
  replies: ReplyReporter;
  /** What each agent's state can accept (machines/offers.ts). */
  offers: Record<AgentName, ControlRequest[]>;
  humanNumberFor: (agent: AgentName) => string | undefined;
  ttsFor?: ((agent: AgentName) => tts.TTS | undefined) | undefined;
  llmFor?: ((agent: AgentName) => llm.LLM | llm.RealtimeModel | undefined) | undefined;
  extraTools?: ((agent: AgentName) => AnyFunctionTool[]) | undefined;
  /** Each voice built is watched for failures (the speech-health monitor). */
  watchVoice: (voice: tts.TTS | undefined) => void;
  onEnter: (agent: CallAgent, entry: AgentEntry) => void;
}

export class AgentRoster {
  /** Each agent's tools, built once per call; `isRetired` reads the agent's latest instance. */
  readonly #tools = new Map<AgentName, llm.ToolContext>();
  readonly #latest = new Map<AgentName, CallAgent>();

  constructor(private readonly options: RosterOptions) {}

  /**
   * Agent `name` for the call as `context` has it (null: a new call), or for a leg that starts
   * from `restore` (the carried conversation, the handoff that brought it).
   */
  build(name: AgentName, context: CallContext | null, restore?: RestorePoint): CallAgent {
    const options = this.options;
    const handoff = restore ? (restore.handoff ?? undefined) : context?.handoffs.at(-1);
    const brief = handoff && handoff.to === name ? handoff : undefined;
    const chatCtx = restore
      ? restoredChatContext(restore.history)
      : context
        ? options.conversation.soFar()
        : undefined;
    const tts = options.ttsFor?.(name);
    const model = options.llmFor?.(name);
    options.watchVoice(tts);
    const entry: AgentEntry = {
      name,
      ...(brief ? { brief } : {}),
      resumed: restore?.resumed ?? false,
      ...(tts ? { tts } : {}),
    };
    const agent = new CallAgent({
      name,
      instructions: instructionsFor(
        options.flow,
        name,
        options.companyName,
        brief ? handoffBrief(brief, context?.caller ?? null) : undefined,
      ),
      tools: this.#toolsFor(name),
      ...(chatCtx ? { chatCtx } : {}),
      ...(tts ? { tts } : {}),
      ...(model ? { llm: model } : {}),
      replies: options.replies,
      floor: options.floor,
      onEnter: (agent) => options.onEnter(agent, entry),
    });
    this.#latest.set(name, agent);
    return agent;
  }

  #toolsFor(name: AgentName): llm.ToolContext {
    let tools = this.#tools.get(name);
    if (!tools) {
      const options = this.options;
      tools = callTools(options.session, options.control, name, {
        flow: options.flow,
        extra: options.extraTools?.(name) ?? [],
        humanTransfer: options.humanNumberFor(name) !== undefined,
        // Only what this agent's state accepts: no tool the machine would refuse outright.
        offers: options.offers[name] ?? [],
        isRetired: () => !options.floor.holds(this.#latest.get(name)),
      });
      this.#tools.set(name, tools);
    }
    return tools;
  }
}
