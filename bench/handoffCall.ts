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
import { type Logger, pino } from 'pino';
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

/** The variants every benchmark compares, in the order they take turns. */
export const VARIANTS: Variant[] = [
  { kind: 'project', opening: 'model' },
  { kind: 'project', opening: 'brief' },
  { kind: 'native', handoff: 'no-returns' },
  { kind: 'native', handoff: 'returns' },
];

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
    // The model and speech servers run in this process, on 2 shared cores next to VAD, flite and
    // pocketsphinx. When the machine is busy the process is starved for seconds, and the
    // production deadlines (3 s to a first token, 3 s to speech headers, 750 ms between speech
    // bytes) fire on a model or voice that is not slow at all: a retry or a fallback voice, and
    // about 1 call in 24 never reached the specialist before the call's timeout. A benchmark
    // call waits as long as it takes instead; its figures say how long that was, and the load
    // average is reported with them. Both variants get the same (the native session's model
    // takes its timeout from the same setting).
    FIRST_TOKEN_TIMEOUT_MS: '60000',
    CHUNK_GAP_TIMEOUT_MS: '30000',
    SPEECH_TIMEOUT_MS: '30000',
    SPEECH_GAP_TIMEOUT_MS: '30000',
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

/**
 * What a call did, kept to say where a call that timed out was stuck: the call's own log (info
 * and up), the session's errors and state changes, what the speech server heard and spoke.
 */
class CallTrace {
  readonly #lines: string[] = [];
  readonly #started = performance.now();

  add(what: string): void {
    this.#lines.push(`+${Math.round(performance.now() - this.#started)}ms ${what.slice(0, 240)}`);
  }

  /** A logger whose lines (debug and up: the bridge logs session errors at debug) go here. */
  logger(): Logger {
    return pino(
      { level: 'debug', base: null, timestamp: false },
      { write: (line: string) => this.add(line.trim()) },
    );
  }

  watchSession(session: voice.AgentSession): void {
    const E = voice.AgentSessionEventTypes;
    session.on(E.Error, ({ error, source }) =>
      this.add(`session error from ${labelOf(source)}: ${messageOf(error)}`),
    );
    session.on(E.AgentStateChanged, ({ newState }) => this.add(`agent ${newState}`));
    session.on(E.UserStateChanged, ({ newState }) => this.add(`user ${newState}`));
    session.on(E.UserInputTranscribed, ({ transcript, isFinal }) => {
      if (isFinal) this.add(`session heard ${JSON.stringify(transcript)}`);
    });
  }

  watchSpeech(speech: SpeechServer): () => void {
    const heard = (h: { text: string }) =>
      this.add(`speech server heard ${JSON.stringify(h.text)}`);
    const spoken = (s: { voice: string; text: string }) =>
      this.add(`speech server spoke ${s.voice}: ${JSON.stringify(s.text.slice(0, 40))}`);
    speech.on('heard', heard);
    speech.on('spoken', spoken);
    return () => {
      speech.off('heard', heard);
      speech.off('spoken', spoken);
    };
  }

  toString(): string {
    return this.#lines.slice(-40).join('\n    ');
  }
}

function labelOf(source: unknown): string {
  const raw = (source as { label?: unknown } | undefined)?.label;
  return typeof raw === 'function' ? String(raw.call(source)) : String(raw ?? 'unknown');
}

function messageOf(error: unknown): string {
  const inner = (error as { error?: unknown }).error ?? error;
  return inner instanceof Error ? inner.message : JSON.stringify(inner);
}

export async function runHandoffCall(options: HandoffCallOptions): Promise<HandoffTiming> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const served = options.model.served.length;
  const trace = new CallTrace();
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // What the model was asked says where the call stopped (a misheard line, a lost handoff).
      const asked = options.model.served.slice(served).map((r) => r.request.messages.at(-1));
      reject(
        new Error(
          `benchmark call timed out; the model was asked ${JSON.stringify(asked)}\n    ${trace}`,
        ),
      );
    }, timeoutMs);
  });
  const run =
    options.variant.kind === 'project'
      ? runProjectCall(options, trace)
      : runNativeCall(options, trace);
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function callerSays(line: PhoneLine) {
  return line.speak(bytesToSamples(await synthesize(CALLER_LINE, CALLER_VOICE)));
}

async function runProjectCall(
  options: HandoffCallOptions,
  trace: CallTrace,
): Promise<HandoffTiming> {
  const config = benchConfig(options.model, options.variant);
  const unwatch = trace.watchSpeech(options.speech);
  const call = await VoiceCall.create({
    config,
    createModel: (wire) => createOpenAILLM(config, wire),
    logger: trace.logger(),
    observer: {
      transition: ({ from, to, event }) => trace.add(`machine ${from} -> ${to} on ${event}`),
      agent: (name) => trace.add(`agent ${name} on the line`),
      end: (reason) => trace.add(`call ended: ${reason}`),
    },
    onEvent: (event) => trace.add(`line ${JSON.stringify(event)}`),
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
    unwatch();
    await call.close();
  }
}

async function runNativeCall(
  options: HandoffCallOptions,
  trace: CallTrace,
): Promise<HandoffTiming> {
  const variant = options.variant as Extract<Variant, { kind: 'native' }>;
  const config = benchConfig(options.model, variant);
  const line = new PhoneLine();
  const unwatch = trace.watchSpeech(options.speech);
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
  trace.watchSession(session);
  session.on(voice.AgentSessionEventTypes.FunctionToolsExecuted, ({ functionCalls }) =>
    trace.add(`tools run: ${functionCalls.map((c) => c.name).join(', ')}`),
  );
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
    unwatch();
    await session.close();
    await line.stop();
  }
}
