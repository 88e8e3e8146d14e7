/**
 * A caller in a live room, with @livekit/rtc-node: it speaks flite audio into a microphone track
 * and listens to the agent's track. Every stretch of agent audio it receives is cut by an energy
 * endpointer and recognised (pocketsphinx, with a grammar of the lines the speech server has
 * synthesised so far), so a test knows which line the caller heard and in which voice.
 *
 * `sip` joins as the SIP service's participant would: token kind 'sip' with `sip.*` attributes.
 */
import { EventEmitter, once } from 'node:events';
import { readFileSync } from 'node:fs';
import {
  AudioFrame,
  AudioSource,
  AudioStream,
  LocalAudioTrack,
  ParticipantKind,
  type RemoteParticipant,
  type RemoteTrack,
  Room,
  RoomEvent,
  TrackKind,
  TrackPublishOptions,
  TrackSource,
} from '@livekit/rtc-node';
import { AccessToken } from 'livekit-server-sdk';
import type { AgentName } from '../../machines/callMachine.js';
import { Endpointer, type EndpointerEvent } from '../../src/speech/endpointer.js';
import { POCKETSPHINX_DICT } from '../../src/speech/engines.js';
import { TTS_SAMPLE_RATE, synthesize } from '../../src/speech/flite.js';
import { grammarFor, recognize } from '../../src/speech/recognizer.js';
import type { SpeechServer, SpokenLine } from '../../src/speech/server.js';
import type { LocalStack } from '../../src/stack/localStack.js';
import { bytesToSamples } from '../../src/speech/wav.js';
import { AGENT_BY_FLITE, within } from './rig.js';

export interface CallerOptions {
  identity?: string;
  /** Join as a SIP participant with this phone number. */
  sip?: { phoneNumber: string };
}

export interface HeardLine {
  /** What the caller recognised, and the synthesised line it belongs to. */
  text: string;
  line: SpokenLine | undefined;
  agent: AgentName | undefined;
  /** performance.now() when the audio started / stopped arriving. */
  startedAt: number;
  endedAt: number;
}

const FRAME = TTS_SAMPLE_RATE / 50; // 20 ms
/** Quiet that ends a stretch of agent audio: longer than flite's pauses inside a sentence. */
const SILENCE_MS = 700;

export class Caller extends EventEmitter<{ heard: [HeardLine]; audioStarted: [number] }> {
  readonly heard: HeardLine[] = [];
  /** performance.now() when the caller's last line had been played out. */
  lastSpeechEndedAt = 0;
  #source = new AudioSource(TTS_SAMPLE_RATE, 1, 400);
  #recognising: Promise<void> = Promise.resolve();
  /** Stretches of agent audio arriving now, and stretches waiting for or in recognition. */
  #inSpeech = 0;
  #unrecognised = 0;
  /** The longest time from the end of a stretch to its lines being heard, in ms. */
  recognitionLagMs = 0;
  #left = false;
  readonly #tracks = new Set<string>();

  private constructor(
    readonly room: Room,
    readonly identity: string,
    readonly speech: SpeechServer,
  ) {
    super();
  }

  static async join(
    stack: LocalStack,
    roomName: string,
    speech: SpeechServer,
    options: CallerOptions,
  ): Promise<Caller> {
    const identity = options.identity ?? `caller-${roomName}`;
    const token = new AccessToken(stack.apiKey, stack.apiSecret, { identity, name: 'Asha' });
    token.addGrant({
      roomJoin: true,
      room: roomName,
      canPublish: true,
      canSubscribe: true,
      // The SIP service updates sip.callStatus on its participant.
      canUpdateOwnMetadata: true,
    });
    if (options.sip) {
      token.kind = 'sip';
      token.attributes = {
        'sip.phoneNumber': options.sip.phoneNumber,
        'sip.callStatus': 'active',
        'sip.callID': `SCL_${roomName}`,
      };
    }
    const room = new Room();
    const caller = new Caller(room, identity, speech);
    room.on(RoomEvent.TrackSubscribed, (track, _publication, participant) => {
      if (track.kind === TrackKind.KIND_AUDIO) caller.#listen(track, participant);
    });
    await within(20_000, `caller joins ${roomName}`, room.connect(stack.url, await token.toJwt()));
    const track = LocalAudioTrack.createAudioTrack('microphone', caller.#source);
    const publish = new TrackPublishOptions();
    publish.source = TrackSource.SOURCE_MICROPHONE;
    await room.localParticipant!.publishTrack(track, publish);
    return caller;
  }

  /** Speak one line (flite) into the room, then a second of near-silence to end the turn. */
  async say(text: string): Promise<void> {
    const samples = bytesToSamples(await synthesize(text, 'rms'));
    await this.#play(samples);
    await this.#source.waitForPlayout();
    this.lastSpeechEndedAt = performance.now();
    await this.#play(new Int16Array(TTS_SAMPLE_RATE));
  }

  /** Start a line and resolve once `ms` of it have been sent (to hang up in the middle). */
  async sayPartly(text: string, ms: number): Promise<void> {
    const samples = bytesToSamples(await synthesize(text, 'rms'));
    await this.#play(samples.subarray(0, Math.round((TTS_SAMPLE_RATE * ms) / 1000)));
  }

  /** As the SIP service does when the phone hangs up: `sip.callStatus` before leaving. */
  async setCallStatus(status: 'active' | 'hangup'): Promise<void> {
    await this.room.localParticipant!.setAttributes({ 'sip.callStatus': status });
  }

  async keypad(digit: string): Promise<void> {
    const codes: Record<string, number> = { '*': 10, '#': 11 };
    await this.room.localParticipant!.publishDtmf(codes[digit] ?? Number(digit), digit);
  }

  /**
   * The first line heard from now on (or already, when `past`) that matches. It fails after `ms`
   * with nothing in progress: a long line still arriving or being recognised extends the wait
   * (up to three times `ms`), since recognition time is the test's, not the call's; silence
   * does not.
   */
  waitForHeard(
    match: (line: HeardLine) => boolean,
    ms: number,
    what: string,
    past = false,
  ): Promise<HeardLine> {
    const found = past ? this.heard.find(match) : undefined;
    if (found) return Promise.resolve(found);
    const lines = () => this.heard.map((h) => `${h.agent}: "${h.text}"`).join('; ');
    const startedAt = performance.now();
    let listener!: (line: HeardLine) => void;
    let timer: NodeJS.Timeout | undefined;
    return new Promise<HeardLine>((resolve, reject) => {
      listener = (line) => {
        if (match(line)) resolve(line);
      };
      this.on('heard', listener);
      const expire = () => {
        const busy = this.#inSpeech > 0 || this.#unrecognised > 0;
        if (busy && performance.now() - startedAt < 3 * ms) {
          timer = setTimeout(expire, 1_000);
          return;
        }
        const waited = Math.round(performance.now() - startedAt);
        reject(
          new Error(
            `timed out after ${waited} ms: ${what} (heard so far: ${lines() || 'nothing'}; ` +
              `audio arriving: ${this.#inSpeech > 0}, stretches unrecognised: ${this.#unrecognised}, ` +
              `longest recognition lag: ${Math.round(this.recognitionLagMs)} ms)`,
          ),
        );
      };
      timer = setTimeout(expire, ms);
    }).finally(() => {
      clearTimeout(timer);
      this.off('heard', listener);
    });
  }

  /** Resolves when the agent's next stretch of audio starts arriving (before it is recognised). */
  audioStarts(ms: number, what: string): Promise<number> {
    return within(
      ms,
      what,
      once(this, 'audioStarted').then(([at]) => at as number),
    );
  }

  /** Resolves when the agent leaves the room. */
  agentLeft(ms: number): Promise<void> {
    const agents = () =>
      [...this.room.remoteParticipants.values()].filter((p) => p.kind === ParticipantKind.AGENT);
    if (agents().length === 0) return Promise.resolve();
    return within(
      ms,
      'the agent leaves the room',
      new Promise<void>((resolve) => {
        const check = () => {
          if (agents().length === 0) {
            this.room.off(RoomEvent.ParticipantDisconnected, check);
            resolve();
          }
        };
        this.room.on(RoomEvent.ParticipantDisconnected, check);
      }),
    );
  }

  /** Hang up: leave the room (as a phone's SIP participant does when the caller hangs up). */
  async hangUp(): Promise<void> {
    if (this.#left) return;
    this.#left = true;
    this.#source.clearQueue();
    await this.room.disconnect();
  }

  async #play(samples: Int16Array): Promise<void> {
    for (let at = 0; at < samples.length && !this.#left; at += FRAME) {
      const chunk = new Int16Array(FRAME);
      chunk.set(samples.subarray(at, Math.min(at + FRAME, samples.length)));
      await this.#source.captureFrame(new AudioFrame(chunk, TTS_SAMPLE_RATE, 1, FRAME));
    }
  }

  #listen(track: RemoteTrack, participant: RemoteParticipant): void {
    if (participant.kind !== ParticipantKind.AGENT || this.#tracks.has(track.sid!)) return;
    this.#tracks.add(track.sid!);
    const endpointer = new Endpointer({
      sampleRate: TTS_SAMPLE_RATE,
      threshold: 300,
      silenceMs: SILENCE_MS,
    });
    let startedAt = 0;
    let inSpeech = false;
    const stopped = (event: EndpointerEvent | null) => {
      if (event?.type !== 'stopped') return;
      if (inSpeech) this.#inSpeech--;
      inSpeech = false;
      this.#recognise(event.audio, startedAt, performance.now() - SILENCE_MS);
    };
    // Frames that stop coming (the agent left, or sends no silence) end a stretch too.
    let idle: NodeJS.Timeout | undefined;
    void (async () => {
      for await (const frame of new AudioStream(track, TTS_SAMPLE_RATE, 1)) {
        clearTimeout(idle);
        for (const event of endpointer.push(frame.data)) {
          if (event.type === 'started') {
            startedAt = performance.now();
            if (!inSpeech) this.#inSpeech++;
            inSpeech = true;
            this.emit('audioStarted', startedAt);
          } else stopped(event);
        }
        idle = setTimeout(() => stopped(endpointer.flush()), SILENCE_MS);
      }
    })().catch(() => {});
  }

  /**
   * One at a time: pocketsphinx is the costly part of the caller. A stretch of audio may hold
   * several synthesised lines back to back (a handoff line, then the specialist's opening): the
   * grammar accepts any sequence of the lines' clauses, and each line found is one HeardLine,
   * its start estimated from the durations of the lines before it.
   */
  #recognise(audio: Int16Array, startedAt: number, endedAt: number): void {
    this.#unrecognised++;
    this.#recognising = this.#recognising.then(async () => {
      const lines = [...this.speech.spoken];
      const grammar = (await grammarFor(lines.map((l) => l.text)))?.replace(
        /public <line> = (.*);/,
        '<clause> = $1;\npublic <line> = <clause>+;',
      );
      const text = await recognize(audio, TTS_SAMPLE_RATE, grammar ?? null);
      this.recognitionLagMs = Math.max(this.recognitionLagMs, performance.now() - endedAt);
      const found: (SpokenLine | undefined)[] = matchLines(normalise(text), lines);
      if (found.length === 0) found.push(undefined);
      let at = startedAt;
      for (const line of found) {
        const heard: HeardLine = {
          text,
          line,
          agent: line ? AGENT_BY_FLITE[line.fliteVoice] : undefined,
          startedAt: at,
          endedAt,
        };
        at += line?.durationMs ?? 0;
        this.heard.push(heard);
        this.emit('heard', heard);
      }
    });
    this.#recognising = this.#recognising
      .catch((error: unknown) => {
        process.stderr.write(`caller: recognition failed: ${String(error)}\n`);
      })
      .finally(() => this.#unrecognised--);
  }
}

/**
 * The synthesised lines whose first clause occurs in the recognised words, in the order they
 * occur (the most recent synthesis wins when two lines share a clause).
 */
function matchLines(words: string[], lines: SpokenLine[]): SpokenLine[] {
  const text = ` ${words.join(' ')} `;
  // At each place a line's first clause occurs, the line that matches the most words from
  // there wins: bridge lines share "one moment" and differ in the team they name.
  const best = new Map<number, { line: SpokenLine; score: number }>();
  for (const line of [...lines].reverse()) {
    const clause = line.text
      .split(/[,.;:!?]+/)
      .map(normalise)
      .find((c) => c.length > 0);
    if (!clause) continue;
    const at = text.indexOf(` ${clause.join(' ')} `);
    if (at === -1) continue;
    const after = text.slice(at + 1).split(' ');
    const all = normalise(line.text);
    let score = 0;
    while (score < all.length && after[score] === all[score]) score++;
    const held = best.get(at);
    if (!held || score > held.score) best.set(at, { line, score });
  }
  return [...best.entries()].sort((a, b) => a[0] - b[0]).map(([, hit]) => hit.line);
}

let dictionary: Set<string> | undefined;

/** Lowercase words pocketsphinx knows (the grammar leaves out the others, "Acme" among them). */
function normalise(text: string): string[] {
  dictionary ??= new Set(
    readFileSync(POCKETSPHINX_DICT, 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[0]!),
  );
  return text
    .toLowerCase()
    .replace(/[^a-z' ]+/g, ' ')
    .split(/\s+/)
    .map((word) => word.replace(/^'+|'+$/g, ''))
    .filter((word) => word !== '' && dictionary!.has(word));
}
