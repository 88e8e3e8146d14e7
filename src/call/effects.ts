/**
 * The session effects: the named effects the machine asks for, carried out on the live session.
 * This is the only module that calls `session.updateAgent`, `say`, `generateReply` and `close`
 * (test/effectsOnly.test.ts holds it to that); everything else asks the machine, which names an
 * effect, which runs here.
 *
 * - activateAgent: build the next agent with the conversation so far (no old instructions, no
 *   tool calls) plus a handoff brief, and `session.updateAgent(...)`. The call is never awaited
 *   here, so a switch requested from inside a tool cannot deadlock: the session drains the old
 *   agent's turn (the tool returns at once) and then starts the new one, whose `onEnter` asks
 *   for its first reply immediately. The old agent makes no extra model call.
 * - greetCaller: speak the greeting, then tell the machine it was spoken.
 * - endCall: say goodbye (unless the caller is gone), close the session, report the end.
 * - dispatchCall (dispatch mode, a `handover` transport): instead of switching in process, speak a
 *   short bridge line, send the machine's snapshot as the payload to the department's worker,
 *   wait until it has joined and tell the machine; leaveCall then leaves, takeOverHere (it never
 *   joined) says so and switches in process after all.
 * - transferCall / apologiseForTransfer: the SIP transfer to a person (humanTransfer.ts).
 * - holdLine, retryReply, apologiseForReply: what the reply guard does about a late or failed
 *   model reply; reportHearingTrouble / hearingRestored: the speech-health monitor's outage clock.
 *
 * After the end nothing is activated: a switch already queued in the session is skipped by the
 * session itself while closing, and `onEnter` of a late agent does nothing. Async effects run one
 * after another, never inside a machine transition.
 */
import { voice } from '@livekit/agents';
import type { Logger } from 'pino';
import {
  type AgentName,
  type CallContext,
  type CallEvent,
  type CallMachine,
  type CallerInfo,
  END_REASON_HANDED_OVER,
  END_REASON_MODEL_UNAVAILABLE,
  END_REASON_SHUTDOWN,
  END_REASON_SPEECH_UNAVAILABLE,
} from '../../machines/callMachine.js';
import type { Flow } from '../../machines/flow.js';
import type { CallActor, Decision } from '../../machines/decide.js';
import type { CallAgent } from './agents.js';
import { type CallEffects, bindEffects, effectsMachine } from './callEffects.js';
import type { CallObserver } from './callReporter.js';
import type { HandoffCarryOver } from './carryOver.js';
import type { CallConversation } from './conversation.js';
import { type HandoffOpening, skipsBridgeLine, specialistOpening } from './fastHandoff.js';
import type { Floor } from './floor.js';
import { MAX_PAYLOAD_BYTES, encodePayload } from './handoffPayload.js';
import { type HandoverTransport, joinDeadline } from './handover.js';
import type { HumanTransfer, TransferHost } from './humanTransfer.js';
import { LINES, RESUME_INSTRUCTIONS, fixedLineInstructions } from './lines.js';
import { DeadAirWatch } from './deadAir.js';
import { holdCallerAudio, noteCutOpening } from './handoffAudio.js';
import type { ReplyDecision, ReplyReporter } from './replyGuard.js';
import type { AgentEntry, AgentRoster } from './roster.js';
import type { SpeechHealthMonitor } from './speechHealth.js';

export interface CallEnd {
  reason: string;
  context: CallContext;
}

/** The session's start, as the worker or the console gives it. */
export interface CallStartOptions {
  caller?: CallerInfo;
  room?: Parameters<voice.AgentSession['start']>[0]['room'];
  inputOptions?: Parameters<voice.AgentSession['start']>[0]['inputOptions'];
  outputOptions?: Parameters<voice.AgentSession['start']>[0]['outputOptions'];
}

/** What the effects need from the call runtime that owns the actor. */
export interface EffectsHost {
  readonly actor: CallActor;
  request(event: CallEvent): Decision;
  notify<K extends keyof CallObserver>(
    kind: K,
    ...args: Parameters<NonNullable<CallObserver[K]>>
  ): void;
  /** This leg is over (ended, handed over or withdrawn): `done` resolves with `end`. */
  finished(end: CallEnd): void;
}

export interface SessionEffectsOptions {
  session: voice.AgentSession;
  host: EffectsHost;
  flow: Flow;
  companyName: string;
  log: Logger;
  floor: Floor;
  roster: AgentRoster;
  conversation: CallConversation;
  transfers: HumanTransfer;
  carryOver: HandoffCarryOver;
  speechHealth: SpeechHealthMonitor;
  /** Aborted when the call ends: withdraws a dispatch still waiting for its specialist. */
  endSignal: AbortController;
  /** `say` synthesises fixed lines with the TTS; `generate` asks the (realtime) model to. */
  speech?: 'say' | 'generate' | undefined;
  /** Speak a bridge line in the old agent's voice the moment a handoff is accepted. */
  bridgeLine?: boolean | undefined;
  opening: HandoffOpening;
  /** Dispatch mode: hand the call to another worker instead of switching in process. */
  handover?: HandoverTransport | undefined;
  /** The reply guard's line to the machine: dead air is reported through it too. */
  replies: ReplyReporter;
}

export class SessionEffects {
  readonly #session: voice.AgentSession;
  readonly #host: EffectsHost;
  readonly #options: SessionEffectsOptions;
  readonly #log: Logger;
  /** Who may speak: the agent switched in last, or nobody once the call has ended or moved. */
  readonly #floor: Floor;
  readonly #roster: AgentRoster;
  readonly #transfers: HumanTransfer;
  readonly #transferHost: TransferHost;
  /** Caller words said during an in-process switch, for the new agent. */
  readonly #carryOver: HandoffCarryOver;
  readonly #speechHealth: SpeechHealthMonitor;
  /** The agent the session was last told to run. */
  #requested: CallAgent | null = null;
  /** The agent whose activity last started: the voice the caller hears. */
  #speaking: AgentName | null = null;
  #ended = false;
  #handedOver = false;
  #sessionClosed = false;
  readonly #endSignal: AbortController;
  /** Recent model turns by id, to tell what the agent said in the turn that handed over. */
  readonly #turns = new Map<string, voice.SpeechHandle>();
  #effects: Promise<void> = Promise.resolve();
  #closing: Promise<void> = Promise.resolve();
  /** What the machine decided about the reply event being sent (set by its effects). */
  #replyDecision: ReplyDecision | null = null;
  /** Whether the agent owes the caller words, and for how long nothing has come. */
  readonly #deadAir: DeadAirWatch;

  constructor(options: SessionEffectsOptions) {
    this.#session = options.session;
    this.#host = options.host;
    this.#options = options;
    this.#log = options.log;
    this.#floor = options.floor;
    this.#roster = options.roster;
    this.#transfers = options.transfers;
    this.#carryOver = options.carryOver;
    this.#speechHealth = options.speechHealth;
    this.#endSignal = options.endSignal;
    this.#transferHost = {
      speak: (text) => this.#speak(text, false).waitForPlayout(),
      isLive: () => this.#host.actor.getSnapshot().status === 'active',
      send: (event) => this.#host.actor.send(event),
      log: this.#log,
    };
    this.#deadAir = new DeadAirWatch(this.#session, {
      ms: options.replies.deadlines.deadAirMs,
      onDeadAir: (debt, attempt, repay) => this.#deadAirReached(debt, attempt, repay),
    });
    this.#session.on(voice.AgentSessionEventTypes.SpeechCreated, ({ speechHandle }) => {
      this.#turns.set(speechHandle.id, speechHandle);
      if (this.#turns.size > 16) this.#turns.delete(this.#turns.keys().next().value!);
    });
  }

  /** The flow's machine, provided once per flow (callEffects.ts); `bind` its actor to this call. */
  machine(): CallMachine {
    return effectsMachine(this.#options.flow);
  }

  /** The named effects of `actor`'s machine are implemented here. */
  bind(actor: CallActor): void {
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
                this.#switchInProcess(agent, this.#host.actor.getSnapshot().context, false);
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
    bindEffects(actor, effects.actions);
  }

  /** The call has ended, moved to another worker or been withdrawn: nothing more happens here. */
  get ended(): boolean {
    return this.#ended;
  }

  /** The call lives elsewhere now (handed over or withdrawn): nothing this leg hears counts. */
  get handedOver(): boolean {
    return this.#handedOver;
  }

  /** The agent the caller hears now. */
  get speakingAgent(): AgentName | null {
    return this.#speaking;
  }

  /** The agent the session was last told to run. */
  get requestedAgent(): AgentName | null {
    return this.#requested?.callAgent ?? null;
  }

  /** The session closed (the caller left, the job is stopping): no goodbye can be said. */
  markSessionClosed(): void {
    this.#sessionClosed = true;
  }

  /** Start the session with its first agent, which holds the floor. */
  async startSession(first: CallAgent, options: CallStartOptions): Promise<void> {
    this.#requested = first;
    this.#floor.give(first);
    await this.#session.start({
      agent: first,
      ...(options.room ? { room: options.room } : {}),
      ...(options.inputOptions ? { inputOptions: options.inputOptions } : {}),
      ...(options.outputOptions ? { outputOptions: options.outputOptions } : {}),
    });
  }

  /** An agent's activity started: it is the one talking now, and opens its part of the call. */
  agentEntered(agent: CallAgent, { name, brief, resumed, tts }: AgentEntry): void {
    if (this.#ended) return; // the caller hung up while this agent was being switched in
    this.#speaking = name;
    this.#host.notify('agent', name);
    if (brief) {
      const opening = specialistOpening(name, brief, this.#options.opening, tts);
      let line: voice.SpeechHandle | undefined;
      if (opening.line) {
        const { text, audio } = opening.line;
        line = agent.session.say(text, { allowInterruptions: true, ...(audio ? { audio } : {}) });
      }
      const open = () => agent.session.generateReply({ instructions: opening.instructions });
      noteCutOpening(line ?? open(), name, this.#log);
      if (line) open();
      this.#deadAir.owe(open);
    } else if (resumed) {
      const resume = () => agent.session.generateReply({ instructions: RESUME_INSTRUCTIONS });
      resume();
      this.#deadAir.owe(resume);
    }
    this.#carryOver.deliverTo((words) => agent.session.generateReply({ userInput: words }));
  }

  /** Whether the agent owes the caller words now (after their turn, or on taking over). */
  get owesWords(): boolean {
    return this.#deadAir.owed;
  }

  /**
   * The agent owed words and nothing came for DEAD_AIR_MS: the machine decides, as for a failed
   * reply (`missing`): asked again (the opening, or a reply to the caller), then an apology.
   */
  #deadAirReached(debt: string, attempt: number, repay: (() => void) | null): void {
    const agent = this.#speaking;
    const context = this.#host.actor.getSnapshot().context;
    if (this.#ended || this.#handedOver || !agent || context.handover) return;
    this.#log.warn({ agent, attempt }, 'dead air: the agent owes the caller words');
    const decision = this.#options.replies.failed({
      replyId: debt,
      agent,
      kind: 'missing',
      attempt,
    });
    if ('retryInMs' in decision) {
      const retry = setTimeout(() => {
        if (this.#ended || this.#speaking !== agent) return;
        if (repay) repay();
        else this.#session.generateReply();
      }, decision.retryInMs);
      retry.unref?.();
    } else if (decision.say) this.sayNow(decision.say);
  }

  /**
   * Run `send` (a reply-guard report to the machine) and return what the machine's effects
   * decided about the reply: a hold line, a retry, an apology, or nothing.
   */
  decideReply(send: () => void): ReplyDecision | null {
    this.#replyDecision = null;
    send();
    return this.#replyDecision;
  }

  /** A fixed line said now, without waiting for other effects (the reply guard's lines). */
  sayNow(line: string): void {
    if (!this.#ended) this.#speak(line, true);
  }

  /** A new reply to the conversation as it stands (a realtime reply retried by the guard). */
  askAgain(): voice.SpeechHandle | undefined {
    return this.#ended ? undefined : this.#session.generateReply();
  }

  /** A fixed line said once the effects queued before it have run (keypad answers). */
  sayInTurn(what: string, line: string): void {
    this.#enqueue(what, async () => {
      await this.#speak(line, true).waitForPlayout();
    });
  }

  /**
   * Leave a call this leg was started to take over but did not join in time: silence, no `end`.
   * `stopMachine` runs before the session closes, so nothing the close causes reaches it.
   */
  async withdraw(stopMachine: () => void): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    this.#handedOver = true; // the call lives elsewhere: its close is not this leg's end
    this.#floor.give(null);
    stopMachine();
    try {
      await this.#session.close();
    } catch (error) {
      this.#log.warn({ err: error }, 'session close failed');
    }
    this.#log.info('leg withdrawn');
    this.#host.finished({
      reason: 'withdrawn',
      context: this.#host.actor.getSnapshot().context,
    });
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

  #activate(name: AgentName, context: CallContext): void {
    if (this.#ended || name === this.#requested?.callAgent) return;
    this.#switchInProcess(name, context);
  }

  #switchInProcess(name: AgentName, context: CallContext, bridgeLine = true): void {
    try {
      const agent = this.#roster.build(name, context);
      // The old agent says at once what the pause is for; the session plays it before the switch.
      const skip = skipsBridgeLine(this.#options.opening);
      if (bridgeLine && !skip && this.#options.bridgeLine !== false && this.#requested) {
        this.#speak(LINES.bridge(name), true);
      }
      if (this.#requested) this.#carryOver.watch(this.#requested);
      // A realtime agent's session is its own: what the caller says from now on is kept for it.
      holdCallerAudio(this.#session);
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
    const actor = this.#host.actor;
    let outcome: 'joined' | 'timeout' | 'failed' = 'failed';
    try {
      // One bridge line: words the agent said in the turn that handed over already are one.
      if (!(await this.#spokeInTurn(context.controlTurnId))) {
        await this.#speak(LINES.bridge(name), false).waitForPlayout();
      }
      if (this.#ended) return;
      const { joinTimeoutMs } = this.#options.handover!;
      const payload = encodePayload(
        actor.getPersistedSnapshot() as never,
        context.handoffs.at(-1) ?? null,
        this.#options.conversation.lines(),
        MAX_PAYLOAD_BYTES,
        joinTimeoutMs === undefined ? undefined : joinDeadline(joinTimeoutMs),
      );
      this.#host.notify('dispatch', name, Buffer.byteLength(payload, 'utf8'));
      outcome = await this.#options.handover!.handOver(payload, name, this.#endSignal.signal);
    } catch (error) {
      // A dispatch that cannot even be sent is a specialist that never joins.
      this.#log.warn({ err: error, to: name }, 'handover failed');
    }
    // A leg stopped meanwhile (its worker restarted) has nobody to tell.
    if (this.#ended || actor.getSnapshot().status !== 'active') return;
    // The machine decides: joined, this leg leaves; else the agent comes in here after all.
    if (outcome === 'joined') this.#host.request({ type: 'handover.joined' });
    else {
      this.#log.warn({ to: name, outcome }, 'specialist worker never joined; switching in process');
      this.#host.request({ type: 'handover.failed', reason: outcome });
    }
  }

  /** Dispatch mode: the call and its machine now live in the other worker; this leg leaves. */
  async #leave(context: CallContext): Promise<void> {
    this.#ended = true;
    this.#handedOver = true;
    this.#floor.give(null);
    await this.#session.close();
    this.#log.info({ to: context.handover?.to }, 'call handed over');
    this.#host.finished({ reason: END_REASON_HANDED_OVER, context });
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

  /** Spoken only once its audio played out; cut short (or the session closed under it), not. */
  async #greet(): Promise<void> {
    const handle = this.#speak(LINES.greeting(this.#options.companyName, this.#options.flow), true);
    await handle.waitForPlayout();
    const actor = this.#host.actor;
    if (actor.getSnapshot().status !== 'active' || this.#sessionClosed) return;
    actor.send({ type: handle.interrupted ? 'greeting.interrupted' : 'greeting.spoken' });
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
    this.#deadAir.close();
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
      this.#host.notify('end', reason);
      this.#host.finished({ reason, context });
    })();
  }

  #farewell(reason: string): string {
    const company = this.#options.companyName;
    if (reason === END_REASON_MODEL_UNAVAILABLE) return LINES.modelUnavailable(company);
    if (reason === END_REASON_SHUTDOWN) return LINES.shutdown(company);
    if (reason === END_REASON_SPEECH_UNAVAILABLE) return LINES.speechUnavailable(company);
    return LINES.goodbye(company);
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
}
