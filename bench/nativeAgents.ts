/**
 * The benchmark's baseline agents: the agents of bench/nativeWorker.ts (written the way LiveKit
 * documents handoffs: an Agent per department, `onEnter` speaks, a tool returns
 * `llm.handoff(...)`, no statechart), with the choice LiveKit's documentation offers: a handoff
 * with `returns` (the old agent makes one more model call on the tool's output, and says it: its
 * filler) or without (the new agent's `onEnter` is the next thing that happens).
 *
 * The filler the old agent is asked to say is the project's bridge line, and the specialist's
 * opening asks for the same thing as the project's, so both sides say the same words.
 */
import { llm, type tts, voice } from '@livekit/agents';
import { z } from 'zod';
import type { AgentName, Department } from '../machines/callMachine.js';
import { DEFAULT_FLOW } from '../machines/flow.js';
import { LINES } from '../src/call/lines.js';
import type { AnyFunctionTool } from '../src/call/tools.js';

export type NativeHandoff = 'returns' | 'no-returns';

export interface NativeAgentOptions {
  companyName: string;
  handoff: NativeHandoff;
  voices: (agent: AgentName) => tts.TTS | undefined;
}

/** Built once: LiveKit's examples declare parameters inline, which only costs more. */
const handoffParameters = z.object({ reason: z.string(), summary: z.string() });

function handoffTools(options: NativeAgentOptions, current: AgentName): AnyFunctionTool[] {
  const tools: AnyFunctionTool[] = [];
  for (const department of ['billing', 'support', 'sales'] as const) {
    if (department === current) continue;
    tools.push(
      llm.tool({
        name: `pass_control_to_${department}`,
        description: `Transfer the caller to the ${department} team.`,
        parameters: handoffParameters,
        execute: async ({ reason }) =>
          llm.handoff({
            agent: new NativeSpecialist(options, department, reason),
            ...(options.handoff === 'returns'
              ? { returns: `Transferring. Tell the caller: "${LINES.bridge(department)}"` }
              : {}),
          }),
      }),
    );
  }
  if (current !== 'reception') {
    tools.push(
      llm.tool({
        name: 'return_to_reception',
        description: 'Send the caller back to reception when their need fits no team.',
        parameters: handoffParameters,
        execute: async () => llm.handoff({ agent: new NativeReception(options) }),
      }),
    );
  }
  return tools;
}

export class NativeReception extends voice.Agent {
  readonly #greeting: string;

  constructor(options: NativeAgentOptions) {
    const tts = options.voices('reception');
    super({
      instructions: `You are the receptionist of ${options.companyName}. Find out what the caller needs and transfer them.`,
      tools: handoffTools(options, 'reception'),
      ...(tts ? { tts } : {}),
    });
    this.#greeting = LINES.greeting(options.companyName, DEFAULT_FLOW);
  }

  override async onEnter(): Promise<void> {
    this.session.say(this.#greeting);
  }
}

export class NativeSpecialist extends voice.Agent {
  readonly #reason: string;

  constructor(options: NativeAgentOptions, department: Department, reason: string) {
    const tts = options.voices(department);
    super({
      instructions: `You are the ${department} specialist of ${options.companyName}. Help the caller.`,
      tools: handoffTools(options, department),
      ...(tts ? { tts } : {}),
    });
    this.#reason = reason;
  }

  override async onEnter(): Promise<void> {
    this.session.generateReply({
      instructions: `Opening: greet the caller and acknowledge the reason.\nReason to acknowledge: ${this.#reason}`,
    });
  }
}
