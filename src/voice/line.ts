/**
 * The phone line of a voice console call: one real-time clock that, every 20 ms, sends the
 * caller's next frame (their speech, or a faint line noise) to the session's audio input and plays
 * the next 20 ms of the agents' audio output, recording both on the same clock.
 *
 *   caller speech (flite) -> PhoneLine.speak -> CallerAudioInput -> session (VAD, STT)
 *   session (TTS) -> AgentAudioOutput.captureFrame -> played in real time -> recording
 *
 * Every session of the call (one per leg in dispatch mode) gets its own input and output on the
 * same line, as each worker would have its own tracks in the room.
 */
import { EventEmitter } from 'node:events';
import { ReadableStream, type ReadableStreamDefaultController } from 'node:stream/web';
import { voice } from '@livekit/agents';
import { AudioFrame, AudioResampler } from '@livekit/rtc-node';

export const LINE_SAMPLE_RATE = 24_000;
export const FRAME_MS = 20;
const FRAME_SAMPLES = (LINE_SAMPLE_RATE * FRAME_MS) / 1000;

/** A stretch of one agent output's audio that played, on the line's clock. */
export interface PlayedSegment {
  startMs: number;
  endMs: number;
  /** Cut short by an interruption, a hang-up or the session closing. */
  interrupted: boolean;
  /** What was played. */
  samples: Int16Array;
}

export interface CallerSpeech {
  startMs: number;
  endMs: number;
}

export interface PhoneLineEvents {
  /** An agent output started playing a segment. */
  playbackStarted: [{ atMs: number }];
  /** An agent output finished (or stopped) playing a segment. */
  played: [PlayedSegment];
  /** One 20 ms tick went by: everything due at `atMs` was sent and played. */
  tick: [{ atMs: number }];
}

export class PhoneLine extends EventEmitter<PhoneLineEvents> {
  readonly #inputs = new Set<CallerAudioInput>();
  readonly #outputs = new Set<AgentAudioOutput>();
  readonly #callerQueue: { samples: Int16Array; done: (speech: CallerSpeech) => void }[] = [];
  #callerOffset = 0;
  #callerStartMs = 0;
  readonly #callerTrack: Int16Array[] = [];
  readonly #agentTrack: Int16Array[] = [];
  #ticks = 0;
  #startedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #noise = 1;

  /** Start the clock: time 0 of the call. */
  start(): void {
    if (this.#timer) return;
    this.#startedAt = performance.now();
    this.#timer = setInterval(() => this.#catchUp(), FRAME_MS / 2);
  }

  /** Stop the clock; the inputs end their streams. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const queued of this.#callerQueue.splice(0)) {
      queued.done({ startMs: this.nowMs(), endMs: this.nowMs() });
    }
    await Promise.all([...this.#inputs].map((input) => input.close()));
  }

  /** Milliseconds of line time so far (ticks played). */
  nowMs(): number {
    return this.#ticks * FRAME_MS;
  }

  /**
   * The caller says `samples` (24 kHz mono) after whatever they are already saying; resolves when
   * the last frame has gone down the line, with when it started and ended.
   */
  speak(samples: Int16Array): Promise<CallerSpeech> {
    return new Promise((done) => this.#callerQueue.push({ samples, done }));
  }

  /** True while caller speech is queued or being sent. */
  get callerSpeaking(): boolean {
    return this.#callerQueue.length > 0;
  }

  /** A new audio input for a session: it hears the caller from now on. */
  input(): CallerAudioInput {
    const input = new CallerAudioInput(() => this.#inputs.delete(input));
    this.#inputs.add(input);
    return input;
  }

  /** A new audio output for a session: what it captures is played on the line. */
  output(): AgentAudioOutput {
    const output = new AgentAudioOutput(this);
    this.#outputs.add(output);
    return output;
  }

  /** Both channels so far, on the same clock: caller left, agents right. */
  recording(): { caller: Int16Array; agents: Int16Array } {
    return { caller: concat(this.#callerTrack), agents: concat(this.#agentTrack) };
  }

  #catchUp(): void {
    const due = Math.floor((performance.now() - this.#startedAt) / FRAME_MS);
    while (this.#ticks < due) this.#tick();
  }

  #tick(): void {
    const atMs = this.nowMs();
    const caller = this.#callerFrame(atMs);
    this.#callerTrack.push(caller);
    for (const input of this.#inputs) input.push(caller);

    const mixed = new Int16Array(FRAME_SAMPLES);
    for (const output of this.#outputs) {
      const frame = output.play(atMs);
      if (!frame) continue;
      for (let i = 0; i < FRAME_SAMPLES; i++) {
        mixed[i] = clamp(mixed[i]! + (frame[i] ?? 0));
      }
    }
    this.#agentTrack.push(mixed);
    this.#ticks++;
    this.emit('tick', { atMs });
  }

  /** The caller's next 20 ms: queued speech, else a faint noise floor (never digital silence). */
  #callerFrame(atMs: number): Int16Array {
    const frame = new Int16Array(FRAME_SAMPLES);
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      this.#noise = (this.#noise * 1103515245 + 12345) & 0x7fffffff;
      frame[i] = (this.#noise % 7) - 3;
    }
    const current = this.#callerQueue[0];
    if (!current) return frame;
    if (this.#callerOffset === 0) this.#callerStartMs = atMs;
    const chunk = current.samples.subarray(this.#callerOffset, this.#callerOffset + FRAME_SAMPLES);
    for (let i = 0; i < chunk.length; i++) frame[i] = clamp(frame[i]! + chunk[i]!);
    this.#callerOffset += FRAME_SAMPLES;
    if (this.#callerOffset >= current.samples.length) {
      this.#callerQueue.shift();
      this.#callerOffset = 0;
      current.done({ startMs: this.#callerStartMs, endMs: atMs + FRAME_MS });
    }
    return frame;
  }

  /** @internal */
  segmentStarted(atMs: number): void {
    this.emit('playbackStarted', { atMs });
  }

  /** @internal */
  segmentPlayed(segment: PlayedSegment): void {
    this.emit('played', segment);
  }
}

/** The session's microphone: the caller's side of the line, as 20 ms frames in real time. */
export class CallerAudioInput extends voice.AudioInput {
  #controller!: ReadableStreamDefaultController<AudioFrame>;
  #closed = false;
  readonly #onClose: () => void;

  constructor(onClose: () => void) {
    super();
    this.#onClose = onClose;
    const stream = new ReadableStream<AudioFrame>({
      start: (controller) => {
        this.#controller = controller;
      },
    });
    this.multiStream.addInputStream(stream);
  }

  /** @internal One frame from the line. */
  push(samples: Int16Array): void {
    if (this.#closed) return;
    this.#controller.enqueue(new AudioFrame(samples.slice(), LINE_SAMPLE_RATE, 1, samples.length));
  }

  override async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
    try {
      this.#controller.close();
    } catch {
      // already closed by a reader that went away
    }
    await super.close();
  }
}

/**
 * The session's speaker: frames arrive faster than real time and are played 20 ms per tick.
 * `flush` ends a segment once it has played; `clearBuffer` stops it at once (an interruption).
 */
export class AgentAudioOutput extends voice.AudioOutput {
  readonly #line: PhoneLine;
  #queue: Int16Array[] = [];
  #queued = 0;
  #played: Int16Array[] = [];
  #segmentStartMs: number | null = null;
  /** Samples captured in the current segment (0: no segment open). */
  #captured = 0;
  #flushed = false;
  /** Paused by the session while it decides whether the caller is interrupting. */
  #paused = false;
  /** Line time just after the last frame played of this segment. */
  #lastPlayedMs = 0;
  #resampler: AudioResampler | undefined;

  constructor(line: PhoneLine) {
    // Pausable like a room's audio output, so barge-ins behave as in production.
    super(LINE_SAMPLE_RATE, undefined, { pause: true });
    this.#line = line;
  }

  override pause(): void {
    this.#paused = true;
  }

  override resume(): void {
    this.#paused = false;
  }

  override async captureFrame(frame: AudioFrame): Promise<void> {
    await super.captureFrame(frame);
    const frames =
      frame.sampleRate === LINE_SAMPLE_RATE && frame.channels === 1
        ? [frame]
        : this.#resample(frame);
    for (const f of frames) {
      this.#queue.push(f.data.slice());
      this.#queued += f.data.length;
      this.#captured += f.data.length;
    }
    this.#flushed = false;
  }

  override flush(): void {
    super.flush();
    if (this.#captured > 0) this.#flushed = true;
  }

  override clearBuffer(): void {
    this.#queue = [];
    this.#queued = 0;
    this.#paused = false;
    if (this.#captured > 0) this.#finish(true);
  }

  /** @internal The next 20 ms to play at `atMs`, or null when idle. */
  play(atMs: number): Int16Array | null {
    if (this.#queued === 0) {
      if (this.#flushed && this.#captured > 0) this.#finish(false);
      return null;
    }
    if (this.#paused) return null;
    if (this.#segmentStartMs === null) {
      this.#segmentStartMs = atMs;
      this.onPlaybackStarted(Date.now());
      this.#line.segmentStarted(atMs);
    }
    const frame = new Int16Array(FRAME_SAMPLES);
    let filled = 0;
    while (filled < FRAME_SAMPLES && this.#queue.length > 0) {
      const head = this.#queue[0]!;
      const take = Math.min(head.length, FRAME_SAMPLES - filled);
      frame.set(head.subarray(0, take), filled);
      filled += take;
      if (take === head.length) this.#queue.shift();
      else this.#queue[0] = head.subarray(take);
    }
    this.#queued -= filled;
    this.#played.push(frame.subarray(0, filled));
    this.#lastPlayedMs = atMs + FRAME_MS;
    return frame;
  }

  #finish(interrupted: boolean): void {
    const samples = concat(this.#played);
    const startMs = this.#segmentStartMs ?? this.#lastPlayedMs;
    const endMs = this.#lastPlayedMs;
    this.#played = [];
    this.#segmentStartMs = null;
    this.#captured = 0;
    this.#flushed = false;
    this.onPlaybackFinished({
      playbackPosition: samples.length / LINE_SAMPLE_RATE,
      interrupted,
    });
    if (samples.length > 0) {
      this.#line.segmentPlayed({ startMs, endMs, interrupted, samples });
    }
  }

  #resample(frame: AudioFrame): AudioFrame[] {
    this.#resampler ??= new AudioResampler(frame.sampleRate, LINE_SAMPLE_RATE, 1);
    return this.#resampler.push(frame);
  }
}

function clamp(value: number): number {
  return value > 32767 ? 32767 : value < -32768 ? -32768 : value;
}

/** The samples of `parts`, one after another. */
export function concat(parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
