/**
 * The voice pipeline of a console call, as in production: the OpenAI plugin's STT (realtime
 * transcription websocket) and TTS, Silero VAD, VAD turn detection and interruptions, with the
 * session's audio going through a phone line instead of a room. With MODEL_MODE=realtime, as the
 * worker does it: one OpenAI realtime model per agent voice hears and speaks, and detects turns
 * on its server (no STT, TTS or VAD in the session).
 */
import { type VAD, type llm, type tts, voice } from '@livekit/agents';
import * as silero from '@livekit/agents-plugin-silero';
import type { Logger } from 'pino';
import type { AgentName } from '../../machines/callMachine.js';
import type { Config } from '../config.js';
import {
  REALTIME_SESSION_OPTIONS,
  createOpenAISTT,
  createRealtimeVoices,
  createVoices,
} from '../models/index.js';
import { HandoffAudioInput } from '../call/handoffAudio.js';
import type { PhoneLine } from './line.js';

/**
 * How long the caller must speak over an agent before it pauses. The SDK's default (500 ms) plus
 * VAD latency leaves the caller talking over the agent for most of a second; with this the agent
 * stops within 300 ms of the caller's voice even on two busy cores (test/voiceTurns.test.ts;
 * 150 ms left no margin there). A false start costs little: the output pauses, and the SDK
 * resumes it when no words follow.
 */
export const INTERRUPT_AFTER_MS = 80;

export interface VoicePipeline {
  /** A session for one leg of the call, its audio on the line. */
  createSession(
    model: llm.LLM | llm.RealtimeModel,
    options: Pick<voice.AgentSessionOptions, 'connOptions'>,
  ): voice.AgentSession;
  /** Pipeline mode: each agent's TTS voice. */
  ttsFor?: (agent: AgentName) => tts.TTS;
  /** Realtime mode: each agent's realtime model, in its voice. */
  llmFor?: (agent: AgentName) => llm.RealtimeModel;
}

let endOfTurnNoticeLogged = false;

/**
 * STT and TTS go to `speechBaseURL` (the local speech server) whatever model the call uses.
 * Silero loads from its package, offline. Realtime models go to `realtimeBaseURL`.
 */
export async function createVoicePipeline(options: {
  config: Config;
  speechBaseURL: string;
  /** MODEL_MODE=realtime: where the realtime models connect (default: OPENAI_BASE_URL). */
  realtimeBaseURL?: string;
  line: PhoneLine;
  logger: Logger;
}): Promise<VoicePipeline> {
  const { config, line, logger } = options;
  if (config.models.mode === 'realtime') {
    const baseURL = options.realtimeBaseURL ?? config.openai.baseURL;
    return {
      llmFor: createRealtimeVoices({
        ...config,
        openai: { apiKey: config.openai.apiKey ?? 'local', baseURL },
      }),
      createSession: (model, sessionOptions) =>
        onLine(
          new voice.AgentSession({ ...sessionOptions, ...REALTIME_SESSION_OPTIONS, llm: model }),
          line,
          // Each agent has its own realtime session: what the caller says during a switch is
          // kept for the next one (set before the session starts: agents-js 1.9 does not
          // re-attach a running activity to a new input).
          (input) => new HandoffAudioInput(input),
        ),
    };
  }
  const speechConfig: Config = {
    ...config,
    openai: { apiKey: config.openai.apiKey ?? 'local', baseURL: options.speechBaseURL },
  };
  const vad: VAD = await silero.VAD.load();
  const ttsFor = createVoices(speechConfig);
  if (!endOfTurnNoticeLogged) {
    endOfTurnNoticeLogged = true;
    // LiveKit's end-of-turn model ships with the SDK but runs in the worker's shared inference
    // process (agents 1.9), which a console does not start.
    logger.warn('end-of-turn model runs only in a worker; turns end on VAD silence');
  }
  return {
    ttsFor,
    createSession: (model, sessionOptions) => {
      const session = new voice.AgentSession({
        ...sessionOptions,
        llm: model,
        stt: createOpenAISTT(speechConfig, vad),
        vad,
        tts: ttsFor('reception'),
        turnHandling: {
          turnDetection: 'vad',
          interruption: { enabled: true, mode: 'vad', minDuration: INTERRUPT_AFTER_MS },
        },
      });
      return onLine(session, line);
    },
  };
}

/** The session's audio in and out through the phone line. */
function onLine(
  session: voice.AgentSession,
  line: PhoneLine,
  wrap: (input: voice.AudioInput) => voice.AudioInput = (input) => input,
): voice.AgentSession {
  const input = wrap(line.input());
  session.input.audio = input;
  session.output.audio = line.output();
  // The session only detaches its input when it closes: stop feeding it (a leg handed over).
  session.on(voice.AgentSessionEventTypes.Close, () => void input.close());
  return session;
}
