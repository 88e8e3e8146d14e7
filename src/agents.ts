/**
 * The four agents of a call. They are small: instructions, tools, an optional voice, and an
 * `onEnter` that tells the bridge they are live. Which one talks is the machine's decision.
 */
import { llm, type tts, voice } from '@livekit/agents';
import type { AgentName, CallerInfo, HandoffRecord } from '../machines/callMachine.js';
import { type ReplyReporter, guardReply } from './replyGuard.js';

const PHONE_STYLE =
  'You are on a phone call: speak in short, plain sentences, no lists, no markdown, no emojis. ' +
  'Never read out tool names or say that you are calling a tool.';

const ROLES: Record<AgentName, string> = {
  reception:
    'You are the receptionist. Greet callers, find out what they need and hand them to the right ' +
    'team: billing (bills, charges, refunds, payments), support (something broken or not working), ' +
    'sales (buying, pricing, upgrades). Hand off as soon as the need is clear; do not try to solve ' +
    'it yourself. Put everything the caller said that matters in the summary.',
  billing:
    'You are the billing specialist. You handle bills, charges, refunds, payment methods and ' +
    'subscriptions.',
  support:
    'You are the support specialist. You troubleshoot products and accounts that are not working, ' +
    'step by step.',
  sales:
    'You are the sales specialist. You explain plans and prices, handle upgrades and new purchases.',
};

const SPECIALIST_RULES =
  'If the caller needs another team, transfer them with the matching tool. If their need fits no ' +
  'team, return them to reception. When they are done, end the call.';

export function instructionsFor(name: AgentName, companyName: string, brief?: string): string {
  const parts = [
    `${ROLES[name]} You work for ${companyName}.`,
    PHONE_STYLE,
    ...(name === 'reception' ? [] : [SPECIALIST_RULES]),
    ...(brief ? [brief] : []),
  ];
  return parts.join('\n\n');
}

/** What the next agent is told about the handoff, appended to its instructions. */
export function handoffBrief(handoff: HandoffRecord, caller: CallerInfo | null): string {
  const lines = [
    '## Handoff brief',
    `You are taking over this call from ${handoff.from}.`,
    `Reason: ${handoff.reason}`,
    `Summary: ${handoff.summary}`,
  ];
  if (caller?.number) lines.push(`Caller number: ${caller.number}`);
  if (caller?.name) lines.push(`Caller name: ${caller.name}`);
  lines.push(
    'The conversation so far is above. Never ask the caller to repeat what they already said.',
  );
  return lines.join('\n');
}

/** The instruction for an agent's first reply after a handoff. */
export function openingInstructions(name: AgentName, handoff: HandoffRecord): string {
  const who = name === 'reception' ? 'reception' : `the ${name} team`;
  return [
    `Opening: you have just taken over the call as ${who}. In one short sentence, say who you are`,
    'and acknowledge the reason below, then continue from what the caller already said.',
    'Do not ask them to repeat it.',
    `Reason to acknowledge: ${handoff.reason}`,
  ].join(' \n');
}

/** Instructions that make the model speak one fixed line (greeting, goodbye) verbatim. */
export function fixedLineInstructions(text: string): string {
  return `${FIXED_LINE_PREFIX} "${text}"`;
}
const FIXED_LINE_PREFIX = 'Say exactly this, and nothing else:';

/** The first words after resuming a call whose worker stopped: pick up, do not greet again. */
export const RESUME_INSTRUCTIONS =
  'Resuming: the call was briefly interrupted on our side. In one short sentence, apologise for ' +
  'the interruption and pick up exactly where the conversation above left off. Do not greet ' +
  'the caller again and do not ask them to repeat anything.';

export interface CallAgentOptions {
  name: AgentName;
  instructions: string;
  tools: llm.ToolContext;
  chatCtx?: llm.ChatContext;
  tts?: tts.TTS;
  /** Runs when the agent's activity has started: the agent is now the one talking. */
  onEnter: (agent: CallAgent) => void;
  /** Deadlines, hold lines and failures of this agent's model requests, for the machine. */
  replies?: ReplyReporter;
}

export class CallAgent extends voice.Agent {
  readonly callAgent: AgentName;
  readonly #onEnter: (agent: CallAgent) => void;
  readonly #replies: ReplyReporter | undefined;
  #retired = false;

  constructor(options: CallAgentOptions) {
    super({
      id: options.name,
      instructions: options.instructions,
      tools: options.tools,
      ...(options.chatCtx ? { chatCtx: options.chatCtx } : {}),
      ...(options.tts ? { tts: options.tts } : {}),
    });
    this.callAgent = options.name;
    this.#onEnter = options.onEnter;
    this.#replies = options.replies;
  }

  override async onEnter(): Promise<void> {
    this.#onEnter(this);
  }

  /**
   * The machine has moved on from this agent (handoff or end). Any reply still pending in its
   * turn, such as the answer to another tool batched with the handoff, is dropped without a
   * model call: the caller's next voice is the new agent's.
   */
  retire(): void {
    this.#retired = true;
  }

  get retired(): boolean {
    return this.#retired;
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
    if (this.#retired && !isFixedLine) {
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
