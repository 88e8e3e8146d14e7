/**
 * One benchmarked handoff, in audio: the greeting plays, the caller says one line asking for
 * billing (flite, down the real-time phone line of the voice console), and the call runs until
 * the specialist's voice starts; then the caller hangs up. Everything between is the production
 * voice pipeline (Silero VAD, the OpenAI plugin's STT, LLM and TTS against the local speech
 * server and the benchmark's model server), for the project (its machine, agents, tools and
 * bridge, in process) or for the native LiveKit agents of ./nativeAgents.ts.
 *
 * Times are on the line's clock, from the end of the caller's speech.
 */
import { voice } from '@livekit/agents';
import type { Logger } from 'pino';
import type { AgentName } from '../machines/callMachine.js';
import { type Config, loadConfig } from '../src/config.js';
import { callSessionOptions, createOpenAILLM } from '../src/models/index.js';
import { synthesize } from '../src/speech/flite.js';
import type { SpeechServer } from '../src/speech/server.js';
import { bytesToSamples } from '../src/speech/wav.js';
import { PhoneLine } from '../src/voice/line.js';
import { createVoicePipeline } from '../src/voice/session.js';
import { CALLER_VOICE, VoiceCall } from '../src/voice/voiceCall.js';
import type { ModelServer } from './modelServer.js';
import { type NativeHandoff, NativeReception, NativeSpecialist } from './nativeAgents.js';

export const CALLER_LINE = 'Hi, I was charged twice for my subscription this month';

export type Variant =
  { kind: 'project'; opening: 'model' | 'brief' } | { kind: 'native'; handoff: NativeHandoff };

export function variantName(variant: Variant): string {
  return variant.kind === 'project'
    ? `project${variant.opening === 'brief' ? ' (HANDOFF_OPENING=brief)' : ''}`
    : `native llm.handoff ${variant.handoff === 'returns' ? 'with' : 'without'} returns`;
}

/** A stretch of agent audio, relative to the end of the caller's line. */
export interface HeardSegment {
  startMs: number;
  endMs: number;
  /** Whose voice: the agent that took the line (`old`) or the specialist (`new`). */
  who: 'old' | 'new';
}

export interface HandoffTiming {
  /** First audio of the old agent after the caller stopped (the bridge line); null if none. */
  bridgeMs: number | null;
  /** First audio in the specialist's voice. */
  specialistMs: number;
  /** The longest stretch with no agent audio between the caller's end and the specialist. */
  longestSilenceMs: number;
  /** Model requests from the caller's line until the specialist's voice. */
  modelRequests: number;
  /**
   * From the caller's line reaching the model (the deciding request arriving at the model
   * server) to the specialist's first audio: the clock, without VAD and recognition.
   */
  specialistAfterModelMs: number;
  segments: HeardSegment[];
}

export interface HandoffCallOptions {
  variant: Variant;
  model: ModelServer;
  speech: SpeechServer;
  logger: Logger;
  /** Give up on a call after this long (a broken call fails the run, it does not hang it). */
  timeoutMs?: number;
}

/** Settings for a benchmarked call: the models at the local servers, defaults otherwise. */
function benchConfig(model: ModelServer, variant: Variant): Config {
  return loadConfig({
    OPENAI_API_KEY: 'bench',
    OPENAI_BASE_URL: model.url,
    // The hold line is for a model slower than any L measured here; it would only add noise.
    HOLD_LINE_MS: '30000',
    ...(variant.kind === 'project' ? { HANDOFF_OPENING: variant.opening } : {}),
  });
}

/**
 * What the line heard, with each segment's speaker told by the voice it was synthesised in, and
 * when the specialist's playback started (per the session, to stop the call there).
 */
class Heard {
  readonly segments: { startMs: number; endMs: number; voice: string | undefined }[] = [];
  /** Line time the specialist's audio started playing, once it has. */
  specialistStartMs: number | null = null;
  #waiters: (() => void)[] = [];

  constructor(
    readonly line: PhoneLine,
    readonly speech: SpeechServer,
    isSpecialist: () => boolean,
  ) {
    line.on('playbackStarted', ({ atMs }) => {
      if (this.specialistStartMs === null && isSpecialist()) this.specialistStartMs = atMs;
      this.#wake();
    });
    line.on('tick', () => this.#wake());
    line.on('played', (segment) => {
      this.segments.push({
        startMs: segment.startMs,
        endMs: segment.endMs,
        voice: speech.voiceOf(segment.samples)?.voice,
      });
      this.#wake();
    });
  }

  /** Resolves once `ready` holds, checked on every tick and segment. */
  until(ready: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (ready() ? resolve() : this.#waiters.push(check));
      check();
    });
  }

  /** The specialist has been heard for `ms` of line time (enough to tell its voice). */
  specialistHeardFor(ms: number): Promise<void> {
    return this.until(
      () => this.specialistStartMs !== null && this.line.nowMs() >= this.specialistStartMs + ms,
    );
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** Enough of the specialist's voice to tell it; then the caller hangs up. */
const SPECIALIST_HEARD_MS = 400;

function measure(
  heard: Heard,
  callerEndMs: number,
  oldVoice: string,
  requests: number,
  decisionAtMs: number,
): HandoffTiming {
  const after = heard.segments
    .filter((s) => s.endMs > callerEndMs)
    .map((s) => ({
      startMs: s.startMs - callerEndMs,
      endMs: s.endMs - callerEndMs,
      who: (s.voice === oldVoice ? 'old' : 'new') as 'old' | 'new',
    }));
  const specialist = after.find((s) => s.who === 'new');
  if (!specialist) throw new Error('the specialist was never heard');
  const bridge = after.find((s) => s.who === 'old' && s.startMs < specialist.startMs);
  let longest = 0;
  let cursor = 0;
  for (const s of after) {
    if (s.startMs >= specialist.startMs) break;
    longest = Math.max(longest, s.startMs - cursor);
    cursor = Math.max(cursor, s.endMs);
  }
  longest = Math.max(longest, specialist.startMs - cursor);
  return {
    bridgeMs: bridge ? bridge.startMs : null,
    specialistMs: specialist.startMs,
    longestSilenceMs: longest,
    modelRequests: requests,
    specialistAfterModelMs: specialist.startMs + callerEndMs - decisionAtMs,
    segments: after.filter((s) => s.startMs <= specialist.startMs),
  };
}

export async function runHandoffCall(options: HandoffCallOptions): Promise<HandoffTiming> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const served = options.model.served.length;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // What the model was asked says where the call stopped (a misheard line, a lost handoff).
      const asked = options.model.served.slice(served).map((r) => r.request.messages.at(-1));
      reject(new Error(`benchmark call timed out; the model was asked ${JSON.stringify(asked)}`));
    }, timeoutMs);
  });
  const run = options.variant.kind === 'project' ? runProjectCall(options) : runNativeCall(options);
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function callerSays(line: PhoneLine) {
  return line.speak(bytesToSamples(await synthesize(CALLER_LINE, CALLER_VOICE)));
}

async function runProjectCall(options: HandoffCallOptions): Promise<HandoffTiming> {
  const config = benchConfig(options.model, options.variant);
  const call = await VoiceCall.create({
    config,
    createModel: (wire) => createOpenAILLM(config, wire),
    logger: options.logger,
    observer: {},
    handoffMode: 'in-process',
    phrases: [CALLER_LINE],
    speechServer: options.speech,
  });
  const heard = new Heard(
    call.line,
    options.speech,
    () => (call.call.bridge.speakingAgent ?? 'reception') !== 'reception',
  );
  try {
    options.model.clock = () => call.line.nowMs();
    await call.start();
    const before = options.model.served.length;
    const spoken = await callerSays(call.line);
    await heard.specialistHeardFor(SPECIALIST_HEARD_MS);
    const requests = options.model.served.length - before;
    call.hangUp();
    await call.close();
    const decisionAtMs = options.model.served[before]!.atMs;
    return measure(
      heard,
      spoken.endMs,
      config.models.voices.reception ?? '',
      requests,
      decisionAtMs,
    );
  } finally {
    await call.close();
  }
}

async function runNativeCall(options: HandoffCallOptions): Promise<HandoffTiming> {
  const variant = options.variant as Extract<Variant, { kind: 'native' }>;
  const config = benchConfig(options.model, variant);
  const line = new PhoneLine();
  const pipeline = await createVoicePipeline({
    config,
    speechBaseURL: options.speech.url,
    line,
    logger: options.logger,
  });
  // The native agents speak through the pipeline (never realtime here): it has a voice per agent.
  const voices = (agent: AgentName) => pipeline.ttsFor!(agent);
  const session = pipeline.createSession(createOpenAILLM(config), callSessionOptions(config));
  // With `returns` the session is on the specialist while the old agent's filler still plays:
  // the specialist's audio is the first to start after the filler was played.
  let segmentsBefore = Number.MAX_SAFE_INTEGER;
  const heard: Heard = new Heard(
    line,
    options.speech,
    () =>
      session.currentAgent instanceof NativeSpecialist &&
      (variant.handoff === 'no-returns' || heard.segments.length > segmentsBefore),
  );
  // The same error listener as the project's bridge: without one the SDK's emit throws.
  session.on(voice.AgentSessionEventTypes.Error, () => {});
  try {
    options.model.clock = () => line.nowMs();
    line.start();
    await session.start({
      agent: new NativeReception({
        companyName: config.companyName,
        handoff: variant.handoff,
        voices,
      }),
    });
    await heard.until(() => heard.segments.length > 0); // the greeting
    segmentsBefore = heard.segments.length;
    const before = options.model.served.length;
    const spoken = await callerSays(line);
    await heard.specialistHeardFor(SPECIALIST_HEARD_MS);
    const requests = options.model.served.length - before;
    await session.close();
    await line.stop();
    const decisionAtMs = options.model.served[before]!.atMs;
    return measure(
      heard,
      spoken.endMs,
      config.models.voices.reception ?? '',
      requests,
      decisionAtMs,
    );
  } finally {
    await session.close();
    await line.stop();
  }
}
