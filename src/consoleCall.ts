/**
 * One console call, in either handoff mode. In process, it is one session and one bridge. In
 * dispatch mode every handoff starts a fresh session and bridge from the serialised payload
 * alone, exactly as a separate worker would, and the caller's next words go to it.
 */
import { type llm, type tts, voice } from '@livekit/agents';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import type { AgentName, CallerInfo } from '../machines/callMachine.js';
import { type CallBridgeOptions, type CallEnd, CallBridge, type CallObserver } from './bridge.js';
import { type RestorePoint, restoreFromPayload } from './handover.js';
import type { KeypadMap } from './keypad.js';
import { callSessionOptions } from './models/index.js';
import { WireObserver } from './models/openaiWire.js';
import type { Config } from './config.js';

export type HandoffMode = 'in-process' | 'dispatch';

const KEYPRESS = /^\[([0-9*#])\]$/;

export interface ConsoleCallOptions {
  /** A model for one leg; an OpenAI model reports what its wire says to `wire`. */
  createModel: (wire: WireObserver) => llm.LLM;
  /** Deadlines on model requests and the machine's policy when they fail. */
  reply: Config['reply'];
  /** Speak a bridge line the moment a handoff is accepted (default on). */
  bridgeLine?: boolean;
  /** How long recognition may be down before a transfer or a goodbye (voice calls). */
  speechOutageMs?: number;
  companyName: string;
  maxHandoffs: number;
  logger: Logger;
  observer: CallObserver;
  inspect?: (event: InspectionEvent) => void;
  handoffMode: HandoffMode;
  /** Keypad digits, typed as `[1]`: the same events a SIP caller's DTMF sends. */
  keypad?: KeypadMap;
  /** Voice mode: each leg's session (STT, VAD, TTS, audio I/O); text-only when absent. */
  createSession?: (
    model: llm.LLM,
    options: Pick<voice.AgentSessionOptions, 'connOptions'>,
  ) => voice.AgentSession;
  /** Voice mode: each agent's TTS voice. */
  ttsFor?: (agent: AgentName) => tts.TTS | undefined;
}

interface Leg {
  session: voice.AgentSession;
  bridge: CallBridge;
  model: llm.LLM;
  /** Called with the speaking agent on every line said in this leg. */
  waiters: Set<(agent: AgentName) => void>;
}

export class ConsoleCall {
  /** Resolves with the end of the call (not of a leg that handed over). */
  readonly done: Promise<CallEnd>;
  #current: Leg;
  readonly #legs: Leg[] = [];
  readonly #options: ConsoleCallOptions;
  #resolveDone!: (end: CallEnd) => void;

  constructor(options: ConsoleCallOptions) {
    this.#options = options;
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.#current = this.#leg();
  }

  /** The bridge of the leg the caller is on now. */
  get bridge(): CallBridge {
    return this.#current.bridge;
  }

  get active(): boolean {
    return this.#current.bridge.actor.getSnapshot().status === 'active';
  }

  async start(caller?: CallerInfo): Promise<void> {
    await this.#current.bridge.start(caller ? { caller } : {});
    await this.#settled();
  }

  /**
   * The caller says `line` (or presses a key, typed `[1]`); resolves when every agent involved
   * has answered.
   */
  async say(line: string): Promise<void> {
    if (!this.active) return;
    const key = KEYPRESS.exec(line);
    if (key) {
      const speaking = this.#current.bridge.speakingAgent;
      const decision = this.#current.bridge.keypad(key[1]!);
      // Wait for the agent the key brought in (or for the spoken refusal) before the next line.
      if (decision?.accepted) await this.#nextWords(this.#current, speaking);
      await this.#settled();
      return;
    }
    await this.#current.session.run({ userInput: line }).wait();
    await this.#settled();
  }

  /** Resolves on the next words said in `leg` by someone other than `previous`, or its end. */
  #nextWords(leg: Leg, previous: AgentName | null): Promise<void> {
    return Promise.race([
      leg.bridge.done.then(() => undefined),
      new Promise<void>((resolve) => {
        const waiter = (agent: AgentName) => {
          if (agent === previous) return;
          leg.waiters.delete(waiter);
          resolve();
        };
        leg.waiters.add(waiter);
      }),
    ]);
  }

  hangUp(): void {
    this.#current.bridge.callerHungUp();
  }

  /** The process is stopping: end the call through the machine, with a goodbye. */
  async shutdown(): Promise<CallEnd> {
    await this.#current.bridge.shutdown();
    return this.done;
  }

  async close(): Promise<void> {
    await Promise.all(this.#legs.map((leg) => leg.model.aclose()));
  }

  /** Wait for queued effects, following the call into a new leg when it was handed over. */
  async #settled(): Promise<void> {
    let leg: Leg;
    do {
      leg = this.#current;
      await leg.bridge.settled();
    } while (leg !== this.#current);
  }

  #leg(restore?: RestorePoint): Leg {
    const wire = new WireObserver();
    const model = this.#options.createModel(wire);
    const sessionOptions = callSessionOptions(this.#options);
    const session =
      this.#options.createSession?.(model, sessionOptions) ??
      new voice.AgentSession({ llm: model, ...sessionOptions });
    const waiters = new Set<(agent: AgentName) => void>();
    const observer: CallObserver = {
      ...this.#options.observer,
      say: (agent, text) => {
        this.#options.observer.say?.(agent, text);
        for (const waiter of waiters) waiter(agent);
      },
    };
    const options: CallBridgeOptions = {
      session,
      companyName: this.#options.companyName,
      maxHandoffs: this.#options.maxHandoffs,
      logger: this.#options.logger,
      observer,
      reply: this.#options.reply,
      wire,
      ...(this.#options.bridgeLine === false ? { bridgeLine: false } : {}),
      ...(this.#options.speechOutageMs ? { speechOutageMs: this.#options.speechOutageMs } : {}),
      ...(this.#options.inspect ? { inspect: this.#options.inspect } : {}),
      ...(restore ? { restore } : {}),
      ...(this.#options.keypad ? { keypad: this.#options.keypad } : {}),
      ...(this.#options.ttsFor ? { ttsFor: this.#options.ttsFor } : {}),
      ...(this.#options.handoffMode === 'dispatch'
        ? { handover: { handOver: (payload, to) => this.#handOver(payload, to) } }
        : {}),
    };
    const bridge = new CallBridge(options);
    const leg = { session, bridge, model, waiters };
    this.#legs.push(leg);
    void bridge.done.then((end) => {
      if (end.reason !== 'handed-over') this.#resolveDone(end);
    });
    return leg;
  }

  /** The "specialist worker": a new session and bridge from nothing but the payload. */
  async #handOver(payload: string, to: AgentName): Promise<'joined' | 'timeout'> {
    const restoration = restoreFromPayload(payload, false, {
      maxHandoffs: this.#options.maxHandoffs,
      humanTransfers: [],
    });
    if (!restoration) return 'timeout';
    if (!restoration.ok) {
      this.#options.logger.warn({ reason: restoration.reason }, 'payload not restorable');
    }
    const next = this.#leg(restoration.restore);
    // Joined once the specialist has spoken its first words: the caller's next line follows them.
    const firstWords = this.#nextWords(next, null);
    this.#options.logger.info({ to }, 'specialist leg started from payload');
    await next.bridge.start();
    this.#current = next;
    await firstWords;
    return 'joined';
  }
}
