/**
 * An energy endpointer for the realtime transcription websocket, standing in for OpenAI's
 * server VAD: 20 ms windows, speech starts on the first loud window and stops after `silenceMs`
 * of quiet ones. Times are milliseconds of audio received, as OpenAI reports them.
 */

export interface EndpointerOptions {
  sampleRate: number;
  /** RMS (of s16 samples) above which a window is speech. */
  threshold?: number;
  /** Quiet time that ends an utterance. */
  silenceMs?: number;
  /** Audio kept before the first loud window, so the recogniser hears the first phoneme. */
  prefixMs?: number;
}

export type EndpointerEvent =
  | { type: 'started'; audioStartMs: number }
  | { type: 'stopped'; audioEndMs: number; audio: Int16Array };

const WINDOW_MS = 20;

export class Endpointer {
  readonly #window: number;
  readonly #threshold: number;
  readonly #silenceWindows: number;
  readonly #prefixWindows: number;
  #pending = new Int16Array(0);
  /** Recent quiet windows (the prefix) while idle; the utterance so far while speaking. */
  #windows: Int16Array[] = [];
  #speaking = false;
  #quiet = 0;
  #windowsSeen = 0;

  constructor(options: EndpointerOptions) {
    this.#window = Math.round((options.sampleRate * WINDOW_MS) / 1000);
    this.#threshold = options.threshold ?? 300;
    this.#silenceWindows = Math.ceil((options.silenceMs ?? 500) / WINDOW_MS);
    this.#prefixWindows = Math.ceil((options.prefixMs ?? 300) / WINDOW_MS);
  }

  get speaking(): boolean {
    return this.#speaking;
  }

  /** Feed samples; returns the events they complete, in order. */
  push(samples: Int16Array): EndpointerEvent[] {
    const all = new Int16Array(this.#pending.length + samples.length);
    all.set(this.#pending);
    all.set(samples, this.#pending.length);
    const events: EndpointerEvent[] = [];
    let offset = 0;
    for (; offset + this.#window <= all.length; offset += this.#window) {
      const event = this.#onWindow(all.slice(offset, offset + this.#window));
      if (event) events.push(event);
    }
    this.#pending = all.slice(offset);
    return events;
  }

  /** End an utterance in progress now (the input was committed or closed). */
  flush(): EndpointerEvent | null {
    if (!this.#speaking) return null;
    return this.#stop();
  }

  #onWindow(window: Int16Array): EndpointerEvent | null {
    this.#windowsSeen++;
    const loud = rms(window) >= this.#threshold;
    this.#windows.push(window);
    if (!this.#speaking) {
      if (!loud) {
        if (this.#windows.length > this.#prefixWindows) this.#windows.shift();
        return null;
      }
      this.#speaking = true;
      this.#quiet = 0;
      return { type: 'started', audioStartMs: (this.#windowsSeen - 1) * WINDOW_MS };
    }
    this.#quiet = loud ? 0 : this.#quiet + 1;
    return this.#quiet >= this.#silenceWindows ? this.#stop() : null;
  }

  #stop(): EndpointerEvent {
    const audioEndMs = (this.#windowsSeen - this.#quiet) * WINDOW_MS;
    const length = this.#windows.reduce((sum, w) => sum + w.length, 0);
    const audio = new Int16Array(length);
    let at = 0;
    for (const w of this.#windows) {
      audio.set(w, at);
      at += w.length;
    }
    this.#speaking = false;
    this.#quiet = 0;
    this.#windows = [];
    return { type: 'stopped', audioEndMs, audio };
  }
}

export function rms(samples: Int16Array): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (const sample of samples) sum += sample * sample;
  return Math.sqrt(sum / samples.length);
}
