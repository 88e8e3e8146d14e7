/**
 * The baseline for the live benchmark: a minimal worker written the way LiveKit documents
 * handoffs (agents-js examples): an Agent per department, `onEnter` speaks, tools return
 * `llm.handoff(...)`, no statechart. The live test runs it beside the project's worker, with the
 * same models, voices, speech server and measurement, to compare greeting times (issue 17's
 * criterion: the project's worker within 1.3x of this one).
 *
 * Two deviations, both so the comparison measures latency and nothing else: the same settings
 * (src/config.ts) and models as the project's worker, and the same load report (calls, not host
 * CPU; see src/livekit/workerLoad.ts), so a busy host does not stop either from being offered the call.
 *
 *   npm run build && node dist/bench/nativeWorker.js start
 */
import { fileURLToPath } from 'node:url';
import {
  type JobContext,
  type JobProcess,
  ServerOptions,
  cli,
  defineAgent,
  llm,
  voice,
} from '@livekit/agents';
import * as openai from '@livekit/agents-plugin-openai';
import * as silero from '@livekit/agents-plugin-silero';
import { z } from 'zod';
import type { Department } from '../machines/callMachine.js';
import { loadConfig, requireWorkerCredentials } from '../src/config.js';
import { createOpenAISTT, createVoices } from '../src/models/index.js';
import type { AnyFunctionTool } from '../src/call/tools.js';
import { callLoadOptions } from '../src/livekit/workerLoad.js';

const config = loadConfig();
const voices = createVoices(config);
const GREETING =
  `Thank you for calling ${config.companyName}. ` +
  'You can ask about billing, technical support or sales. How can I help you today?';

function handoffTools(current: Department | 'reception'): AnyFunctionTool[] {
  const tools: AnyFunctionTool[] = [];
  for (const department of ['billing', 'support', 'sales'] as const) {
    if (department === current) continue;
    tools.push(
      llm.tool({
        name: `pass_control_to_${department}`,
        description: `Transfer the caller to the ${department} team.`,
        parameters: z.object({ reason: z.string(), summary: z.string() }),
        execute: async ({ reason }) => llm.handoff({ agent: new Specialist(department, reason) }),
      }),
    );
  }
  tools.push(
    llm.tool({
      name: 'end_call',
      description: 'End the call when the caller is done.',
      parameters: z.object({ reason: z.string() }),
      execute: async (_args, { ctx }) => {
        await ctx.session
          .say(`Thank you for calling ${config.companyName}. Goodbye!`)
          .waitForPlayout();
        void ctx.session.close();
        return 'ended';
      },
    }),
  );
  return tools;
}

class Reception extends voice.Agent {
  constructor() {
    super({
      instructions: `You are the receptionist of ${config.companyName}. Find out what the caller needs and transfer them.`,
      tools: handoffTools('reception'),
      tts: voices('reception'),
    });
  }

  override async onEnter(): Promise<void> {
    this.session.say(GREETING);
  }
}

class Specialist extends voice.Agent {
  readonly #reason: string;

  constructor(department: Department, reason: string) {
    super({
      instructions: `You are the ${department} specialist of ${config.companyName}. Help the caller.`,
      tools: handoffTools(department),
      tts: voices(department),
    });
    this.#reason = reason;
  }

  override async onEnter(): Promise<void> {
    this.session.generateReply({
      instructions: `Opening: greet the caller and acknowledge the reason.\nReason to acknowledge: ${this.#reason}`,
    });
  }
}

export default defineAgent({
  prewarm: async (proc: JobProcess) => {
    proc.userData.vad = await silero.VAD.load();
  },
  entry: async (ctx: JobContext) => {
    await ctx.connect();
    const session = new voice.AgentSession({
      stt: createOpenAISTT(config),
      llm: new openai.LLM({
        model: config.models.llm,
        apiKey: config.openai.apiKey ?? 'no-key',
        ...(config.openai.baseURL ? { baseURL: config.openai.baseURL } : {}),
      }),
      vad: ctx.proc.userData.vad as silero.VAD,
    });
    await session.start({ agent: new Reception(), room: ctx.room });
  },
});

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  requireWorkerCredentials(config);
  cli.runApp(
    new ServerOptions({
      agent: fileURLToPath(import.meta.url),
      agentName: config.agentName,
      ...callLoadOptions(config.maxConcurrentCalls),
      ...(config.livekit.url ? { wsURL: config.livekit.url } : {}),
      ...(config.livekit.apiKey ? { apiKey: config.livekit.apiKey } : {}),
      ...(config.livekit.apiSecret ? { apiSecret: config.livekit.apiSecret } : {}),
    }),
  );
}
