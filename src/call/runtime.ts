/**
 * The call runtime: one call's machine, the requests that go into it and what it reports.
 *
 *   tool / keypad / hang-up -> runtime.request -> machine -> named effect -> effects -> session
 *
 * It owns the XState actor (create, restore from a payload, start, stop) and takes requests
 * from the tools, the keypad, the room (a hang-up, a shutdown) and the reply guard. It listens
 * to the session and reports to observers (callReporter.ts), keeps the snapshot for crash
 * recovery (persistence.ts), and never acts on the session itself: the machine names effects,
 * and src/call/effects.ts carries them out. Agents are built by roster.ts.
 *
 * A runtime built with `restore` starts from a payload (dispatch mode) or from the snapshot kept
 * in the room after a crash: no greeting, the state's agent speaks first.
 */
import { type llm, type tts, voice } from '@livekit/agents';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { type InspectionEvent, createActor } from 'xstate';
import {
  activeAgentOf,
  type AgentName,
  type CallEvent,
  type CallInput,
  type CallStateName,
  type ReplyPolicy,
  callStateOf,
} from '../../machines/callMachine.js';
import { DEFAULT_FLOW, type Flow, agentsOf } from '../../machines/flow.js';
import { type CallActor, type Decision, sendAndDecide } from '../../machines/decide.js';
import { offersFor } from '../../machines/offers.js';
import { type CallObserver, CallReporter } from './callReporter.js';
import { HandoffCarryOver } from './carryOver.js';
import { CallConversation } from './conversation.js';
import {
  type CallEnd,
  type CallStartOptions,
  type EffectsHost,
  SessionEffects,
} from './effects.js';
import { type HandoffOpening, prewarmIntros } from './fastHandoff.js';
import { FirstWords } from './firstWords.js';
import { Floor } from './floor.js';
import type { HandoverTransport, RestorePoint, SnapshotStore } from './handover.js';
import { HumanTransfer } from './humanTransfer.js';
import { type KeypadMap, keypadEvent } from './keypad.js';
import { LINES } from './lines.js';
import type { WireObserver } from '../models/openaiWire.js';
import { CallPersistence } from './persistence.js';
import {
  DEFAULT_REPLY_DEADLINES,
  type ReplyDeadlines,
  type ReplyDecision,
  type ReplyReporter,
} from './replyGuard.js';
import { AgentRoster } from './roster.js';
import { DEFAULT_SPEECH_OUTAGE_MS, SpeechHealthMonitor } from './speechHealth.js';
import type { CallTelephony } from '../livekit/telephony.js';
import { type AnyFunctionTool, type CallControl, refusalLine } from './tools.js';

export type { CallObserver } from './callReporter.js';
export type { CallEnd, CallStartOptions } from './effects.js';

export interface CallRuntimeOptions {
  session: voice.AgentSession;
  /** The call flow (machines/flow.ts); default: reception, billing, support, sales. */
  flow?: Flow;
  companyName: string;
  maxHandoffs: number;
  /** Per-agent TTS voice in voice mode; absent in text mode. */
  ttsFor?: (agent: AgentName) => tts.TTS | undefined;
  /**
   * Per-agent model (MODEL_MODE=realtime: a realtime model per agent voice, since a realtime
   * session cannot change its voice once it has spoken); absent: the session's model.
   */
  llmFor?: (agent: AgentName) => llm.LLM | llm.RealtimeModel | undefined;
  observer?: CallObserver;
  logger?: Logger;
  /** Extra XState inspection (e.g. a visual inspector). */
  inspect?: (event: InspectionEvent) => void;
  /** SIP actions on the live call (human transfer); absent in the console. */
  telephony?: CallTelephony;
  /** Who takes a transfer to a person from each agent; agents without one get no such tool. */
  humanNumbers?: Partial<Record<AgentName, string>>;
  /** Keypad digits and what they ask for; the same events as the tools. */
  keypad?: KeypadMap;
  /** Business tools per agent (order lookups, ...), offered next to the control tools. */
  extraTools?: (agent: AgentName) => AnyFunctionTool[];
  /**
   * How fixed lines (greeting, goodbye) are spoken: `say` synthesises them with the TTS;
   * `generate` asks the model to speak them (for a realtime model, which has no TTS).
   */
  speech?: 'say' | 'generate';
  /** How many recent conversation items the next agent receives. */
  historyItems?: number;
  /** Dispatch mode: hand the call to another worker instead of switching in process. */
  handover?: HandoverTransport;
  /** Start from a payload (dispatch mode, or a crash) instead of a new call. */
  restore?: RestorePoint;
  /** Keeps the latest snapshot outside this process (the room), for crash recovery. */
  snapshotStore?: SnapshotStore;
  /** Deadlines on model requests and the machine's policy when they fail. */
  reply?: { deadlines?: ReplyDeadlines; policy?: ReplyPolicy };
  /** What the OpenAI wire said (Retry-After, content filter), when the model is OpenAI's. */
  wire?: WireObserver;
  /** Speak a bridge line in the old agent's voice the moment a handoff is accepted (default on). */
  bridgeLine?: boolean;
  /** The specialist's first words after a handoff (src/call/fastHandoff.ts; default `model`). */
  opening?: HandoffOpening;
  /** How long recognition may be down before a transfer or a goodbye (SPEECH_OUTAGE_MS). */
  speechOutageMs?: number;
}

export class CallRuntime implements CallControl {
  readonly actor: CallActor;
  readonly maxHandoffs: number;
  /** Resolves once the call has ended and the session is closed. */
  readonly done: Promise<CallEnd>;

  readonly #session: voice.AgentSession;
  readonly #options: CallRuntimeOptions;
  readonly #flow: Flow;
  readonly #log: Logger;
  #resolveDone!: (end: CallEnd) => void;
  #actorStarted = false;
  /** The named effects on the session: the only part that acts on it. */
  readonly #effects: SessionEffects;
  readonly #roster: AgentRoster;
  readonly #conversation: CallConversation;
  readonly #persistence: CallPersistence;
  /** Observers: transitions, refusals, lines, the end. */
  #reporter!: CallReporter;
  /** Whether the caller has heard anything from this leg yet, and who waits for that. */
  readonly #firstWords = new FirstWords();
  /** Aborts once the call ends: withdraws a dispatch, stops the reply guard's work. */
  readonly #endSignal = new AbortController();
  readonly #transfers: HumanTransfer;
  /** Lines reported to observers as they were spoken, before their reply message completes. */
  readonly #saidAhead: string[] = [];
  /** Reports the speech providers' health to the machine; keeps the outage clock. */
  readonly #speechHealth: SpeechHealthMonitor;

  constructor(options: CallRuntimeOptions) {
    this.#session = options.session;
    this.#options = options;
    this.#flow = options.flow ?? DEFAULT_FLOW;
    this.#log = options.logger ?? pino({ level: 'silent' });
    this.maxHandoffs = options.maxHandoffs;
    this.#transfers = new HumanTransfer(options.telephony, options.humanNumbers ?? {});
    this.#conversation = new CallConversation(
      this.#session,
      options.restore?.history ?? [],
      options.historyItems ?? 40,
    );
    this.#persistence = new CallPersistence(options.snapshotStore, this.#conversation, this.#log);
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.#speechHealth = new SpeechHealthMonitor(
      {
        send: (event) => this.request(event),
        isLive: () => !this.#effects.ended && this.#actorStarted,
        log: this.#log,
      },
      options.speechOutageMs ?? DEFAULT_SPEECH_OUTAGE_MS,
    );
    this.#speechHealth.watchSession(this.#session);
    // A realtime model has no TTS to say a sentence with: its first words are its reply.
    const opening = options.speech === 'generate' ? 'model' : (options.opening ?? 'model');
    // HANDOFF_OPENING=brief: each agent's first words are synthesised before any handoff.
    if (options.ttsFor && opening === 'brief') {
      prewarmIntros(agentsOf(this.#flow), options.ttsFor);
    }

    const machineInput: CallInput = {
      handoffMode: options.handover ? 'dispatch' : 'in-process',
      maxHandoffs: options.maxHandoffs,
      humanTransfers: agentsOf(this.#flow).filter(
        (agent) => this.humanNumberFor(agent) !== undefined,
      ),
      ...(options.reply?.policy ? { replyPolicy: options.reply.policy } : {}),
    };
    const floor = new Floor();
    const replies = this.#replyReporter(options, floor);
    this.#roster = new AgentRoster({
      flow: this.#flow,
      companyName: options.companyName,
      control: this,
      session: this.#session,
      floor,
      conversation: this.#conversation,
      replies,
      // Derived before the call starts: the machine and its input do not change.
      offers: offersFor(machineInput, this.#flow),
      humanNumberFor: (agent) => this.humanNumberFor(agent),
      ttsFor: options.ttsFor,
      llmFor: options.llmFor,
      extraTools: options.extraTools,
      watchVoice: (voice) => this.#speechHealth.watchVoice(voice),
      onEnter: (agent, entry) => this.#effects.agentEntered(agent, entry),
    });
    this.#effects = new SessionEffects({
      session: this.#session,
      host: this.#effectsHost(),
      flow: this.#flow,
      companyName: options.companyName,
      log: this.#log,
      floor,
      roster: this.#roster,
      conversation: this.#conversation,
      transfers: this.#transfers,
      carryOver: new HandoffCarryOver(this.#log),
      speechHealth: this.#speechHealth,
      endSignal: this.#endSignal,
      speech: options.speech,
      bridgeLine: options.bridgeLine,
      opening,
      handover: options.handover,
      replies,
    });
    this.actor = createActor(this.#effects.machine(), {
      input: machineInput,
      ...(options.restore ? { snapshot: options.restore.snapshot as never } : {}),
      inspect: (event) => {
        this.#observeMachine(event);
        options.inspect?.(event);
      },
    });
    this.#effects.bind(this.actor);
    this.#reporter = new CallReporter(
      options.observer,
      this.#log,
      // Any line the caller heard from this leg (a hold line too) is its first words.
      (kind) => kind === 'say' && this.#firstWords.mark(),
      this.actor.getSnapshot().context.refusals.length,
    );
    this.#listen();
  }

  /** The agent the caller hears now. */
  get speakingAgent(): AgentName | null {
    return this.#effects.speakingAgent;
  }

  /** Whether the agent owes the caller words now (src/call/deadAir.ts). */
  get owesWords(): boolean {
    return this.#effects.owesWords;
  }

  get state(): CallStateName {
    return callStateOf(this.actor.getSnapshot());
  }

  /**
   * Start the session with reception, start the machine, and greet. A restored call starts with
   * its state's agent instead, which speaks first; nobody is greeted again.
   */
  async start(options: CallStartOptions = {}): Promise<void> {
    if (this.#effects.ended) return; // the caller left before the call could start
    const restore = this.#options.restore;
    const context = this.actor.getSnapshot().context;
    const first = restore
      ? this.#roster.build(activeAgentOf(this.actor.getSnapshot()) ?? 'reception', context, restore)
      : this.#roster.build('reception', null);
    await this.#effects.startSession(first, options);
    this.#startActor();
    if (restore) {
      // The machine decides what this means for the state it was in: a call handed over arrives
      // here; after a restart a transfer or a handover under way cannot be known to have worked.
      this.actor.send({ type: restore.resumed ? 'call.resumed' : 'handover.received' });
      return;
    }
    this.actor.send({
      type: 'call.started',
      ...(options.caller ? { caller: options.caller } : {}),
    });
  }

  /**
   * Send a control event and return the machine's decision (tools and keypad use this). `from`
   * is the agent whose tool asks: one the machine has moved on from is refused as `retired`.
   */
  request(event: CallEvent, from?: AgentName): Decision {
    return sendAndDecide(this.actor, event, from);
  }

  /**
   * A keypad digit from the caller. It becomes the same machine event a tool would send, with
   * the same guards; a refusal is spoken, since no model turn is there to relay it.
   */
  keypad(digit: string): Decision | null {
    const keypad = this.#options.keypad ?? {};
    const event = keypadEvent(digit, keypad, this.#conversation.recentCallerWords());
    if (!event) {
      // A key that does nothing is still answered: the caller learns which keys do.
      if (this.actor.getSnapshot().status === 'active' && Object.keys(keypad).length > 0) {
        this.#notify('keypad', digit);
        this.#effects.sayInTurn('keypad help', LINES.unknownKey(keypad));
      }
      return null;
    }
    this.#notify('keypad', digit);
    const decision = this.request(event);
    if (!decision.accepted && decision.code !== 'call-ended') {
      const line = refusalLine(decision, this.#effects.requestedAgent ?? 'reception', this.#flow);
      if (line) this.#effects.sayInTurn('keypad refusal', line);
    }
    return decision;
  }

  /**
   * The process is stopping (SIGTERM, SIGINT, worker drain): the machine ends the call with
   * reason `shutdown` and a goodbye. Resolves once the call has ended.
   */
  shutdown(): Promise<CallEnd> {
    this.#startActor();
    if (this.actor.getSnapshot().status === 'active') {
      this.actor.send({ type: 'shutdown.requested' });
    }
    return this.done;
  }

  /** Where a transfer to a person from this agent goes, if anywhere. */
  humanNumberFor(agent: AgentName): string | undefined {
    return this.#transfers.numberFor(agent);
  }

  /** End a call that never connected (an outbound call not answered), with the reason. */
  abandon(reason: string): void {
    this.#effects.markSessionClosed(); // nobody to say goodbye to
    this.#startActor();
    this.request({ type: 'end.requested', reason });
  }

  /**
   * The caller left: end the call without a goodbye. Safe to call at any time, repeatedly, even
   * before `start()` (or after it failed): the machine is started so that `done` resolves.
   */
  callerHungUp(): void {
    this.#startActor();
    // During a SIP REFER the machine waits for its outcome: see `transferring` there.
    if (this.actor.getSnapshot().status === 'active') this.actor.send({ type: 'caller.hungUp' });
  }

  /** Resolves when every effect queued so far (greeting, goodbye, close) has run. */
  settled(): Promise<void> {
    return this.#effects.settled();
  }

  /**
   * Dispatch mode, in the leg that takes the call over: true once this leg's agent has said its
   * first words, false if `deadline` (epoch milliseconds) passes first, the leg ends, or `signal`
   * aborts. The previous leg waits for those words until the same deadline.
   */
  firstWordsBy(deadline: number, signal?: AbortSignal): Promise<boolean> {
    return this.#firstWords.by(deadline, this.done, signal);
  }

  /**
   * Leave a call this leg was started to take over but did not join in time (the previous leg
   * gave up on it and carries on in process): nothing is said, no `end` is reported, nothing is
   * saved, and `done` resolves with `withdrawn`.
   */
  withdraw(): Promise<void> {
    return this.#effects.withdraw(() => this.actor.stop());
  }

  /** The session's events: what was said, errors, who is speaking, the session closing. */
  #listen(): void {
    this.#session.on(voice.AgentSessionEventTypes.ConversationItemAdded, ({ item }) => {
      // A leg that handed the call over (or withdrew) is not on the line: nothing it hears counts.
      if (item.type !== 'message' || this.#effects.handedOver) return;
      let text = (item.textContent ?? '').trim();
      // A hold line was reported when it was spoken; the rest of the reply is reported now.
      const ahead = this.#saidAhead.find((line) => text.startsWith(line));
      if (item.role === 'assistant' && ahead !== undefined) {
        this.#saidAhead.splice(this.#saidAhead.indexOf(ahead), 1);
        text = text.slice(ahead.length).trim();
      }
      if (text === '') return;
      if (item.role === 'user') this.#notify('caller', text);
      else if (item.role === 'assistant') {
        this.#notify('say', this.#effects.speakingAgent ?? 'reception', text);
      }
      // A resumed call should know the latest words too, not only those before the last transition.
      this.#saveSnapshot();
    });
    // A listener must exist: without one the SDK's emit throws and the request's retry is lost.
    // Failures are reported to the machine by the reply guard; this only logs.
    this.#session.on(voice.AgentSessionEventTypes.Error, ({ error, source }) => {
      // An LLM's label is a method, a speech provider's a string.
      const raw = (source as { label?: unknown } | undefined)?.label;
      const label =
        typeof raw === 'function'
          ? String(raw.call(source))
          : typeof raw === 'string'
            ? raw
            : 'model';
      this.#log.debug({ err: error, source: label }, 'session reported an error');
    });
    // In a voice call the first words are heard when playback starts, long before the message
    // is complete: that is when a specialist has joined (dispatch mode's join deadline).
    this.#session.on(voice.AgentSessionEventTypes.AgentStateChanged, ({ newState }) => {
      if (newState === 'speaking') this.#firstWords.mark();
    });
    this.#session.on(voice.AgentSessionEventTypes.Close, ({ reason }) => {
      this.#effects.markSessionClosed();
      if (this.#effects.handedOver || this.actor.getSnapshot().status !== 'active') return;
      // The session closed under us: the room's caller left, or the job is shutting down.
      if (reason === voice.CloseReason.PARTICIPANT_DISCONNECTED) this.callerHungUp();
      else this.actor.send({ type: 'session.closed', reason: `session closed: ${reason}` });
    });
  }

  /** What the effects may ask of the runtime: the actor, requests, observers, the end. */
  #effectsHost(): EffectsHost {
    const actor = () => this.actor;
    return {
      get actor() {
        return actor();
      },
      request: (event) => this.request(event),
      notify: (kind, ...args) => this.#notify(kind, ...args),
      finished: (end) => this.#resolveDone(end),
    };
  }

  /** An actor that was never started reports status `active` but queues events: start it once. */
  #startActor(): void {
    if (this.#actorStarted) return;
    this.#actorStarted = true;
    this.actor.start();
  }

  /** Crash recovery: not before the machine runs, nor once the call lives elsewhere. */
  #saveSnapshot(): void {
    if (this.#effects.handedOver || !this.#actorStarted) return;
    this.#persistence.save(this.actor, () => this.#effects.handedOver);
  }

  /**
   * The reply guard's line to the machine: each report is an event, and the machine's effects
   * say what to do. Reports from an agent no longer on the line are dropped.
   */
  #replyReporter(options: CallRuntimeOptions, floor: Floor): ReplyReporter {
    const onLine = (agent: AgentName) => !this.#effects.ended && floor.heldBy(agent);
    const decide = (event: CallEvent): ReplyDecision | null =>
      this.#effects.decideReply(() => this.request(event));
    return {
      deadlines: { ...DEFAULT_REPLY_DEADLINES, ...options.reply?.deadlines },
      endSignal: this.#endSignal.signal,
      wire: options.wire,
      log: this.#log,
      late: (replyId, agent) => {
        if (!onLine(agent)) return null;
        const decision = decide({ type: 'reply.late', replyId });
        const line = decision && 'say' in decision ? decision.say : null;
        if (line) {
          // Heard now, although the reply's message is only complete when the reply is.
          this.#saidAhead.push(line);
          this.#notify('say', agent, line);
        }
        return line;
      },
      failed: (failure) => {
        if (!onLine(failure.agent)) return { say: null };
        const { replyId, kind, attempt, retryAfterMs } = failure;
        const event: CallEvent = { type: 'reply.failed', replyId, kind, attempt };
        if (retryAfterMs !== undefined) event.retryAfterMs = retryAfterMs;
        return decide(event) ?? { say: null };
      },
      recovered: (agent) => {
        if (onLine(agent) && this.actor.getSnapshot().context.reply.failedTurns > 0) {
          this.request({ type: 'reply.recovered' });
        }
      },
      speakNext: (line) => this.#effects.sayNow(line),
      askAgain: () => this.#effects.askAgain(),
    };
  }

  #observeMachine(event: InspectionEvent): void {
    if (this.#reporter?.machineChanged(event, this.actor)) this.#saveSnapshot();
  }

  #notify<K extends keyof CallObserver>(
    kind: K,
    ...args: Parameters<NonNullable<CallObserver[K]>>
  ): void {
    this.#reporter.notify(kind, ...args);
  }
}
