/**
 * Model construction from configuration. The live worker uses OpenAI STT + LLM + TTS with Silero
 * VAD, or one OpenAI Realtime model; the console uses the OpenAI LLM or the offline brain.
 */
import type { llm, tts } from '@livekit/agents';
import * as openai from '@livekit/agents-plugin-openai';
import type { AgentName } from '../../machines/callMachine.js';
import type { Config } from '../config.js';
import { offlineBrain } from './offlineBrain.js';
import { ScriptedLLM } from './scriptedLlm.js';

export const OFFLINE_MODEL_LABEL = 'offline keyword model (not an LLM)';

/** The openai client insists on a key; a local compatible server usually ignores it. */
function openaiAuth(config: Config): { apiKey: string; baseURL?: string } {
  return {
    apiKey: config.openai.apiKey ?? 'no-key',
    ...(config.openai.baseURL ? { baseURL: config.openai.baseURL } : {}),
  };
}

export function createOpenAILLM(config: Config): llm.LLM {
  return new openai.LLM({ model: config.models.llm, ...openaiAuth(config) });
}

export function createOfflineLLM(): ScriptedLLM {
  return new ScriptedLLM(offlineBrain, OFFLINE_MODEL_LABEL);
}

export function createOpenAISTT(config: Config) {
  return new openai.STT({ model: config.models.stt, ...openaiAuth(config) });
}

/** One TTS per agent voice, so the caller hears the change of agent. */
export function createVoices(config: Config): (agent: AgentName) => tts.TTS {
  const cache = new Map<AgentName, tts.TTS>();
  return (agent) => {
    let voice = cache.get(agent);
    if (!voice) {
      voice = new openai.TTS({
        model: config.models.tts,
        voice: config.models.voices[agent] as openai.TTSVoices,
        ...openaiAuth(config),
      });
      cache.set(agent, voice);
    }
    return voice;
  };
}

export function createRealtimeModel(config: Config) {
  return new openai.realtime.RealtimeModel({
    model: config.models.realtime,
    voice: config.models.voices.reception,
    ...openaiAuth(config),
  });
}
