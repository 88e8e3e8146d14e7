/**
 * One console call, in either handoff mode. In process, it is one session and one bridge. In
 * dispatch mode every handoff starts a fresh session and bridge from the serialised payload
 * alone, exactly as a separate worker would. The new leg has joined once it has spoken; then the
 * caller's next words go to it. A leg that has not spoken within `joinTimeoutMs` is withdrawn
 * without a word, as a late worker's dispatch is, and the previous leg carries on in process.
 * Until a leg has joined its events are held back: the observer hears only the agent on the line.
 */
import { businessTools } from '../business/index.js';
import { llm, type tts, voice } from '@livekit/agents';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import type { AgentName, CallerInfo } from '../../machines/callMachine.js';
import { type CallBridgeOptions, type CallEnd, CallBridge, type CallObserver } from './bridge.js';
import { type RestorePoint, restoreFromPayload } from './handover.js';
import type { Flow } from '../../machines/flow.js';
import type { KeypadMap } from './keypad.js';
import { callSessionOptions } from '../models/index.js';
import { WireObserver } from '../models/openaiWire.js';
import type { Config } from '../config.js';

export type HandoffMode = 'in-process' | 'dispatch';

/** `[1]` presses 1; `[12]` presses 1 then 2, as a caller would. */
const KEYPRESS = /^\[([0-9*#]+)\]$/;

/** A caller line that is keypad presses (`[1]`, `[12#]`), not words. */
export function isKeypress(line: string): boolean {
  return KEYPRESS.test(line);
}

export interface ConsoleCallOptions {
  /** The call flow (machines/flow.ts); default: reception, billing, support, sales. */
  flow?: Flow;
  /** A model for one leg; an OpenAI model reports what its wire says to `wire`. */
  createModel: (wire: WireObserver) => llm.LLM | llm.RealtimeModel;
  /** Deadlines on model requests and the machine's policy when they fail. */
  reply: Config['reply'];
  /** Speak a bridge line the moment a handoff is accepted (default on). */
  bridgeLine?: boolean;
  /** The specialist's first words after a handoff (HANDOFF_OPENING). */
  opening?: Config['handoff']['opening'];
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
    model: llm.LLM | llm.RealtimeModel,
    options: Pick<voice.AgentSessionOptions, 'connOptions'>,
  ) => voice.AgentSession;
  /** Voice mode: each agent's TTS voice. */
  ttsFor?: (agent: AgentName) => tts.TTS | undefined;
  /** Voice mode, MODEL_MODE=realtime: each agent's realtime model (its voice). */
  llmFor?: (agent: AgentName) => llm.RealtimeModel | undefined;
  /** How fixed lines are spoken: `generate` for a realtime model, which has no TTS. */
  speech?: 'say' | 'generate';
  /** Dispatch mode: how long a new leg has to speak first (`HANDOFF_JOIN_TIMEOUT_MS`). */
  joinTimeoutMs: number;
}

interface Leg {
  session: voice.AgentSession;
  bridge: CallBridge;
  model: llm.LLM | llm.RealtimeModel;
  /** Called with the speaking agent on every line said in this leg. */
  waiters: Set<(agent: AgentName) => void>;
  /** Observer calls held back until the leg joins (null once it has). */
  held: (() => void)[] | null;
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
    // Whatever happens in the turn, the end of the call also ends the wait.
    await Promise.race([this.#turn(line), this.done]);
  }

  async #turn(line: string): Promise<void> {
    const keys = KEYPRESS.exec(line);
    if (keys) {
      for (const digit of keys[1]!) {
        if (!this.active) return;
        const speaking = this.#current.bridge.speakingAgent;
        const decision = this.#current.bridge.keypad(digit);
        // Wait for the agent the key brought in (or for the spoken refusal) before the next key.
        if (decision?.accepted) await this.#nextWords(this.#current, speaking);
        await this.#settled();
      }
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
    await Promise.all(
      this.#legs.map((leg) =>
        leg.model instanceof llm.LLM ? leg.model.aclose() : leg.model.close(),
      ),
    );
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
    // A leg started from a payload is not on the line until it has spoken.
    const held: Leg['held'] = restore ? [] : null;
    const leg: Leg = { session, bridge: undefined as never, model, waiters, held };
    const observer = holdingObserver(this.#options.observer, leg);
    const onSay = observer.say;
    observer.say = (agent, text) => {
      onSay?.(agent, text);
      for (const waiter of waiters) waiter(agent);
    };
    const options: CallBridgeOptions = {
      session,
      ...(this.#options.flow ? { flow: this.#options.flow } : {}),
      extraTools: businessTools,
      companyName: this.#options.companyName,
      maxHandoffs: this.#options.maxHandoffs,
      logger: this.#options.logger,
      observer,
      reply: this.#options.reply,
      wire,
      ...(this.#options.bridgeLine === false ? { bridgeLine: false } : {}),
      ...(this.#options.opening ? { opening: this.#options.opening } : {}),
      ...(this.#options.speechOutageMs ? { speechOutageMs: this.#options.speechOutageMs } : {}),
      ...(this.#options.inspect ? { inspect: this.#options.inspect } : {}),
      ...(restore ? { restore } : {}),
      ...(this.#options.keypad ? { keypad: this.#options.keypad } : {}),
      ...(this.#options.ttsFor ? { ttsFor: this.#options.ttsFor } : {}),
      ...(this.#options.llmFor ? { llmFor: this.#options.llmFor } : {}),
      ...(this.#options.speech ? { speech: this.#options.speech } : {}),
      ...(this.#options.handoffMode === 'dispatch'
        ? {
            handover: {
              handOver: (payload, to, signal) => this.#handOver(payload, to, signal),
              joinTimeoutMs: this.#options.joinTimeoutMs,
            },
          }
        : {}),
    };
    leg.bridge = new CallBridge(options);
    this.#legs.push(leg);
    // The call ends when the leg on the line ends; a leg handing over or withdrawn goes on elsewhere.
    void leg.bridge.done.then((end) => {
      if (leg === this.#current && end.reason !== 'handed-over') this.#resolveDone(end);
    });
    return leg;
  }

  /** The "specialist worker": a new session and bridge from nothing but the payload. */
  async #handOver(
    payload: string,
    to: AgentName,
    signal?: AbortSignal,
  ): Promise<'joined' | 'timeout'> {
    const restoration = restoreFromPayload(
      payload,
      false,
      { maxHandoffs: this.#options.maxHandoffs, humanTransfers: [] },
      this.#options.flow,
    );
    if (!restoration) return 'timeout';
    if (!restoration.ok) {
      this.#options.logger.warn({ reason: restoration.reason }, 'payload not restorable');
    }
    const next = this.#leg(restoration.restore);
    this.#options.logger.info({ to }, 'specialist leg started from payload');
    // As a department's worker does: joined once it has spoken, by the payload's deadline.
    const deadline = restoration.restore.joinBy ?? Date.now() + this.#options.joinTimeoutMs;
    const spoke = next.bridge.firstWordsBy(deadline, signal);
    await next.bridge.start().catch((error: unknown) => {
      this.#options.logger.warn({ err: error, to }, 'specialist leg failed to start');
    });
    if ((await spoke) && next.bridge.actor.getSnapshot().status === 'active') {
      // The caller's next words go to the new leg, and its events are reported from now on.
      this.#current = next;
      const held = next.held ?? [];
      next.held = null;
      for (const report of held) report();
      return 'joined';
    }
    this.#options.logger.warn({ to }, 'specialist leg did not speak in time; withdrawn');
    await next.bridge.withdraw();
    return 'timeout';
  }
}

/** The observer, with every call held back while `leg.held` is a list (the leg has not joined). */
function holdingObserver(observer: CallObserver, leg: Pick<Leg, 'held'>): CallObserver {
  const held: CallObserver = {};
  for (const kind of Object.keys(observer) as (keyof CallObserver)[]) {
    held[kind] = ((...args: unknown[]) => {
      // A leg handing over leaves the call; the call itself goes on in the next leg.
      if (kind === 'transition' && (args[0] as { to: string }).to === 'handedOver') return;
      const report = () => (observer[kind] as (...a: unknown[]) => void)(...args);
      if (leg.held) leg.held.push(report);
      else report();
    }) as never;
  }
  return held;
}
