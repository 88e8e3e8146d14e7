/**
 * Caller audio across a realtime handoff: nothing the caller says while an agent switch is under
 * way is lost or heard by the retiring agent alone.
 *
 * With a realtime model every agent has its own model session (its voice), and the SDK feeds the
 * caller's audio to whichever session is attached: the retiring one until its activity has
 * drained and closed, the new one only once it is connected. Words said in between were split
 * between the two (found by test/voiceRealtime.test.ts: the retiring session heard their start
 * and closed with it, the new one heard a fragment that could not be recognised; lost in about 2
 * of 6 runs). So from the moment a switch starts, every frame is also kept (a bounded buffer),
 * and the next session to attach hears all of it first, then the live audio. The retiring
 * session still hears the caller live, so its server's turn detection cuts the bridge line at
 * once, as it cuts any reply the caller talks over; it closes before it can answer (the
 * activity is draining, and the SDK drops its generations).
 *
 * The pipeline mode needs none of this: its speech-to-text pipeline is handed from one activity
 * to the next (see carryOver.ts for the turn the SDK drops there).
 *
 * The wrapper must be the session's audio input before the session starts: agents-js 1.9 does
 * not re-attach a running activity to an input set later (its input-changed handler is passed
 * unbound, and re-attaching a realtime activity fails with "Stream source already set"). The
 * voice console sets it (src/voice/session.ts); the worker does not yet, since RoomIO creates
 * its participant input inside `session.start`.
 */
import { ReadableStream, type ReadableStreamDefaultController } from 'node:stream/web';
import { voice } from '@livekit/agents';
import type { AudioFrame } from '@livekit/rtc-node';
import type { Logger } from 'pino';

/** The most audio kept for the next session: longer than any handoff takes to connect. */
export const MAX_HELD_MS = 10_000;

export class HandoffAudioInput extends voice.AudioInput {
  readonly #source: voice.AudioInput;
  /** The stream of the activity attached last: the only one that hears the caller live. */
  #current: ReadableStreamDefaultController<AudioFrame> | null = null;
  /** Frames since the switch started, for the next session; null when not holding. */
  #held: AudioFrame[] | null = null;
  #heldMs = 0;
  #closed = false;
  /** The source has no more audio. */
  #ended = false;
  #pumping = false;

  constructor(source: voice.AudioInput) {
    super();
    this.#source = source;
  }

  /**
   * A switch has started: from now on the caller's audio is also kept for the next session to
   * attach. Holding again while holding keeps what is held.
   */
  hold(): void {
    if (this.#held === null) {
      this.#held = [];
      this.#heldMs = 0;
    }
  }

  /** Whether audio is being kept for the next session. */
  get holding(): boolean {
    return this.#held !== null;
  }

  /**
   * One stream per activity: the SDK reads `stream` once each time it attaches an activity (the
   * session's first, then each agent switched in). A new reader while holding is the new
   * session: it gets the held audio first, then live frames; the retiring activity's stream ends.
   */
  override get stream(): ReadableStream<AudioFrame> {
    const held = this.#held ?? [];
    this.#held = null;
    this.#heldMs = 0;
    try {
      this.#current?.close();
    } catch {
      // its reader cancelled it already
    }
    this.#current = null;
    if (!this.#pumping) {
      this.#pumping = true;
      // Read the source once the activity that read it until now has let go of it (it does so
      // synchronously when this stream is attached in its place).
      queueMicrotask(() => void this.#pump());
    }
    return new ReadableStream<AudioFrame>({
      start: (controller) => {
        for (const frame of held) controller.enqueue(frame);
        if (this.#closed || this.#ended) controller.close();
        else this.#current = controller;
      },
      cancel: () => {
        this.#current = null;
      },
    });
  }

  override async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#held = null;
    try {
      this.#current?.close();
    } catch {
      // already closed
    }
    this.#current = null;
    await this.#source.close();
    await super.close();
  }

  async #pump(): Promise<void> {
    const reader = this.#source.stream.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.#closed) break;
        this.#forward(value);
      }
    } catch {
      // the source went away: the call is over
    } finally {
      reader.releaseLock();
      // No more caller audio: the attached activity's stream ends too, and any later one.
      this.#ended = true;
      try {
        this.#current?.close();
      } catch {
        // already closed
      }
      this.#current = null;
    }
  }

  #forward(frame: AudioFrame): void {
    if (this.#held) {
      this.#held.push(frame);
      this.#heldMs += (frame.samplesPerChannel / frame.sampleRate) * 1000;
      while (this.#heldMs > MAX_HELD_MS && this.#held.length > 1) {
        const dropped = this.#held.shift()!;
        this.#heldMs -= (dropped.samplesPerChannel / dropped.sampleRate) * 1000;
      }
    }
    try {
      this.#current?.enqueue(frame);
    } catch {
      this.#current = null; // its activity closed it
    }
  }
}

/** The session's caller audio is kept from now until the next agent's session is attached. */
export function holdCallerAudio(session: voice.AgentSession): void {
  const input = session.input.audio;
  if (input instanceof HandoffAudioInput) input.hold();
}

/**
 * The specialist's opening, cut by the caller talking into the handoff: their words (held and
 * delivered above) are answered instead. When the cut came before a word of it was played the
 * conversation keeps no trace of it (the SDK records only what was heard), so it is logged.
 */
export function noteCutOpening(handle: voice.SpeechHandle, agent: string, log: Logger): void {
  handle.addDoneCallback((done) => {
    if (!done.interrupted) return;
    const heard = done.chatItems.some((i) => i.type === 'message' && i.role === 'assistant');
    log.info(
      { agent, heard: heard ? 'partly' : 'nothing' },
      'specialist opening cut by the caller',
    );
  });
}
