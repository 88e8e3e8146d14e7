/**
 * Speech providers with the SDK's fallbacks:
 *
 * - STT: `stt.FallbackAdapter` over the realtime transcription websocket, the same provider's
 *   HTTP transcription endpoint (wrapped with the session's VAD by the adapter), and a second
 *   provider when configured. A websocket refused at the start or closed mid-call moves the
 *   stream to the next one at once; the adapter probes the failed one in the background.
 * - TTS: `tts.FallbackAdapter` over the agent's voice and a fallback (another voice or
 *   provider; by default the same voice asked again). The session splits replies into
 *   sentences for these non-streaming voices, so a sentence whose request fails or stalls is
 *   spoken by the next one instead of being skipped.
 *
 * The OpenAI client's timeout covers only the response headers, and the plugin reads a speech
 * body whole: a stalled body would hang the line forever. Every speech request therefore goes
 * through a `fetch` that aborts it when no headers or no new bytes arrive in time.
 */
import { type VAD, stt, tts } from '@livekit/agents';
import * as openai from '@livekit/agents-plugin-openai';
import OpenAI from 'openai';
import type { AgentName } from '../../machines/callMachine.js';
import type { Config } from '../config.js';

/**
 * An HTTP transcription provider that says how each utterance went. The SDK's StreamAdapter
 * logs a failed recognition and goes on, so without this nobody would know the caller's words
 * were lost. `recognition` events: `{ ok: true }` or `{ ok: false, error }`.
 */
export class WatchedSTT extends stt.STT {
  readonly inner: stt.STT;
  label: string;

  constructor(inner: stt.STT) {
    super(inner.capabilities);
    this.inner = inner;
    this.label = inner.label;
  }

  protected async _recognize(
    frame: Parameters<stt.STT['recognize']>[0],
    abortSignal?: AbortSignal,
  ): Promise<stt.SpeechEvent> {
    const emitter = this as unknown as NodeJS.EventEmitter;
    try {
      const event = await this.inner.recognize(frame, abortSignal);
      emitter.emit('recognition', { ok: true });
      return event;
    } catch (error) {
      if (!abortSignal?.aborted) emitter.emit('recognition', { ok: false, error });
      throw error;
    }
  }

  stream(): stt.SpeechStream {
    throw new Error('HTTP transcription does not stream; the fallback adapter wraps it with a VAD');
  }

  override async close(): Promise<void> {
    await this.inner.close();
  }
}

const providers = new WeakMap<stt.FallbackAdapter, stt.STT[]>();

/**
 * The providers an adapter built here was given, in its order (it wraps HTTP ones in the SDK's
 * StreamAdapter, which hides them).
 */
export function speechProvidersOf(adapter: stt.FallbackAdapter): stt.STT[] {
  return providers.get(adapter) ?? adapter.sttInstances;
}

/** The label of an adapter's own error: every provider in it failed. */
export const STT_ADAPTER_LABEL = 'stt.FallbackAdapter';
export const TTS_ADAPTER_LABEL = 'tts.FallbackAdapter';

/** Thrown into a speech body that stopped: its name makes the plugin treat it as cancelled. */
class SpeechStalled extends Error {
  override name = 'AbortError';
}

/**
 * A `fetch` that fails a request when its headers take longer than `timeoutMs`, or the next
 * bytes of its body longer than `gapMs`. The plugin reads an aborted body as no audio, so the fallback speaks.
 */
export function deadlineFetch(timeoutMs: number, gapMs: number): typeof fetch {
  return async (input, init) => {
    const abort = new AbortController();
    const signal = init?.signal ? AbortSignal.any([init.signal, abort.signal]) : abort.signal;
    let timer = setTimeout(() => abort.abort(new SpeechStalled('no headers')), timeoutMs);
    let response: Response;
    try {
      response = await fetch(input, { ...init, signal });
    } finally {
      clearTimeout(timer);
    }
    if (!response.body) return response;
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        timer = setTimeout(() => {
          abort.abort(new SpeechStalled('body stalled'));
          void reader.cancel().catch(() => {});
          controller.error(new SpeechStalled('body stalled'));
        }, gapMs);
        try {
          const { done, value } = await reader.read();
          clearTimeout(timer);
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          clearTimeout(timer);
          try {
            controller.error(error);
          } catch {
            // already errored by the deadline
          }
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

/**
 * The VAD for the adapter's HTTP providers, whose streams close their VAD stream once. In
 * agents 1.9 the fallback stream closes its current provider's stream twice when the session
 * ends (on abort and again in its own cleanup), and a second VADStream.close rejects unhandled.
 */
function closingOnce(vad: VAD): VAD {
  const wrapper = Object.create(vad) as VAD;
  wrapper.stream = () => {
    const stream = vad.stream();
    const close = stream.close.bind(stream);
    let closed = false;
    stream.close = () => {
      if (closed) return;
      closed = true;
      close();
    };
    return stream;
  };
  return wrapper;
}

function client(config: Config, baseURL: string | undefined): OpenAI {
  return new OpenAI({
    apiKey: config.openai.apiKey ?? 'no-key',
    ...(baseURL ? { baseURL } : {}),
    maxRetries: 0,
    timeout: config.speech.timeoutMs,
    fetch: deadlineFetch(config.speech.timeoutMs, config.speech.gapTimeoutMs),
  });
}

/**
 * Speech-to-text with fallbacks. Without a VAD (nothing to cut the HTTP endpoint's utterances
 * with) it is the realtime websocket alone.
 */
export function createSpeechToText(config: Config, vad?: VAD): stt.STT {
  const auth = {
    apiKey: config.openai.apiKey ?? 'no-key',
    ...(config.openai.baseURL ? { baseURL: config.openai.baseURL } : {}),
  };
  const realtime = new openai.STT({ model: config.models.stt, ...auth });
  if (!vad) return realtime;
  const instances: stt.STT[] = [
    realtime,
    new WatchedSTT(new openai.STT({ model: config.models.stt, useRealtime: false, ...auth })),
  ];
  const second = config.speech.sttFallback;
  if (second) {
    instances.push(
      new WatchedSTT(
        new openai.STT({
          model: second.model,
          useRealtime: false,
          apiKey: auth.apiKey,
          ...(second.baseURL ? { baseURL: second.baseURL } : {}),
        }),
      ),
    );
  }
  const adapter = new stt.FallbackAdapter({
    sttInstances: instances,
    vad: closingOnce(vad),
    // A refused or closed provider is left at once for the next; the adapter probes it again.
    maxRetryPerSTT: 0,
    retryIntervalMs: 500,
  });
  providers.set(adapter, instances);
  return adapter;
}

/** What a voice emits when it could not speak a line (the speech-health monitor listens). */
export const VOICE_FAILED = 'voice_failed';

type Run = () => Promise<void>;

/**
 * Run a chunked synthesis so that a failure ends it without audio instead of throwing. In
 * agents 1.9 a ChunkedStream whose run throws rejects a promise nobody handles (an unhandled
 * rejection, fatal to a Node process by default), and a wrapper the session puts around the
 * voice re-emits its `error` event with nobody listening. A stream that ends without audio is
 * what the fallback adapter moves on from; the failure itself goes to `report`.
 */
function quietly<T extends object>(stream: T, report: (error: unknown) => void): T {
  const target = stream as unknown as { run: Run; queue?: { closed: boolean; close(): void } };
  const run = target.run.bind(stream);
  target.run = async () => {
    try {
      await run();
    } catch (error) {
      report(error);
      if (target.queue && !target.queue.closed) target.queue.close();
    }
  };
  return stream;
}

/** OpenAI's voice, whose failed lines end without audio and are reported as `voice_failed`. */
class OpenAIVoice extends openai.TTS {
  override synthesize(...args: Parameters<openai.TTS['synthesize']>) {
    const emitter = this as unknown as NodeJS.EventEmitter;
    return quietly(super.synthesize(...args), (error) =>
      emitter.emit(VOICE_FAILED, { error, last: false }),
    );
  }
}

/**
 * The SDK's TTS fallback; a line every voice failed ends without audio and is reported as
 * `voice_failed` with `last: true` (no voice could speak it).
 */
class VoiceFallback extends tts.FallbackAdapter {
  override synthesize(...args: Parameters<tts.FallbackAdapter['synthesize']>) {
    const emitter = this as unknown as NodeJS.EventEmitter;
    return quietly(super.synthesize(...args), (error) =>
      emitter.emit(VOICE_FAILED, { error, last: true }),
    );
  }
}

/** One voice per agent, each with its fallback, so the caller hears the change of agent. */
export function createSpeechVoices(config: Config): (agent: AgentName) => tts.TTS {
  const main = client(config, config.openai.baseURL);
  const fallback = config.speech.ttsFallback;
  const second = fallback.baseURL ? client(config, fallback.baseURL) : main;
  const cache = new Map<AgentName, tts.TTS>();
  return (agent) => {
    let voice = cache.get(agent);
    if (!voice) {
      const own = config.models.voices[agent];
      voice = new VoiceFallback({
        ttsInstances: [
          new OpenAIVoice({
            model: config.models.tts,
            voice: own as openai.TTSVoices,
            client: main,
          }),
          new OpenAIVoice({
            model: fallback.model ?? config.models.tts,
            voice: (fallback.voice ?? own) as openai.TTSVoices,
            client: second,
          }),
        ],
        // The plugin cannot retry a request by itself: the next voice is the retry.
        maxRetryPerTTS: 0,
      });
      cache.set(agent, voice);
    }
    return voice;
  };
}
