/**
 * The caller's audio across a realtime handoff (src/call/handoffAudio.ts), without a session:
 * the streams the SDK reads, one per activity, as it attaches them.
 */
import { ReadableStream, type ReadableStreamDefaultController } from 'node:stream/web';
import { voice } from '@livekit/agents';
import { AudioFrame } from '@livekit/rtc-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { HandoffAudioInput, MAX_HELD_MS } from '../src/call/handoffAudio.js';
import { createLogger, installAgentsLogger } from '../src/logging.js';

beforeAll(() =>
  installAgentsLogger(createLogger({ level: 'silent', pii: false, destination: 'stderr' })),
);

/** A room's or a line's input: frames pushed by the test. */
class SourceInput extends voice.AudioInput {
  #controller!: ReadableStreamDefaultController<AudioFrame>;
  constructor() {
    super();
    this.multiStream.addInputStream(
      new ReadableStream<AudioFrame>({ start: (c) => void (this.#controller = c) }),
    );
  }
  /** A 20 ms frame whose samples all carry `n`. */
  push(n: number): void {
    this.#controller.enqueue(new AudioFrame(new Int16Array(480).fill(n), 24_000, 1, 480));
  }
}

/** Frames read from `stream` until `count` arrived, as their numbers. */
async function read(stream: ReadableStream<AudioFrame>, count: number): Promise<number[]> {
  const reader = stream.getReader();
  const out: number[] = [];
  while (out.length < count) {
    const { done, value } = await reader.read();
    if (done) break;
    out.push(value.data[0]!);
  }
  reader.releaseLock();
  return out;
}

describe('caller audio across a realtime handoff', () => {
  it('the next session hears everything said since the switch started, then the live audio', async () => {
    const source = new SourceInput();
    const input = new HandoffAudioInput(source);
    const retiring = input.stream;
    source.push(1);
    expect(await read(retiring, 1)).toEqual([1]);

    input.hold(); // the switch starts
    for (const n of [2, 3, 4]) source.push(n);
    // The retiring session still hears the caller live (its turn detection cuts the bridge line).
    expect(await read(retiring, 2)).toEqual([2, 3]);

    const next = input.stream; // the new agent's session attaches
    source.push(5);
    expect(await read(next, 4)).toEqual([2, 3, 4, 5]);
    expect(input.holding).toBe(false);
    // The retiring session's stream ended: nothing more goes to it.
    const rest = await read(retiring, 10);
    expect(rest).not.toContain(5);
  });

  it('without a switch under way, a new reader gets only the live audio', async () => {
    const source = new SourceInput();
    const input = new HandoffAudioInput(source);
    const first = input.stream;
    source.push(1);
    expect(await read(first, 1)).toEqual([1]);
    const second = input.stream;
    source.push(2);
    expect(await read(second, 1)).toEqual([2]);
  });

  it('keeps at most MAX_HELD_MS, the newest', async () => {
    const source = new SourceInput();
    const input = new HandoffAudioInput(source);
    const retiring = input.stream;
    input.hold();
    const frames = MAX_HELD_MS / 20 + 50;
    for (let n = 0; n < frames; n++) source.push(n);
    // Every frame has gone by once the retiring session has heard them all.
    expect(await read(retiring, frames)).toHaveLength(frames);
    const kept = MAX_HELD_MS / 20;
    const held = await read(input.stream, kept);
    expect(held[0]).toBe(frames - kept); // the oldest 50 were dropped
    expect(held.at(-1)).toBe(frames - 1);
  });
});
