/**
 * Helpers for the audio tests: the offline engines gate, and caller speech as 20 ms frames.
 */
import { AudioFrame } from '@livekit/rtc-node';
import { describe } from 'vitest';
import type { Config } from '../src/config.js';
import { loadConfig } from '../src/config.js';
import type { HandoffMode } from '../src/call/consoleCall.js';
import { createLogger } from '../src/logging.js';
import { ScriptedLLM } from '../src/models/scriptedLlm.js';
import { rms } from '../src/speech/endpointer.js';
import type { SpeechServer } from '../src/speech/server.js';
import { missingSpeechEngines } from '../src/speech/engines.js';
import { VoiceCall, type VoiceEvent } from '../src/voice/voiceCall.js';
import { type ObservedEvent, recordingObserver } from './fakes/session.js';
import { type ScriptEntry, scriptedBrain } from './fakes/model.js';

// The one line (or, in CI, the failure) about missing engines comes from test/speechSetup.ts.
const missing = await missingSpeechEngines();

/** `describe` when the speech engines are installed; skipped locally (one line) otherwise. */
export const describeWithSpeech = missing ? describe.skip : describe;

/** Split 24 kHz mono PCM into 20 ms frames (the last one padded). */
export function frames20ms(samples: Int16Array, sampleRate = 24_000): AudioFrame[] {
  const size = sampleRate / 50;
  const out: AudioFrame[] = [];
  for (let at = 0; at < samples.length; at += size) {
    const chunk = new Int16Array(size);
    chunk.set(samples.subarray(at, Math.min(at + size, samples.length)));
    out.push(new AudioFrame(chunk, sampleRate, 1, size));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// A voice call with the production pipeline and a scripted model.

export interface VoiceTestCall {
  call: VoiceCall;
  models: ScriptedLLM[];
  observed: ObservedEvent[];
  config: Config;
  /** Resolve when `ready()` holds, re-checked on every 20 ms tick of the line. */
  onLine(ready: () => boolean, what: string, boundMs?: number): Promise<void>;
  /** Resolve when `ready()` holds, re-checked on every call event. */
  until(ready: () => boolean, what: string, boundMs?: number): Promise<void>;
  audio(): Extract<VoiceEvent, { type: 'audio' }>[];
  speech(): Extract<VoiceEvent, { type: 'speech' }>[];
  states(): string[];
  /** When the caller's voice in the recording first rises above the line noise, from `fromMs`. */
  callerVoiceStartMs(fromMs: number): number;
  /** RMS of the agents' channel between two times. */
  agentsLevel(fromMs: number, toMs: number): number;
}

export async function startVoiceTestCall(options: {
  script: Record<string, ScriptEntry>;
  handoffMode?: HandoffMode;
  /** Settings, as the environment would give them (default: none set). */
  env?: NodeJS.ProcessEnv;
  /** A speech server of the test's own (e.g. with a fault script); closed by the test. */
  speechServer?: SpeechServer;
  /**
   * MODEL_MODE=realtime: one realtime model per agent against the local speech server's Realtime
   * websocket, where the script decides (its requests are in `call.server.responses`).
   */
  realtime?: boolean;
}): Promise<VoiceTestCall> {
  const config = loadConfig({
    ...options.env,
    ...(options.realtime ? { MODEL_MODE: 'realtime' } : {}),
  });
  const models: ScriptedLLM[] = [];
  const observed: ObservedEvent[] = [];
  const call = await VoiceCall.create({
    config,
    createModel: () => {
      const model = new ScriptedLLM(scriptedBrain(options.script));
      models.push(model);
      return model;
    },
    logger: createLogger({
      level: process.env.TEST_LOG_LEVEL ?? 'silent',
      pii: true,
      destination: 'stderr',
    }),
    ...(options.realtime ? { realtimeBrain: scriptedBrain(options.script) } : {}),
    observer: recordingObserver(observed),
    handoffMode: options.handoffMode ?? 'in-process',
    phrases: Object.keys(options.script),
    ...(options.speechServer ? { speechServer: options.speechServer } : {}),
    keypad: config.telephony.keypad,
  });
  const windowOf = (track: Int16Array, fromMs: number, toMs: number) =>
    track.subarray((fromMs * 24_000) / 1000, (toMs * 24_000) / 1000);
  return {
    call,
    models,
    observed,
    config,
    onLine: (ready, what, boundMs = 20_000) =>
      within(
        new Promise<void>((resolve) => {
          if (ready()) return resolve();
          const check = () => {
            if (!ready()) return;
            call.line.off('tick', check);
            resolve();
          };
          call.line.on('tick', check);
        }),
        what,
        boundMs,
      ),
    until: (ready, what, boundMs = 20_000) => within(call.until(ready), what, boundMs),
    audio: () => call.events.filter((e) => e.type === 'audio'),
    speech: () => call.events.filter((e) => e.type === 'speech'),
    states: () => call.events.flatMap((e) => (e.type === 'state' ? [e.state] : [])),
    callerVoiceStartMs: (fromMs) => {
      const { caller } = call.line.recording();
      for (let ms = fromMs; (ms * 24_000) / 1000 < caller.length; ms += 20) {
        if (rms(windowOf(caller, ms, ms + 20)) > 300) return ms;
      }
      throw new Error('the caller never spoke');
    },
    agentsLevel: (fromMs, toMs) => rms(windowOf(call.line.recording().agents, fromMs, toMs)),
  };
}

/** `promise`, or a failure naming what never happened after `boundMs` of call time. */
function within<T>(promise: Promise<T>, what: string, boundMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`never saw ${what}`)), boundMs);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}
