/**
 * A console call in voice: the caller's lines are spoken (flite) down a real-time phone line
 * into the same machine, agents, tools and bridge as a live call, through the production STT,
 * TTS, VAD and turn handling, against the local speech server. Everything heard and played is
 * recorded on one clock from the call's start.
 */
import { voice } from '@livekit/agents';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import { type AgentName, type CallerInfo, activeAgentOf } from '../../machines/callMachine.js';
import type { CallEnd, CallObserver } from '../call/bridge.js';
import type { Config } from '../config.js';
import {
  ConsoleCall,
  type ConsoleCallOptions,
  type HandoffMode,
  isKeypress,
} from '../call/consoleCall.js';
import type { KeypadMap } from '../call/keypad.js';
import type { Brain } from '../models/scriptedLlm.js';
import { synthesize } from '../speech/flite.js';
import { type SpeechServer, startSpeechServer } from '../speech/server.js';
import { bytesToSamples } from '../speech/wav.js';
import {
  type CallerSpeech,
  type PhoneLine,
  PhoneLine as Line,
  type PlayedSegment,
} from './line.js';
import { createVoicePipeline } from './session.js';

/** The caller's voice: a flite speaker none of the agents uses, and one recognised well. */
export const CALLER_VOICE = 'kal16';

/** What the call sounded like, on the line's clock (ms from the call's start). */
export type VoiceEvent =
  | {
      type: 'audio';
      agent: AgentName;
      /** The OpenAI voice the speech server synthesised this audio in. */
      voice: string | undefined;
      startMs: number;
      endMs: number;
      interrupted: boolean;
    }
  | { type: 'speech'; startMs: number; endMs: number; heard: string }
  | { type: 'state'; atMs: number; state: string; event: string }
  | { type: 'ended'; atMs: number; reason: string };

export interface VoiceCallOptions {
  config: Config;
  /** A model for one leg; an OpenAI model reports what its wire says to `wire`. */
  createModel: ConsoleCallOptions['createModel'];
  /**
   * MODEL_MODE=realtime: the local speech server also speaks the Realtime conversation protocol,
   * its answers decided by this brain, and each agent's realtime model connects to it. Without
   * a brain the realtime models connect to OPENAI_BASE_URL (or OpenAI).
   */
  realtimeBrain?: Brain;
  logger: Logger;
  observer: CallObserver;
  /** Every audio, speech and state event, as it happens. */
  onEvent?: (event: VoiceEvent) => void;
  handoffMode: HandoffMode;
  /** Lines the caller is expected to say (the recogniser's grammar); more can be added. */
  phrases?: readonly string[];
  inspect?: (event: InspectionEvent) => void;
  keypad?: KeypadMap;
  /** Use this speech server instead of starting one. */
  speechServer?: SpeechServer;
}

export class VoiceCall {
  readonly events: VoiceEvent[] = [];
  readonly line: PhoneLine;
  readonly server: SpeechServer;
  readonly call: ConsoleCall;
  readonly #options: VoiceCallOptions;
  readonly #ownServer: boolean;
  readonly #phrases: string[];
  /** Speech handles not yet done, across every leg. */
  readonly #pending = new Set<voice.SpeechHandle>();
  /** Called on anything that may end a wait: speech created or done, agent switch, end. */
  readonly #changes = new Set<() => void>();
  /** Caller speech waiting for its transcript. */
  readonly #awaitingHeard: ((heard: string) => void)[] = [];
  #session: () => voice.AgentSession | undefined = () => undefined;
  #ended = false;
  /** The agent on the line (per the bridge) when the current audio segment started. */
  #onLine: AgentName = 'reception';
  #userTurns = 0;
  #repliesStarted = 0;

  private constructor(
    options: VoiceCallOptions,
    server: SpeechServer,
    line: PhoneLine,
    call: ConsoleCall,
  ) {
    this.#options = options;
    this.server = server;
    this.#ownServer = !options.speechServer;
    this.line = line;
    this.call = call;
    this.#phrases = [...(options.phrases ?? [])];
    line.on('playbackStarted', () => {
      this.#onLine = this.call.bridge.speakingAgent ?? 'reception';
    });
    line.on('played', (segment) => this.#played(segment));
    void call.done.then((end) => this.#onEnd(end));
  }

  static async create(options: VoiceCallOptions): Promise<VoiceCall> {
    const server =
      options.speechServer ??
      (await startSpeechServer({
        phrases: options.phrases ?? [],
        logger: options.logger,
        ...(options.realtimeBrain ? { realtime: { brain: options.realtimeBrain } } : {}),
      }));
    const line = new Line();
    const pipeline = await createVoicePipeline({
      config: options.config,
      speechBaseURL: server.url,
      ...(options.realtimeBrain ? { realtimeBaseURL: server.url } : {}),
      line,
      logger: options.logger,
    });
    const realtime = pipeline.llmFor;
    // The call's hooks exist once it is built; until then (nothing can happen yet) they do nothing.
    const sink = {
      record: (_event: VoiceEvent) => {},
      changed: () => {},
      heard: (_text: string) => {},
      track: (_handle: voice.SpeechHandle) => {},
      session: undefined as voice.AgentSession | undefined,
    };
    const observer: CallObserver = {
      ...options.observer,
      transition: (change) => {
        options.observer.transition?.(change);
        sink.record({
          type: 'state',
          atMs: line.nowMs(),
          state: change.to,
          event: change.event,
        });
      },
      agent: (agent) => {
        options.observer.agent?.(agent);
        // The new agent asks for its first reply right after this notice, in the same onEnter:
        // look again once that speech exists.
        setImmediate(() => sink.changed());
      },
      caller: (text) => {
        options.observer.caller?.(text);
        sink.heard(text);
      },
    };
    const call = new ConsoleCall({
      flow: options.config.flow,
      // Realtime: the session's model is reception's; every agent brings its own (its voice).
      createModel: realtime ? () => realtime('reception') : options.createModel,
      ...(realtime ? { llmFor: realtime, speech: 'generate' as const } : {}),
      reply: options.config.reply,
      bridgeLine: options.config.handoff.bridgeLine,
      opening: options.config.handoff.opening,
      speechOutageMs: options.config.speech.outageMs,
      companyName: options.config.companyName,
      maxHandoffs: options.config.maxHandoffs,
      logger: options.logger,
      observer,
      handoffMode: options.handoffMode,
      joinTimeoutMs: options.config.handoff.joinTimeoutMs,
      ...(options.inspect ? { inspect: options.inspect } : {}),
      ...(options.keypad ? { keypad: options.keypad } : {}),
      ...(pipeline.ttsFor ? { ttsFor: pipeline.ttsFor } : {}),
      createSession: (model, sessionOptions) => {
        const session = pipeline.createSession(model, sessionOptions);
        session.on(voice.AgentSessionEventTypes.SpeechCreated, ({ speechHandle }) =>
          sink.track(speechHandle),
        );
        // A turn under way (the caller still speaking to the VAD, a reply being thought of) is
        // not idle even between speech handles.
        sink.session = session;
        session.on(voice.AgentSessionEventTypes.UserStateChanged, () => sink.changed());
        session.on(voice.AgentSessionEventTypes.AgentStateChanged, () => sink.changed());
        return session;
      },
    });
    const created = new VoiceCall(options, server, line, call);
    sink.record = (event) => created.#record(event);
    sink.changed = () => created.#changed();
    sink.heard = (text) => created.#heard(text);
    sink.track = (handle) => created.#track(handle);
    created.#session = () => sink.session;
    return created;
  }

  get active(): boolean {
    return this.call.active && !this.#ended;
  }

  get done(): Promise<CallEnd> {
    return this.call.done;
  }

  /** Start the line and the call; resolves once the greeting has been played. */
  async start(caller?: CallerInfo): Promise<void> {
    this.line.start();
    this.#record({ type: 'state', atMs: 0, state: 'greeting', event: 'call.started' });
    await this.call.start(caller);
    await this.waitIdle();
  }

  /**
   * The caller says `text` (or presses a key, written `[1]`) once the agents are quiet, and
   * waits until every agent involved has answered and finished playing.
   */
  async say(text: string): Promise<void> {
    if (!this.active) return;
    await this.waitIdle();
    if (isKeypress(text)) {
      await this.call.say(text);
      await this.waitIdle();
      return;
    }
    const turns = this.#userTurns;
    const replies = this.#repliesStarted;
    await this.speak(text);
    // The answer: the caller's words reached the session and a reply to them was started.
    await this.#until(
      () => !this.active || (this.#userTurns > turns && this.#repliesStarted > replies),
    );
    await this.waitIdle();
  }

  /**
   * The caller starts saying `text` now, whatever is playing (a barge-in). Resolves with when
   * the speech went down the line; its transcript arrives as a `speech` event.
   */
  speak(text: string): Promise<CallerSpeech> {
    if (!this.#phrases.includes(text)) {
      this.#phrases.push(text);
      this.server.setPhrases(this.#phrases);
    }
    const speech = synthesize(text, CALLER_VOICE).then((pcm) =>
      this.line.speak(bytesToSamples(pcm)),
    );
    this.#awaitingHeard.push(
      (heard) =>
        void speech.then(({ startMs, endMs }) =>
          this.#record({ type: 'speech', startMs, endMs, heard }),
        ),
    );
    return speech;
  }

  /** Nothing is playing or about to play: no speech pending, no switch under way. */
  get idle(): boolean {
    return this.#idle();
  }

  /** Resolves when the call is {@link idle}. */
  async waitIdle(): Promise<void> {
    await this.#until(() => this.#idle());
  }

  /** Resolves when `ready()` holds, re-checked on every speech, agent and audio change. */
  until(ready: () => boolean): Promise<void> {
    return this.#until(ready);
  }

  /** The caller hangs up now. */
  hangUp(): void {
    this.call.hangUp();
  }

  async close(): Promise<void> {
    if (this.call.active) this.call.hangUp();
    await this.call.done;
    await this.line.stop();
    await this.call.close();
    if (this.#ownServer) await this.server.close();
  }

  #idle(): boolean {
    if (!this.active) return this.#pending.size === 0;
    if (this.#pending.size > 0 || this.line.callerSpeaking) return false;
    // The VAD still hears the caller, or a reply is being prepared: a turn is under way.
    const session = this.#session();
    if (session?.userState === 'speaking' || session?.agentState === 'thinking') return false;
    // A handoff is under way until the machine's agent is the one on the line.
    const bridge = this.call.bridge;
    return activeAgentOf(bridge.actor.getSnapshot()) === bridge.speakingAgent;
  }

  #until(ready: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      if (ready()) return resolve();
      const check = () => {
        if (!ready()) return;
        this.#changes.delete(check);
        resolve();
      };
      this.#changes.add(check);
    });
  }

  #changed(): void {
    for (const check of [...this.#changes]) check();
  }

  #track(handle: voice.SpeechHandle): void {
    this.#pending.add(handle);
    this.#repliesStarted++;
    handle.addDoneCallback(() => {
      this.#pending.delete(handle);
      this.#changed();
    });
    this.#changed();
  }

  #heard(text: string): void {
    this.#userTurns++;
    this.#awaitingHeard.shift()?.(text);
    this.#changed();
  }

  #played(segment: PlayedSegment): void {
    // Who was on the line says the bridge; which voice it was says the speech server.
    this.#record({
      type: 'audio',
      agent: this.#onLine,
      voice: this.server.voiceOf(segment.samples)?.voice,
      startMs: segment.startMs,
      endMs: segment.endMs,
      interrupted: segment.interrupted,
    });
    this.#changed();
  }

  #onEnd(end: CallEnd): void {
    this.#ended = true;
    // Words the caller said that never became a turn (the call ended first).
    for (const heard of this.#awaitingHeard.splice(0)) heard('');
    this.#record({ type: 'ended', atMs: this.line.nowMs(), reason: end.reason });
    this.#changed();
  }

  #record(event: VoiceEvent): void {
    this.events.push(event);
    try {
      this.#options.onEvent?.(event);
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'voice event observer failed');
    }
    this.#changed();
  }
}
