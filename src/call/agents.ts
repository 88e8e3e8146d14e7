/**
 * The agents of a call. They are small: instructions, tools, an optional voice, and an
 * `onEnter` that tells the bridge they are live. Which one talks is the machine's decision.
 */
import { llm, type tts, voice } from '@livekit/agents';
import type { AgentName } from '../../machines/callMachine.js';
import type { Floor } from './floor.js';
import { FIXED_LINE_PREFIX } from './lines.js';
import { watchRealtimeReplies } from './realtimeReplies.js';
import { type ReplyReporter, guardReply } from './replyGuard.js';

export interface CallAgentOptions {
  name: AgentName;
  instructions: string;
  tools: llm.ToolContext;
  /**
   * The conversation so far, taken as it is: built fresh for this agent and without tool calls
   * (src/call/conversation.ts), so the SDK's copy of it, which only drops calls to tools the
   * agent lacks, would copy every item again for nothing.
   */
  chatCtx?: llm.ChatContext;
  tts?: tts.TTS;
  /** This agent's own model (MODEL_MODE=realtime: a realtime model in the agent's voice). */
  llm?: llm.LLM | llm.RealtimeModel;
  /** Runs when the agent's activity has started: the agent is now the one talking. */
  onEnter: (agent: CallAgent) => void;
  /** Deadlines, hold lines and failures of this agent's model requests, for the machine. */
  replies?: ReplyReporter;
  /** Who may speak: without the floor the agent makes no model call. */
  floor: Floor;
}

export class CallAgent extends voice.Agent {
  readonly callAgent: AgentName;
  readonly #onEnter: (agent: CallAgent) => void;
  readonly #replies: ReplyReporter | undefined;
  readonly #floor: Floor;
  #unwatchRealtime: (() => void) | undefined;

  constructor(options: CallAgentOptions) {
    super({
      id: options.name,
      instructions: options.instructions,
      tools: options.tools,
      ...(options.tts ? { tts: options.tts } : {}),
      ...(options.llm ? { llm: options.llm } : {}),
    });
    if (options.chatCtx) this._chatCtx = options.chatCtx;
    this.callAgent = options.name;
    this.#onEnter = options.onEnter;
    this.#replies = options.replies;
    this.#floor = options.floor;
  }

  override async onEnter(): Promise<void> {
    // A realtime model answers on its own server, not through llmNode: watch its session.
    const realtime = this.getActivityOrThrow().realtimeLLMSession;
    if (realtime && this.#replies) {
      this.#unwatchRealtime = watchRealtimeReplies(this.#replies, {
        agent: this.callAgent,
        session: realtime,
        requestReply: () => (this.retired ? undefined : this.#replies?.askAgain()),
      });
    }
    this.#onEnter(this);
  }

  override async onExit(): Promise<void> {
    this.#unwatchRealtime?.();
    this.#unwatchRealtime = undefined;
  }

  /**
   * The machine has moved on from this agent (handoff or end) and the bridge gave the floor to
   * another or to nobody. Any reply still pending in its turn, such as the answer to another tool
   * batched with the handoff, is dropped without a model call: the caller's next voice is the
   * new agent's.
   */
  get retired(): boolean {
    return !this.#floor.holds(this);
  }

  override async llmNode(
    ...args: Parameters<voice.Agent['llmNode']>
  ): ReturnType<voice.Agent['llmNode']> {
    const [chatCtx] = args;
    const isFixedLine = chatCtx.items.some(
      (item) =>
        item.type === 'message' &&
        item.role === 'system' &&
        (item.textContent ?? '').includes(FIXED_LINE_PREFIX),
    );
    // An empty stream, not null: the SDK waits on a stream to finish the turn.
    if (this.retired && !isFixedLine) {
      return new ReadableStream({ start: (controller) => controller.close() });
    }
    const [, toolCtx, modelSettings] = args;
    // A fixed line (greeting, goodbye) is the bridge's, not a reply: it is spoken even after the
    // end, and its health says nothing about the caller's turn.
    if (!this.#replies || isFixedLine) return super.llmNode(...args);
    const activity = this.getActivityOrThrow();
    return guardReply(this.#replies, {
      agent: this.callAgent,
      model: activity.llm instanceof llm.LLM ? activity.llm : null,
      chatCtx,
      modelSettings,
      open: (ctx, settings) => super.llmNode(ctx, toolCtx, { ...modelSettings, ...settings }),
      interrupt: () => {
        const speech = activity.currentSpeech;
        if (!speech || speech.done()) return false;
        speech.interrupt(true);
        return true;
      },
    });
  }
}
