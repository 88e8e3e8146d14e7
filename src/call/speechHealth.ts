/**
 * The speech providers' health, reported to the machine as events (like the reply guard does
 * for the model): the bridge owns one of these per call.
 *
 * - STT: the session's `stt.FallbackAdapter` says when a provider becomes unavailable or
 *   available again (`stt_availability_changed`); how many still work is read from its status.
 *   None left is recognition down. A final transcript while down is recognition back, whoever
 *   produced it (the adapter retries every provider while none is marked available).
 * - TTS: each agent voice's `tts.FallbackAdapter` says the same for voices; a provider's own
 *   error (forwarded by the adapter) gives the reason. The adapter's own error means every voice
 *   failed one line: no voice can speak.
 *
 * It also keeps the outage clock: started when the machine reports hearing trouble, stopped
 * when hearing is back or the call ends, and `speech.timedOut` when it runs out.
 */
import { stt, tts, voice } from '@livekit/agents';
import type { Logger } from 'pino';
import type { CallEvent, SpeechFailureReason, SpeechKind } from '../../machines/callMachine.js';
import {
  STT_ADAPTER_LABEL,
  TTS_ADAPTER_LABEL,
  VOICE_FAILED,
  WatchedSTT,
  speechProvidersOf,
} from '../models/speech.js';

/** A speech response with no headers this long has failed (SPEECH_TIMEOUT_MS). */
export const DEFAULT_SPEECH_TIMEOUT_MS = 3000;
/** A speech body with no new bytes this long has stalled (SPEECH_GAP_TIMEOUT_MS). */
export const DEFAULT_SPEECH_GAP_TIMEOUT_MS = 750;
/** Recognition down this long: a transfer or a goodbye (SPEECH_OUTAGE_MS). */
export const DEFAULT_SPEECH_OUTAGE_MS = 15_000;

export interface SpeechHealthHost {
  send(event: CallEvent): void;
  /** The call is still live (the machine is running). */
  isLive(): boolean;
  log: Logger;
}

interface Availability {
  available: boolean;
}

interface Changed<T> extends Availability {
  stt: T;
}

/** How a provider failed, from the error it reported. */
export function speechFailureReason(error: unknown): SpeechFailureReason {
  const e = error as { status?: unknown; name?: unknown; message?: unknown; code?: unknown };
  if (typeof e?.status === 'number') return 'http';
  const text = `${String(e?.name ?? '')} ${String(e?.message ?? '')} ${String(e?.code ?? '')}`;
  if (/abort|timeout|timed out|stall/i.test(text)) return 'timeout';
  if (/ECONNREFUSED|refused|Unexpected server response|connection error/i.test(text)) {
    return 'refused';
  }
  if (/close/i.test(text)) return 'closed';
  return 'error';
}

export class SpeechHealthMonitor {
  readonly #host: SpeechHealthHost;
  readonly #outageMs: number;
  readonly #voices = new WeakSet<tts.TTS>();
  #outage: ReturnType<typeof setTimeout> | null = null;
  #hearingLost = false;
  #stopped = false;

  constructor(host: SpeechHealthHost, outageMs: number) {
    this.#host = host;
    this.#outageMs = outageMs;
  }

  /** Watch the session's speech-to-text and its errors; call once, before the session starts. */
  watchSession(session: voice.AgentSession): void {
    const recognition = session.stt;
    if (recognition instanceof stt.FallbackAdapter) this.#watchRecognition(recognition);
    session.on(voice.AgentSessionEventTypes.UserInputTranscribed, ({ isFinal, transcript }) => {
      if (isFinal && transcript.trim() !== '' && this.#hearingLost) {
        this.#report({ type: 'speech.recovered', kind: 'stt' });
      }
    });
    session.on(voice.AgentSessionEventTypes.Error, ({ error }) => {
      const failure = error as { type?: string; label?: string; error?: unknown };
      if (failure.type === 'stt_error' && failure.label === STT_ADAPTER_LABEL) {
        this.#failed('stt', speechFailureReason(failure.error), 0);
      } else if (failure.type === 'tts_error' && failure.label === TTS_ADAPTER_LABEL) {
        this.#failed('tts', speechFailureReason(failure.error), 0);
      }
    });
  }

  /**
   * A provider is down when the adapter marks it unavailable (a websocket refused or closed),
   * or when its last utterance failed (HTTP transcription, which the SDK keeps using).
   */
  #watchRecognition(adapter: stt.FallbackAdapter): void {
    const children = adapter.sttInstances;
    const failing = new Set<stt.STT>();
    const reasons = new Map<stt.STT, SpeechFailureReason>();
    const remaining = () =>
      children.filter((child, i) => adapter.status[i]?.available && !failing.has(child)).length;
    const providers = speechProvidersOf(adapter);
    children.forEach((child, i) => {
      const watched = providers[i] ?? child;
      const emitter = watched as unknown as NodeJS.EventEmitter;
      emitter.on('error', (failure: { error?: unknown }) => {
        reasons.set(child, speechFailureReason(failure.error));
      });
      if (watched instanceof WatchedSTT) {
        emitter.on('recognition', ({ ok, error }: { ok: boolean; error?: unknown }) => {
          if (ok) {
            failing.delete(child);
            if (this.#hearingLost) this.#report({ type: 'speech.recovered', kind: 'stt' });
          } else {
            failing.add(child);
            this.#failed('stt', speechFailureReason(error), remaining());
          }
        });
      }
    });
    const emitter = adapter as unknown as NodeJS.EventEmitter;
    emitter.on('stt_availability_changed', ({ stt: child, available }: Changed<stt.STT>) => {
      if (available) {
        failing.delete(child);
        this.#report({ type: 'speech.recovered', kind: 'stt' });
      } else {
        // A websocket that closed by itself reports no error.
        this.#failed('stt', reasons.get(child) ?? 'closed', remaining());
      }
      reasons.delete(child);
    });
  }

  /** Watch an agent's voice (each voice once, however many agents use it). */
  watchVoice(speech: tts.TTS | undefined): void {
    if (!(speech instanceof tts.FallbackAdapter) || this.#voices.has(speech)) return;
    this.#voices.add(speech);
    let reason: SpeechFailureReason | null = null;
    const voiceFailed = ({ error, last }: { error: unknown; last: boolean }) => {
      if (!last) reason = speechFailureReason(error);
      else this.#failed('tts', speechFailureReason(error), 0);
    };
    (speech as unknown as NodeJS.EventEmitter).on(VOICE_FAILED, voiceFailed);
    for (const child of speech.ttsInstances) {
      (child as unknown as NodeJS.EventEmitter).on(VOICE_FAILED, voiceFailed);
    }
    const emitter = speech as unknown as NodeJS.EventEmitter;
    emitter.on('tts_availability_changed', ({ available }: Availability) => {
      const remaining = speech.status.filter((s) => s.available).length;
      if (available) {
        this.#report({ type: 'speech.recovered', kind: 'tts' });
      } else if (remaining > 0) {
        // With none left the adapter tries them all again; its own error says if that fails.
        // A provider that gave no audio and no error was cut by the speech deadline.
        this.#failed('tts', reason ?? 'timeout', remaining);
      }
      reason = null;
    });
  }

  /** The machine reported hearing trouble: recognition has SPEECH_OUTAGE_MS to come back. */
  startOutageClock(): void {
    this.#hearingLost = true;
    if (this.#outage || this.#stopped) return;
    this.#outage = setTimeout(() => {
      this.#outage = null;
      this.#report({ type: 'speech.timedOut', kind: 'stt' });
    }, this.#outageMs);
  }

  /** Recognition is back (the machine said so). */
  stopOutageClock(): void {
    this.#hearingLost = false;
    if (this.#outage) clearTimeout(this.#outage);
    this.#outage = null;
  }

  /** The call ended: nothing more is reported. */
  stop(): void {
    this.#stopped = true;
    this.stopOutageClock();
  }

  #failed(kind: SpeechKind, reason: SpeechFailureReason, remaining: number): void {
    this.#host.log.warn({ kind, reason, remaining }, 'speech provider failed');
    this.#report({ type: 'speech.failed', kind, reason, remaining });
  }

  #report(event: CallEvent): void {
    if (this.#stopped || !this.#host.isLive()) return;
    try {
      this.#host.send(event);
    } catch (error) {
      this.#host.log.warn({ err: error }, 'speech health report failed');
    }
  }
}
