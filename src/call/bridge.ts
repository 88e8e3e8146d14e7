/**
 * The bridge: the one place that makes the live session match the machine.
 *
 *   tool / keypad / hang-up -> event -> machine -> named effect -> bridge -> session
 *
 * - activateAgent: build the next agent with the conversation so far (no old instructions, no
 *   tool calls) plus a handoff brief, and `session.updateAgent(...)`. The call is never awaited
 *   here, so a switch requested from inside a tool cannot deadlock: the session drains the old
 *   agent's turn (the tool returns at once) and then starts the new one, whose `onEnter` asks
 *   for its first reply immediately. The old agent makes no extra model call.
 * - greetCaller: speak the greeting, then tell the machine it was spoken.
 * - endCall: say goodbye (unless the caller is gone), close the session, resolve `done`.
 *
 * After the end nothing is activated: a switch already queued in the session is skipped by the
 * session itself while closing, and `onEnter` of a late agent does nothing.
 *
 * Dispatch mode (a `handover` transport): instead of switching in process, the bridge speaks a
 * short bridge line, sends the machine's snapshot as the payload to the department's worker,
 * waits until it has joined and then leaves; if it never joins it says so and switches in
 * process after all. A bridge built with `restore` starts from such a payload (or from the
 * snapshot kept in the room after a crash): no greeting, the state's agent speaks first.
 */
import { type llm, type tts, voice } from '@livekit/agents';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { type InspectionEvent, createActor } from 'xstate';
import {
  activeAgentOf,
  type AgentName,
  type CallContext,
  type CallEvent,
  type CallInput,
  type CallStateName,
  type CallerInfo,
  END_REASON_HANDED_OVER,
  END_REASON_MODEL_UNAVAILABLE,
  END_REASON_SHUTDOWN,
  END_REASON_SPEECH_UNAVAILABLE,
  type ReplyPolicy,
  callStateOf,
} from '../../machines/callMachine.js';
import { DEFAULT_FLOW, type Flow, agentsOf } from '../../machines/flow.js';
import { type CallActor, type Decision, sendAndDecide } from '../../machines/decide.js';
import { type ControlRequest, offersFor } from '../../machines/offers.js';
import { CallAgent } from './agents.js';
import { type CallEffects, bindEffects, effectsMachine } from './callEffects.js';
import { conversationFor } from './conversation.js';
import { Floor } from './floor.js';
import { type HistoryLine, MAX_PAYLOAD_BYTES, encodePayload } from './handoffPayload.js';
import {
  type HandoverTransport,
  type RestorePoint,
  type SnapshotStore,
  historyLines,
  joinDeadline,
  restoredChatContext,
} from './handover.js';
import { HandoffCarryOver } from './carryOver.js';
import { type CallObserver, CallReporter } from './callReporter.js';
import {
  type HandoffOpening,
  openSpecialist,
  prewarmIntros,
  skipsBridgeLine,
} from './fastHandoff.js';
import { HumanTransfer, type TransferHost } from './humanTransfer.js';
import { type KeypadMap, keypadEvent } from './keypad.js';
import {
  LINES,
  RESUME_INSTRUCTIONS,
  fixedLineInstructions,
  handoffBrief,
  instructionsFor,
} from './lines.js';
import type { WireObserver } from '../models/openaiWire.js';
import {
  DEFAULT_REPLY_DEADLINES,
  type ReplyDeadlines,
  type ReplyDecision,
  type ReplyReporter,
} from './replyGuard.js';
import { DEFAULT_SPEECH_OUTAGE_MS, SpeechHealthMonitor } from './speechHealth.js';
import type { CallTelephony } from '../livekit/telephony.js';
import { type AnyFunctionTool, type CallControl, callTools, refusalLine } from './tools.js';

export type { CallObserver } from './callReporter.js';

export interface CallBridgeOptions {
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

export interface CallStartOptions {
  caller?: CallerInfo;
  room?: Parameters<voice.AgentSession['start']>[0]['room'];
  inputOptions?: Parameters<voice.AgentSession['start']>[0]['inputOptions'];
  outputOptions?: Parameters<voice.AgentSession['start']>[0]['outputOptions'];
}

export interface CallEnd {
  reason: string;
  context: CallContext;
}

export class CallBridge implements CallControl {
  readonly actor: CallActor;
  readonly maxHandoffs: number;
  /** Resolves once the call has ended and the session is closed. */
  readonly done: Promise<CallEnd>;

  readonly #session: voice.AgentSession;
  readonly #options: CallBridgeOptions;
  readonly #flow: Flow;
  readonly #log: Logger;
  readonly #historyItems: number;
  #resolveDone!: (end: CallEnd) => void;
  /** The agent the session was last told to run. */
  #requested: CallAgent | null = null;
  /** Who may speak: the agent switched in last, or nobody once the call has ended or moved. */
  readonly #floor = new Floor();
  /** The agent whose activity last started: the voice the caller hears. */
  #speaking: AgentName | null = null;
  #ended = false;
  readonly #endSignal = new AbortController();
  #handedOver = false;
  #actorStarted = false;
  #sessionClosed = false;
  /** Observers: transitions, refusals, lines, the end. */
  #reporter!: CallReporter;
  /** The conversation before this leg (dispatch or crash restore): every hop carries it on. */
  readonly #carried: HistoryLine[];
  /** Whether the caller has heard anything from this leg yet, and who waits for that. */
  #spoke = false;
  readonly #firstWordsWaiters = new Set<(spoke: boolean) => void>();
  /** Recent model turns by id, to tell what the agent said in the turn that handed over. */
  readonly #turns = new Map<string, voice.SpeechHandle>();
  /** Async effects run one after another, never inside a machine transition. */
  #effects: Promise<void> = Promise.resolve();
  #closing: Promise<void> = Promise.resolve();
  readonly #transfers: HumanTransfer;
  readonly #transferHost: TransferHost;
  /** Caller words said during an in-process switch, for the new agent. */
  readonly #carryOver: HandoffCarryOver;
  readonly #replies: ReplyReporter;
  readonly #machineInput: CallInput;
  /** Derived before the call starts: the machine and its input do not change. */
  readonly #offers: Record<AgentName, ControlRequest[]>;
  /** What the machine decided about the reply event being sent (set by its effects). */
  #replyDecision: ReplyDecision | null = null;
  /** Lines reported to observers as they were spoken, before their reply message completes. */
  readonly #saidAhead: string[] = [];
  /** Each agent's tools, built once per call; `isRetired` reads the agent's latest instance. */
  readonly #tools = new Map<AgentName, llm.ToolContext>();
  readonly #latest = new Map<AgentName, CallAgent>();
  /** Reports the speech providers' health to the machine; keeps the outage clock. */
  readonly #speechHealth: SpeechHealthMonitor;

  constructor(options: CallBridgeOptions) {
    this.#session = options.session;
    this.#options = options;
    this.#flow = options.flow ?? DEFAULT_FLOW;
    this.#log = options.logger ?? pino({ level: 'silent' });
    this.#historyItems = options.historyItems ?? 40;
    this.#carried = options.restore?.history ?? [];
    this.maxHandoffs = options.maxHandoffs;
    this.#transfers = new HumanTransfer(options.telephony, options.humanNumbers ?? {});
    this.#carryOver = new HandoffCarryOver(this.#log);
    this.#transferHost = {
      speak: (text) => this.#speak(text, false).waitForPlayout(),
      isLive: () => this.actor.getSnapshot().status === 'active',
      send: (event) => this.actor.send(event),
      log: this.#log,
    };
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.#replies = this.#replyReporter(options);
    this.#speechHealth = new SpeechHealthMonitor(
      {
        send: (event) => this.request(event),
        isLive: () => !this.#ended && this.#actorStarted,
        log: this.#log,
      },
      options.speechOutageMs ?? DEFAULT_SPEECH_OUTAGE_MS,
    );
    this.#speechHealth.watchSession(this.#session);
    // HANDOFF_OPENING=brief: each agent's first words are synthesised before any handoff.
    if (options.ttsFor && this.#opening() === 'brief') {
      prewarmIntros(agentsOf(this.#flow), options.ttsFor);
    }

    // This call's effects; the machine is provided once per flow (callEffects.ts).
    const effects: { actions: CallEffects } = {
      actions: {
        greetCaller: () => this.#enqueue('greet', () => this.#greet()),
        activateAgent: ({ context }, { agent }) => this.#activate(agent, context),
        dispatchCall: ({ context }, { to }) => {
          // The old agent stays silent from now on; the effect runs after this transition.
          this.#floor.give(null);
          this.#enqueue('handover', () => this.#handOver(to, context));
        },
        takeOverHere: (_, { agent }) =>
          this.#enqueue('take over', async () => {
            try {
              await this.#speak(LINES.bridgeFailed(agent), false).waitForPlayout();
            } finally {
              // The agent comes in even if the apology could not be played: never an empty line.
              if (!this.#ended) {
                this.#switchInProcess(agent, this.actor.getSnapshot().context, false);
              }
            }
          }),
        leaveCall: ({ context }) => void this.#leave(context),
        transferCall: ({ context }, { from }) =>
          this.#enqueue('transfer', () =>
            this.#transfers.run(this.#transferHost, from, context.transfer),
          ),
        apologiseForTransfer: ({ context }) => this.#apologiseForTransfer(context),
        endCall: ({ context }, { reason, farewell }) => this.#end(reason, farewell, context),
        holdLine: () => (this.#replyDecision = { say: LINES.hold }),
        retryReply: (_, { delayMs }) => (this.#replyDecision = { retryInMs: delayMs }),
        apologiseForReply: (_, { kind }) =>
          (this.#replyDecision = { say: LINES.replyFailed(kind), interrupt: kind === 'cut' }),
        reportHearingTrouble: () => {
          this.#speechHealth.startOutageClock();
          if (!this.#ended) this.#speak(LINES.hearingTrouble, true);
        },
        hearingRestored: () => this.#speechHealth.stopOutageClock(),
      },
    };
    this.#machineInput = {
      handoffMode: options.handover ? 'dispatch' : 'in-process',
      maxHandoffs: options.maxHandoffs,
      humanTransfers: this.#humanTransfers(),
      ...(options.reply?.policy ? { replyPolicy: options.reply.policy } : {}),
    };
    this.#offers = offersFor(this.#machineInput, this.#flow);
    this.actor = createActor(effectsMachine(this.#flow), {
      input: this.#machineInput,
      ...(options.restore ? { snapshot: options.restore.snapshot as never } : {}),
      inspect: (event) => {
        this.#observeMachine(event);
        options.inspect?.(event);
      },
    });
    bindEffects(this.actor, effects.actions);
    this.#reporter = new CallReporter(
      options.observer,
      this.#log,
      // Any line the caller heard from this leg (a hold line too) is its first words.
      (kind) => kind === 'say' && this.#markSpoke(),
      this.actor.getSnapshot().context.refusals.length,
    );
    this.#session.on(voice.AgentSessionEventTypes.SpeechCreated, ({ speechHandle }) => {
      this.#turns.set(speechHandle.id, speechHandle);
      if (this.#turns.size > 16) this.#turns.delete(this.#turns.keys().next().value!);
    });

    this.#session.on(voice.AgentSessionEventTypes.ConversationItemAdded, ({ item }) => {
      // A leg that handed the call over (or withdrew) is not on the line: nothing it hears counts.
      if (item.type !== 'message' || this.#handedOver) return;
      let text = (item.textContent ?? '').trim();
      // A hold line was reported when it was spoken; the rest of the reply is reported now.
      const ahead = this.#saidAhead.find((line) => text.startsWith(line));
      if (item.role === 'assistant' && ahead !== undefined) {
        this.#saidAhead.splice(this.#saidAhead.indexOf(ahead), 1);
        text = text.slice(ahead.length).trim();
      }
      if (text === '') return;
      if (item.role === 'user') this.#notify('caller', text);
      else if (item.role === 'assistant') this.#notify('say', this.#speaking ?? 'reception', text);
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
      if (newState === 'speaking') this.#markSpoke();
    });
    this.#session.on(voice.AgentSessionEventTypes.Close, ({ reason }) => {
      this.#sessionClosed = true;
      if (this.#handedOver || this.actor.getSnapshot().status !== 'active') return;
      // The session closed under us: the room's caller left, or the job is shutting down.
      if (reason === voice.CloseReason.PARTICIPANT_DISCONNECTED) this.callerHungUp();
      else this.actor.send({ type: 'session.closed', reason: `session closed: ${reason}` });
    });
  }

  /** The agent the caller hears now. */
  get speakingAgent(): AgentName | null {
    return this.#speaking;
  }

  get state(): CallStateName {
    return callStateOf(this.actor.getSnapshot());
  }

  /**
   * Start the session with reception, start the machine, and greet. A restored call starts with
   * its state's agent instead, which speaks first; nobody is greeted again.
   */
  async start(options: CallStartOptions = {}): Promise<void> {
    if (this.#ended) return; // the caller left before the call could start
    const restore = this.#options.restore;
    const context = this.actor.getSnapshot().context;
    const first = restore
      ? this.#buildAgent(activeAgentOf(this.actor.getSnapshot()) ?? 'reception', context, restore)
      : this.#buildAgent('reception', null);
    this.#requested = first;
    this.#floor.give(first);
    await this.#session.start({
      agent: first,
      ...(options.room ? { room: options.room } : {}),
      ...(options.inputOptions ? { inputOptions: options.inputOptions } : {}),
      ...(options.outputOptions ? { outputOptions: options.outputOptions } : {}),
    });
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
    const event = keypadEvent(digit, keypad, this.#recentCallerWords());
    if (!event) {
      // A key that does nothing is still answered: the caller learns which keys do.
      if (this.actor.getSnapshot().status === 'active' && Object.keys(keypad).length > 0) {
        this.#notify('keypad', digit);
        this.#enqueue('keypad help', async () => {
          await this.#speak(LINES.unknownKey(keypad), true).waitForPlayout();
        });
      }
      return null;
    }
    this.#notify('keypad', digit);
    const decision = this.request(event);
    if (!decision.accepted && decision.code !== 'call-ended') {
      const line = refusalLine(decision, this.#requested?.callAgent ?? 'reception', this.#flow);
      if (line) {
        this.#enqueue('keypad refusal', async () => {
          await this.#speak(line, true).waitForPlayout();
        });
      }
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
    this.#sessionClosed = true; // nobody to say goodbye to
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
  async settled(): Promise<void> {
    // Effects may queue more effects (a failed handover queues the take-over): wait for those too.
    let effects: Promise<void>;
    do {
      effects = this.#effects;
      await Promise.all([effects, this.#closing]);
    } while (effects !== this.#effects);
  }

  #buildAgent(name: AgentName, context: CallContext | null, restore?: RestorePoint): CallAgent {
    const handoff = restore ? (restore.handoff ?? undefined) : context?.handoffs.at(-1);
    const brief = handoff && handoff.to === name ? handoff : undefined;
    const chatCtx = restore
      ? restoredChatContext(restore.history)
      : context
        ? this.#conversationSoFar()
        : undefined;
    const tts = this.#options.ttsFor?.(name);
    const model = this.#options.llmFor?.(name);
    this.#speechHealth.watchVoice(tts);
    const agent = new CallAgent({
      name,
      instructions: instructionsFor(
        this.#flow,
        name,
        this.#options.companyName,
        brief ? handoffBrief(brief, context?.caller ?? null) : undefined,
      ),
      tools: this.#toolsFor(name),
      ...(chatCtx ? { chatCtx } : {}),
      ...(tts ? { tts } : {}),
      ...(model ? { llm: model } : {}),
      replies: this.#replies,
      floor: this.#floor,
      onEnter: (agent) => {
        if (this.#ended) return; // the caller hung up while this agent was being switched in
        this.#speaking = name;
        this.#notify('agent', name);
        if (brief) openSpecialist(agent.session, name, brief, this.#opening(), tts);
        else if (restore?.resumed)
          agent.session.generateReply({ instructions: RESUME_INSTRUCTIONS });
        this.#carryOver.deliverTo(agent.session);
      },
    });
    this.#latest.set(name, agent);
    return agent;
  }

  #toolsFor(name: AgentName): llm.ToolContext {
    let tools = this.#tools.get(name);
    if (!tools) {
      tools = callTools(this.#session, this, name, {
        flow: this.#flow,
        extra: this.#options.extraTools?.(name) ?? [],
        humanTransfer: this.humanNumberFor(name) !== undefined,
        // Only what this agent's state accepts: no tool the machine would refuse outright.
        offers: this.#offersFor(name),
        isRetired: () => !this.#floor.holds(this.#latest.get(name)),
      });
      this.#tools.set(name, tools);
    }
    return tools;
  }

  #activate(name: AgentName, context: CallContext): void {
    if (this.#ended || name === this.#requested?.callAgent) return;
    this.#switchInProcess(name, context);
  }

  #switchInProcess(name: AgentName, context: CallContext, bridgeLine = true): void {
    try {
      const agent = this.#buildAgent(name, context);
      // The old agent says at once what the pause is for; the session plays it before the switch.
      const skip = skipsBridgeLine(this.#opening());
      if (bridgeLine && !skip && this.#options.bridgeLine !== false && this.#requested) {
        this.#speak(LINES.bridge(name), true);
      }
      if (this.#requested) this.#carryOver.watch(this.#requested);
      this.#requested = agent;
      this.#floor.give(agent);
      this.#session.updateAgent(agent);
      this.#log.info({ agent: name }, 'agent switch requested');
    } catch (error) {
      this.#log.error({ err: error, agent: name }, 'agent switch failed');
    }
  }

  /**
   * Dispatch mode: bridge line, payload to the department's worker, wait for it to join, leave.
   * If it never joins, say so and switch in process: the caller is never left alone.
   */
  async #handOver(name: AgentName, context: CallContext): Promise<void> {
    let outcome: 'joined' | 'timeout' | 'failed' = 'failed';
    try {
      // One bridge line: words the agent said in the turn that handed over already are one.
      if (!(await this.#spokeInTurn(context.controlTurnId))) {
        await this.#speak(LINES.bridge(name), false).waitForPlayout();
      }
      if (this.#ended) return;
      const { joinTimeoutMs } = this.#options.handover!;
      const payload = encodePayload(
        this.actor.getPersistedSnapshot() as never,
        context.handoffs.at(-1) ?? null,
        this.#historyLines(),
        MAX_PAYLOAD_BYTES,
        joinTimeoutMs === undefined ? undefined : joinDeadline(joinTimeoutMs),
      );
      this.#notify('dispatch', name, Buffer.byteLength(payload, 'utf8'));
      outcome = await this.#options.handover!.handOver(payload, name, this.#endSignal.signal);
    } catch (error) {
      // A dispatch that cannot even be sent is a specialist that never joins.
      this.#log.warn({ err: error, to: name }, 'handover failed');
    }
    // A leg stopped meanwhile (its worker restarted) has nobody to tell.
    if (this.#ended || this.actor.getSnapshot().status !== 'active') return;
    // The machine decides: joined, this leg leaves; else the agent comes in here after all.
    if (outcome === 'joined') this.request({ type: 'handover.joined' });
    else {
      this.#log.warn({ to: name, outcome }, 'specialist worker never joined; switching in process');
      this.request({ type: 'handover.failed', reason: outcome });
    }
  }

  /** Dispatch mode: the call and its machine now live in the other worker; this leg leaves. */
  async #leave(context: CallContext): Promise<void> {
    this.#ended = true;
    this.#handedOver = true;
    this.#floor.give(null);
    await this.#session.close();
    this.#log.info({ to: context.handover?.to }, 'call handed over');
    this.#resolveDone({ reason: END_REASON_HANDED_OVER, context });
  }

  /**
   * Dispatch mode, in the leg that takes the call over: true once this leg's agent has said its
   * first words, false if `deadline` (epoch milliseconds) passes first, the leg ends, or `signal`
   * aborts. The previous leg waits for those words until the same deadline.
   */
  firstWordsBy(deadline: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#spoke) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (spoke: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#firstWordsWaiters.delete(finish);
        resolve(spoke);
      };
      const onAbort = () => finish(false);
      const timer = setTimeout(onAbort, Math.max(0, deadline - Date.now()));
      if (signal?.aborted) return finish(false);
      signal?.addEventListener('abort', onAbort);
      this.#firstWordsWaiters.add(finish);
      void this.done.then(() => finish(this.#spoke));
    });
  }

  /** Whether the agent said anything in model turn `turnId`, once that turn is over. */
  async #spokeInTurn(turnId: string | null): Promise<boolean> {
    const turn = turnId === null ? undefined : this.#turns.get(turnId);
    if (!turn) return false; // a keypad press, or a turn this leg never saw
    await new Promise<void>((resolve) => turn.addDoneCallback(() => resolve()));
    return turn.chatItems.some(
      (item) =>
        item.type === 'message' && item.role === 'assistant' && (item.textContent ?? '') !== '',
    );
  }

  /**
   * Leave a call this leg was started to take over but did not join in time (the previous leg
   * gave up on it and carries on in process): nothing is said, no `end` is reported, nothing is
   * saved, and `done` resolves with `withdrawn`.
   */
  async withdraw(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    this.#handedOver = true; // the call lives elsewhere: its close is not this leg's end
    this.#floor.give(null);
    this.actor.stop();
    try {
      await this.#session.close();
    } catch (error) {
      this.#log.warn({ err: error }, 'session close failed');
    }
    this.#log.info('leg withdrawn');
    this.#resolveDone({ reason: 'withdrawn', context: this.actor.getSnapshot().context });
  }

  /** Crash recovery: the latest snapshot and words, kept outside this process. */
  #saveSnapshot(): void {
    const store = this.#options.snapshotStore;
    if (!store || this.#handedOver || !this.#actorStarted) return;
    try {
      // Encoded (and sealed) when the store writes, not on every change (SnapshotStore.save).
      store.save(this.#encodeSnapshot, this.actor.getSnapshot().status === 'done');
    } catch (error) {
      this.#log.warn({ err: error }, 'snapshot not saved');
    }
  }

  /** The latest snapshot and words; nothing once the call has moved to another leg. */
  readonly #encodeSnapshot = (): string | null =>
    this.#handedOver
      ? null
      : encodePayload(this.actor.getPersistedSnapshot() as never, null, this.#historyLines());

  /** The whole call's conversation: what this leg was handed, then what was said here. */
  #historyLines(): HistoryLine[] {
    return [...this.#carried, ...historyLines(this.#session.history)];
  }

  /** The conversation for an agent switched in here, the carried lines first. */
  #conversationSoFar(): llm.ChatContext {
    return conversationFor(this.#carried, this.#session.history, this.#historyItems);
  }

  /** Spoken only once its audio played out; cut short (or the session closed under it), not. */
  async #greet(): Promise<void> {
    const handle = this.#speak(LINES.greeting(this.#options.companyName, this.#flow), true);
    await handle.waitForPlayout();
    if (this.actor.getSnapshot().status !== 'active' || this.#sessionClosed) return;
    this.actor.send({ type: handle.interrupted ? 'greeting.interrupted' : 'greeting.spoken' });
  }

  /** An actor that was never started reports status `active` but queues events: start it once. */
  #startActor(): void {
    if (this.#actorStarted) return;
    this.#actorStarted = true;
    this.actor.start();
  }

  /** A realtime model has no TTS to say a sentence with: its first words are its reply. */
  #opening(): HandoffOpening {
    return this.#options.speech === 'generate' ? 'model' : (this.#options.opening ?? 'model');
  }

  #offersFor(agent: AgentName): ControlRequest[] {
    return this.#offers[agent] ?? [];
  }

  #humanTransfers(): AgentName[] {
    return agentsOf(this.#flow).filter((agent) => this.humanNumberFor(agent) !== undefined);
  }

  #recentCallerWords(): string[] {
    return this.#historyLines()
      .filter((line) => line.role === 'user')
      .slice(-3)
      .map((line) => line.text);
  }

  #apologiseForTransfer(context: CallContext): void {
    if (this.#ended) return;
    const error = context.transfer?.error ?? 'unknown error';
    this.#enqueue('transfer apology', async () => {
      this.#session.generateReply({
        instructions:
          `The transfer to a person did not go through (${error}). Apologise in one short ` +
          'sentence, say you will keep helping, and continue with what the caller needs.',
      });
    });
  }

  #end(reason: string, farewell: boolean, context: CallContext): void {
    this.#ended = true;
    this.#speechHealth.stop();
    this.#carryOver.drop();
    this.#endSignal.abort(); // withdraws a dispatch still waiting for its specialist
    this.#floor.give(null);
    // Not queued behind the greeting: a caller who hangs up mid-greeting is released at once.
    this.#closing = (async () => {
      try {
        if (farewell && !this.#sessionClosed) {
          await this.#speak(this.#farewell(reason), false).waitForPlayout();
        }
      } catch (error) {
        this.#log.warn({ err: error }, 'goodbye failed');
      }
      try {
        await this.#session.close();
      } catch (error) {
        this.#log.warn({ err: error }, 'session close failed');
      }
      this.#log.info({ reason }, 'call ended');
      this.#notify('end', reason);
      this.#resolveDone({ reason, context });
    })();
  }

  #farewell(reason: string): string {
    const company = this.#options.companyName;
    if (reason === END_REASON_MODEL_UNAVAILABLE) return LINES.modelUnavailable(company);
    if (reason === END_REASON_SHUTDOWN) return LINES.shutdown(company);
    if (reason === END_REASON_SPEECH_UNAVAILABLE) return LINES.speechUnavailable(company);
    return LINES.goodbye(company);
  }

  /**
   * The reply guard's line to the machine: each report is an event, and the machine's effects
   * say what to do (`#replyDecision`). Reports from an agent no longer on the line are dropped.
   */
  #replyReporter(options: CallBridgeOptions): ReplyReporter {
    const onLine = (agent: AgentName) => !this.#ended && this.#floor.heldBy(agent);
    const decide = (event: CallEvent): ReplyDecision | null => {
      this.#replyDecision = null;
      this.request(event);
      return this.#replyDecision;
    };
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
      speakNext: (line) => {
        if (!this.#ended) this.#speak(line, true);
      },
    };
  }

  #speak(text: string, allowInterruptions: boolean): voice.SpeechHandle {
    if (this.#options.speech === 'generate') {
      return this.#session.generateReply({
        instructions: fixedLineInstructions(text),
        allowInterruptions,
        toolChoice: 'none',
      });
    }
    return this.#session.say(text, { allowInterruptions });
  }

  #enqueue(what: string, effect: () => Promise<void>): void {
    this.#effects = this.#effects.then(effect).catch((error: unknown) => {
      this.#log.warn({ err: error, effect: what }, 'call effect failed');
    });
  }

  #observeMachine(event: InspectionEvent): void {
    if (this.#reporter?.machineChanged(event, this.actor)) this.#saveSnapshot();
  }

  /** This leg has been heard: a line was said, or its audio started playing. */
  #markSpoke(): void {
    if (this.#spoke) return;
    this.#spoke = true;
    for (const waiter of this.#firstWordsWaiters) waiter(true);
  }

  #notify<K extends keyof CallObserver>(
    kind: K,
    ...args: Parameters<NonNullable<CallObserver[K]>>
  ): void {
    this.#reporter.notify(kind, ...args);
  }
}
