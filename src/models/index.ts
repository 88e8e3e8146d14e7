/**
 * Model construction from configuration. The live worker uses OpenAI STT + LLM + TTS with Silero
 * VAD, or one OpenAI Realtime model; the console uses the OpenAI LLM or the offline brain.
 */
import { type VAD, llm, type stt, type tts, type voice } from '@livekit/agents';
import * as openai from '@livekit/agents-plugin-openai';
import OpenAI from 'openai';
import type { AgentName } from '../../machines/callMachine.js';
import type { Config } from '../config.js';
import { createOfflineBrain } from './offlineBrain.js';
import type { Flow } from '../../machines/flow.js';
import { WireObserver } from './openaiWire.js';
import { type Brain, ScriptedLLM } from './scriptedLlm.js';
import { FIXED_LINE_PREFIX } from '../call/lines.js';
import { createSpeechToText, createSpeechVoices } from './speech.js';

export const OFFLINE_MODEL_LABEL = 'offline keyword model (not an LLM)';

/** The openai client insists on a key; a local compatible server usually ignores it. */
function openaiAuth(config: Config): { apiKey: string; baseURL?: string } {
  return {
    apiKey: config.openai.apiKey ?? 'no-key',
    ...(config.openai.baseURL ? { baseURL: config.openai.baseURL } : {}),
  };
}

/**
 * The OpenAI LLM, through a client whose `fetch` notes what the SDK drops (Retry-After, a
 * content-filter finish) for the reply guard, and no retries of its own: the machine decides.
 * With OPENAI_FALLBACK_MODEL, the SDK's FallbackAdapter moves to it when the first fails.
 */
export function createOpenAILLM(config: Config, wire = new WireObserver()): llm.LLM {
  const auth = openaiAuth(config);
  const client = (baseURL: string | undefined) =>
    new OpenAI({
      apiKey: auth.apiKey,
      ...(baseURL ? { baseURL } : {}),
      maxRetries: 0,
      fetch: wire.fetch,
    });
  const primary = new openai.LLM({ model: config.models.llm, client: client(auth.baseURL) });
  const fallback = config.models.fallback;
  if (!fallback) return primary;
  return new llm.FallbackAdapter({
    llms: [
      primary,
      new openai.LLM({ model: fallback.llm, client: client(fallback.baseURL ?? auth.baseURL) }),
    ],
    attemptTimeout: config.reply.deadlines.firstTokenMs / 1000,
    maxRetryPerLLM: 0,
  });
}

/**
 * Session options for a call: the reply guard enforces deadlines and the machine decides
 * retries, so the SDK's own model retries are off, and the session never closes itself over
 * model errors (the machine ends the call, with words, after MAX_FAILED_TURNS).
 */
export function callSessionOptions(
  config: Pick<Config, 'reply'>,
): Pick<voice.AgentSessionOptions, 'connOptions'> {
  return {
    connOptions: {
      llmConnOptions: { maxRetry: 0, timeoutMs: config.reply.deadlines.firstTokenMs },
      // Speech-to-text keeps trying its providers for as long as the call lasts: while none
      // hears, the machine decides (a line, then a person or a goodbye after SPEECH_OUTAGE_MS).
      sttConnOptions: { maxRetry: Number.MAX_SAFE_INTEGER, retryIntervalMs: 1000 },
      maxUnrecoverableErrors: Number.MAX_SAFE_INTEGER,
    },
  };
}

export function createOfflineLLM(flow?: Flow): ScriptedLLM {
  return new ScriptedLLM(createOfflineBrain(flow), OFFLINE_MODEL_LABEL);
}

/**
 * The offline model behind the local Realtime server (MODEL_MODE=realtime in the voice
 * console): a realtime model speaks the bridge's fixed lines (greeting, bridge lines, goodbye)
 * by generating them, so it says them verbatim, as an instructed model does.
 */
export function offlineRealtimeBrain(brain: Brain): Brain {
  return (request) => {
    const line = fixedLineIn(request.instructions);
    return line === null ? brain(request) : { text: line };
  };
}

/** The fixed line a model is asked to speak in `instructions` (`fixedLineInstructions`), if any. */
export function fixedLineIn(instructions: string): string | null {
  const at = instructions.lastIndexOf(FIXED_LINE_PREFIX);
  if (at === -1) return null;
  const quoted = /^\s*"(.*)"\s*$/s.exec(instructions.slice(at + FIXED_LINE_PREFIX.length));
  return quoted ? quoted[1]! : null;
}

/**
 * Speech-to-text: with a VAD, the SDK's fallback over the realtime websocket, the same
 * provider's HTTP endpoint and a second provider (see ./speech.ts); without, the websocket.
 */
export function createOpenAISTT(config: Config, vad?: VAD): stt.STT {
  return createSpeechToText(config, vad);
}

/** One voice per agent, each with its fallback voice, so the caller hears the change of agent. */
export function createVoices(config: Config): (agent: AgentName) => tts.TTS {
  return createSpeechVoices(config);
}

export function createRealtimeModel(
  config: Config,
  voice: string = config.models.voices.reception ?? config.flow.reception.voice,
) {
  return new openai.realtime.RealtimeModel({
    model: config.models.realtime,
    voice,
    ...openaiAuth(config),
  });
}

/**
 * Session options with a realtime model: turns are detected by the model's server (the
 * plugin's default, semantic VAD), so the session runs no VAD and no turn detector of its own.
 */
export const REALTIME_SESSION_OPTIONS = {
  vad: null,
  turnHandling: { turnDetection: 'realtime_llm' },
} satisfies Pick<voice.AgentSessionOptions, 'vad' | 'turnHandling'>;

/**
 * MODEL_MODE=realtime: one realtime model per agent, in that agent's voice (VOICE_*). A realtime
 * session cannot change its voice once it has spoken (OpenAI refuses the update), so the SDK
 * opening a new session for each agent's model is what lets the caller hear the change of agent.
 */
export function createRealtimeVoices(
  config: Config,
): (agent: AgentName) => openai.realtime.RealtimeModel {
  const models = new Map<AgentName, openai.realtime.RealtimeModel>();
  return (agent) => {
    let model = models.get(agent);
    if (!model) {
      model = createRealtimeModel(config, config.models.voices[agent]);
      models.set(agent, model);
    }
    return model;
  };
}
