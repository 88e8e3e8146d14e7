/**
 * Runs a generated path against the real stack: a room-less AgentSession with the production
 * agents, tools and bridge. A scripted model turns each model turn of the path into the tool
 * calls the LLM would make; a hang-up becomes what a disconnect produces (the room event the
 * worker turns into caller.hungUp, then the session closing); requests made while reception is
 * still greeting arrive the way a keypad press would, straight to the bridge.
 *
 * After every turn it checks that the machine state, the agent actually speaking and the handoff
 * log match the model, and on a handoff that the new agent's first model request carries the
 * brief and the caller's words.
 */
import { voice } from '@livekit/agents';
import { type SnapshotFrom, waitFor } from 'xstate';
import type { CallInput, callMachine } from '../machines/callMachine.js';
import {
  type AgentName,
  activeAgentOf,
  type CallEvent,
  callStateOf,
} from '../machines/callMachine.js';
import { SipClient } from 'livekit-server-sdk';
import { CallBridge } from '../src/call/bridge.js';
import { type RestorePoint, restoreFromPayload } from '../src/call/handover.js';
import { callSessionOptions } from '../src/models/index.js';
import { DEFAULT_REPLY_DEADLINES } from '../src/call/replyGuard.js';
import { LiveKitTelephony } from '../src/livekit/telephony.js';
import { agentOf } from '../src/models/offlineBrain.js';
import { DEFAULT_FLOW, type Flow } from '../machines/flow.js';
import { type ModelReply, type ModelRequest, ScriptedLLM } from '../src/models/scriptedLlm.js';
import {
  type HeldCall,
  type LiveKitApiStandIn,
  sipFailure,
  startLiveKitApiStandIn,
} from './fakes/livekitApi.js';
import { MODEL_CALLER, type PathStep } from './pathModel.js';

type Snapshot = SnapshotFrom<typeof callMachine>;

/** How long the system may take to reach the model's state before it counts as diverged. */
const SETTLE_BOUND_MS = 5_000;

/** Thrown when the system diverges from the model; the message says where. */
export class Divergence extends Error {}

function isTurnScoped(event: CallEvent): event is Extract<CallEvent, { turnId?: string }> {
  return 'turnId' in event && event.turnId !== undefined;
}

/** Steps grouped into what happens at once: one model turn, or one outside event. */
function groupTurns(steps: PathStep[]): PathStep[][] {
  const turns: PathStep[][] = [];
  for (const step of steps) {
    const previous = turns.at(-1)?.at(-1);
    const sameTurn =
      previous &&
      isTurnScoped(step.event) &&
      isTurnScoped(previous.event) &&
      step.event.turnId === previous.event.turnId;
    if (sameTurn) turns.at(-1)!.push(step);
    else turns.push([step]);
  }
  return turns;
}

/** The tool call an LLM makes to ask for this event. */
function toolCallFor(event: CallEvent): { name: string; args: Record<string, unknown> } {
  switch (event.type) {
    case 'handoff.requested':
      return {
        name: `pass_control_to_${event.department}`,
        args: { reason: event.reason, summary: event.summary },
      };
    case 'reception.requested':
      return {
        name: 'return_to_reception',
        args: { reason: event.reason, summary: event.summary },
      };
    case 'end.requested':
      return { name: 'end_call', args: { reason: event.reason } };
    case 'transfer.requested':
      return { name: 'transfer_to_human', args: { reason: event.reason } };
    default:
      throw new Divergence(`no tool asks for ${event.type}`);
  }
}

export class PathRun {
  readonly model: ScriptedLLM;
  /** The call's session and bridge; a restart (`call.resumed`) replaces both. */
  session: voice.AgentSession;
  bridge: CallBridge;
  readonly activations: AgentName[] = [];
  readonly #replies = new Map<string, ModelReply>();
  readonly #waiters = new Set<{ ready: () => boolean; resolve: () => void }>();
  #openGreeting!: () => void;
  readonly #greetingHeld = new Promise<void>((resolve) => (this.#openGreeting = resolve));
  #ended = false;
  #started = false;
  readonly #lateActivations: AgentName[] = [];
  /** LiveKit's server API stand-in: transfers go over Twirp to it and wait for the path. */
  #api: LiveKitApiStandIn | undefined;
  #heldTransfer: HeldCall | undefined;
  /** Legs whose worker "stopped": closed with the run. */
  readonly #stopped: voice.AgentSession[] = [];
  /** Dispatch mode: the payload the bridge sent to the next worker, waiting for the path. */
  #handover:
    { payload: string; to: AgentName; answer: (outcome: 'joined' | 'timeout') => void } | undefined;

  readonly #flow: Flow;
  readonly #input: Required<CallInput>;

  constructor(input: Required<CallInput>, flow: Flow = DEFAULT_FLOW) {
    this.#flow = flow;
    this.#input = input;
    this.model = new ScriptedLLM((request) => this.#answer(request));
    [this.session, this.bridge] = this.#leg();
  }

  /** A session and bridge as a worker builds them; `restore` as after a restart. */
  #leg(restore?: RestorePoint): [voice.AgentSession, CallBridge] {
    const input = this.#input;
    const session = new voice.AgentSession({
      llm: this.model,
      ...callSessionOptions({
        reply: { deadlines: DEFAULT_REPLY_DEADLINES, policy: input.replyPolicy },
      }),
    });
    const bridge = new CallBridge({
      session,
      flow: this.#flow,
      companyName: 'Acme',
      maxHandoffs: input.maxHandoffs,
      reply: { policy: input.replyPolicy },
      // Fixed lines through the model, so the greeting can be held while the caller acts.
      speech: 'generate',
      telephony: {
        transferCaller: (to) => {
          const api = this.#api!;
          const sip = new SipClient(api.url, api.apiKey, api.apiSecret);
          return new LiveKitTelephony(sip, 'path-room', 'caller').transferCaller(to);
        },
      },
      humanNumbers: Object.fromEntries(
        input.humanTransfers.map((agent, i) => [agent, `+1555010${i}`]),
      ),
      ...(restore ? { restore } : {}),
      ...(input.handoffMode === 'dispatch'
        ? {
            handover: {
              // The department's worker: it joins or never does, as the path says.
              handOver: (payload: string, to: AgentName) =>
                new Promise<'joined' | 'timeout'>((answer) => {
                  this.#handover = { payload, to, answer };
                  this.#poke();
                }),
            },
          }
        : {}),
      observer: {
        agent: (agent) => {
          if (this.#ended) this.#lateActivations.push(agent);
          this.activations.push(agent);
          this.#poke();
        },
        end: () => {
          this.#ended = true;
          this.#poke();
        },
      },
    });
    return [session, bridge];
  }

  /**
   * The worker stops and the call is restored from its snapshot in a new one, as the room's
   * snapshot restores it after a crash: the old leg does nothing more.
   */
  async #restart(): Promise<void> {
    const snapshot = this.bridge.actor.getPersistedSnapshot();
    this.bridge.actor.stop();
    this.#stopped.push(this.session);
    [this.session, this.bridge] = this.#leg({
      snapshot,
      handoff: null,
      history: [],
      resumed: true,
    });
    await this.bridge.start();
  }

  async #answer(request: ModelRequest): Promise<ModelReply> {
    this.#poke();
    const fixed = /Say exactly this, and nothing else: "(.*)"$/m.exec(request.instructions);
    if (fixed) {
      if (fixed[1]!.includes('How can I help')) await this.#greetingHeld;
      return { text: fixed[1]! };
    }
    const reason = /^Reason to acknowledge: (.*)$/m.exec(request.instructions);
    if (request.instructions.includes('Opening:') && reason) {
      return { text: `${agentOf(request, this.#flow)} here, about ${reason[1]}.` };
    }
    const last = request.messages.at(-1);
    if (last?.role === 'tool_result') return { text: `Sorry: ${last.output}` };
    if (last?.role === 'user') return this.#replies.get(last.text) ?? {};
    return {};
  }

  #offersTool(name: string): boolean {
    const agent = this.session.currentAgent;
    return Object.keys(agent.toolCtx.functionTools).includes(name);
  }

  /**
   * Resolve when `ready()` holds, re-checked on every agent activation, end and model request.
   * A system that never gets there is a divergence, reported after a bound rather than as a
   * hung test.
   */
  #until(ready: () => boolean, what: string): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        ready,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Divergence(`never saw ${what}`));
      }, SETTLE_BOUND_MS);
      this.#waiters.add(waiter);
    });
  }

  #poke(): void {
    for (const waiter of this.#waiters) {
      if (waiter.ready()) {
        this.#waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }

  async run(steps: PathStep[]): Promise<void> {
    this.#api = await startLiveKitApiStandIn();
    try {
      let turnNumber = 0;
      for (const turn of groupTurns(steps)) {
        await this.#perform(turn, ++turnNumber);
      }
    } finally {
      await this.close();
    }
    if (this.#lateActivations.length > 0) {
      throw new Divergence(`${this.#lateActivations.join(', ')} activated after the call ended`);
    }
  }

  async #perform(turn: PathStep[], turnNumber: number): Promise<void> {
    const first = turn[0]!;
    const expected = turn.at(-1)!.after;
    const requestsBefore = this.model.requests.length;
    const callerLine = `caller turn ${turnNumber}`;
    let spokenByCaller = false;

    switch (first.event.type) {
      case 'call.started':
        this.#started = true;
        await this.bridge.start({ caller: MODEL_CALLER });
        break;
      case 'greeting.spoken':
        this.#openGreeting();
        await waitFor(this.bridge.actor, (s) => callStateOf(s) !== 'greeting');
        break;
      case 'greeting.interrupted':
        // The caller speaks over the greeting: it stops before its end.
        this.session.interrupt();
        this.#openGreeting();
        await waitFor(this.bridge.actor, (s) => callStateOf(s) !== 'greeting');
        break;
      case 'transfer.referring':
        // The bridge sends the SIP REFER (the stand-in holds it) and tells the machine.
        await this.#heldTransfer!.arrived;
        await waitFor(this.bridge.actor, (s) => s.context.transfer?.referring === true);
        break;
      case 'call.resumed':
        await this.#restart();
        break;
      case 'handover.joined':
      case 'handover.failed': {
        await this.#until(() => this.#handover !== undefined, 'the payload sent');
        const handover = this.#handover!;
        this.#handover = undefined;
        handover.answer(first.event.type === 'handover.joined' ? 'joined' : 'timeout');
        break;
      }
      case 'handover.received': {
        // The department's worker takes the call from the payload alone; this leg leaves.
        await this.#until(() => this.#handover !== undefined, 'the payload sent');
        const handover = this.#handover!;
        this.#handover = undefined;
        const restoration = restoreFromPayload(handover.payload, false, this.#input, this.#flow);
        if (!restoration?.ok) throw new Divergence(`payload not restorable ${restoration?.ok}`);
        const left = this.bridge;
        handover.answer('joined');
        await left.done;
        this.#stopped.push(this.session);
        [this.session, this.bridge] = this.#leg(restoration.restore);
        await this.bridge.start();
        break;
      }
      case 'transfer.succeeded':
      case 'transfer.failed': {
        // The SIP REFER the bridge sent is answered now, as the path says.
        const held = this.#heldTransfer!;
        this.#heldTransfer = undefined;
        await held.arrived;
        held.answer(
          first.event.type === 'transfer.succeeded'
            ? { ok: true }
            : sipFailure(408, 'Request Timeout'),
        );
        break;
      }
      case 'caller.hungUp':
        // What a disconnect produces: the room event (the worker's hang-up), then RoomIO
        // closing the session. A REFER under way settles it when the path says (the machine
        // waits for it); one not yet sent fails, as the caller is gone.
        if (callStateOf(expected) !== 'transferring') {
          this.#heldTransfer?.answer(sipFailure(487, 'Request Terminated'));
        }
        this.bridge.callerHungUp();
        this.session.shutdown({ drain: false, reason: voice.CloseReason.PARTICIPANT_DISCONNECTED });
        break;
      default:
        if (!isTurnScoped(first.event)) {
          // Reply health arrives from the reply guard; a give-up may start a transfer.
          if (callStateOf(expected) === 'transferring') {
            this.#heldTransfer = this.#api!.hold('TransferSIPParticipant');
          }
          this.bridge.request(first.event);
        } else if (callStateOf(first.before) === 'greeting') {
          // Reception is still greeting: the request arrives as a keypad press would.
          if (callStateOf(expected) === 'transferring') {
            this.#heldTransfer = this.#api!.hold('TransferSIPParticipant');
          }
          for (const step of turn) this.bridge.request(step.event);
          if (callStateOf(this.bridge.actor.getSnapshot()) !== 'greeting') this.#openGreeting();
        } else if (!this.#offersTool(toolCallFor(first.event).name)) {
          // No such tool on this agent (e.g. no transfer number): only the keypad can ask.
          for (const step of turn) this.bridge.request(step.event);
        } else {
          if (callStateOf(expected) === 'transferring') {
            this.#heldTransfer = this.#api!.hold('TransferSIPParticipant');
          }
          this.#replies.set(callerLine, { toolCalls: turn.map((step) => toolCallFor(step.event)) });
          spokenByCaller = true;
          await this.session
            .run({ userInput: callerLine })
            .wait()
            .catch(() => undefined); // a run cut short by the end is checked below
        }
    }

    await this.#settle(expected, first.before, requestsBefore);
    this.#check(expected, first.before, requestsBefore, spokenByCaller ? callerLine : null, turn);
  }

  async #settle(expected: Snapshot, before: Snapshot, requestsBefore: number): Promise<void> {
    if (expected.status === 'done') {
      this.#openGreeting();
      await this.bridge.done;
      return;
    }
    if (expected.context.handover) {
      // Dispatch mode: the old agent fell silent and the payload goes out; nobody new speaks here.
      await this.#until(() => this.#handover !== undefined, 'the payload sent');
      return;
    }
    const agent = activeAgentOf(expected)!;
    const activationsBefore = this.activations.length;
    // Settled when the expected agent speaks, or when another one was switched in instead
    // (then the check below reports which).
    await this.#until(
      () =>
        this.bridge.speakingAgent === agent ||
        this.activations.slice(activationsBefore).some((a) => a !== agent),
      `${agent} speaking`,
    );
    if (callStateOf(before) === 'transferring' && callStateOf(expected) !== 'transferring') {
      await this.#until(
        () =>
          this.model.requests
            .slice(requestsBefore)
            .some((r) => r.instructions.includes('did not go through')),
        `${agent}'s apology for the failed transfer`,
      );
    }
    if (
      this.bridge.speakingAgent === agent &&
      expected.context.handoffs.length > before.context.handoffs.length
    ) {
      await this.#until(
        () => this.#openingRequest(agent, requestsBefore) !== undefined,
        `${agent}'s first model request`,
      );
    }
  }

  #openingRequest(agent: AgentName, from: number): ModelRequest | undefined {
    return this.model.requests
      .slice(from)
      .find((r) => r.instructions.includes('Opening:') && agentOf(r, this.#flow) === agent);
  }

  #check(
    expected: Snapshot,
    before: Snapshot,
    requestsBefore: number,
    callerLine: string | null,
    turn: PathStep[],
  ): void {
    const actual = this.bridge.actor.getSnapshot();
    const where = `after ${turn.map((s) => s.event.type).join(' + ')} from ${callStateOf(before)}`;
    const same = (what: string, got: unknown, want: unknown) => {
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        throw new Divergence(
          `${what} ${where}: system has ${JSON.stringify(got)}, model has ${JSON.stringify(want)}`,
        );
      }
    };
    same('state', callStateOf(actual), callStateOf(expected));
    same('status', actual.status, expected.status);
    if (expected.status !== 'done' && !expected.context.handover) {
      same('speaking agent', this.bridge.speakingAgent, activeAgentOf(expected));
    }
    same('handover', actual.context.handover, expected.context.handover);
    const log = (s: Snapshot) =>
      s.context.handoffs.map(({ from, to, reason, summary }) => ({ from, to, reason, summary }));
    same('handoff log', log(actual), log(expected));
    const refusals = (s: Snapshot) =>
      s.context.refusals.map(({ code, request, from, to }) => ({ code, request, from, to }));
    same('refusals', refusals(actual), refusals(expected));
    same('end reason', actual.context.endReason, expected.context.endReason);

    if (
      expected.status !== 'done' &&
      !expected.context.handover &&
      expected.context.handoffs.length > before.context.handoffs.length
    ) {
      const handoff = expected.context.handoffs.at(-1)!;
      const opening = this.#openingRequest(handoff.to, requestsBefore);
      if (!opening) throw new Divergence(`${handoff.to} made no first request ${where}`);
      for (const needle of [
        `Reason: ${handoff.reason}`,
        `Summary: ${handoff.summary}`,
        `Caller number: ${MODEL_CALLER.number}`,
      ]) {
        if (!opening.instructions.includes(needle)) {
          throw new Divergence(`${handoff.to}'s first request lacks "${needle}" ${where}`);
        }
      }
      if (callerLine && !opening.messages.some((m) => m.role === 'user' && m.text === callerLine)) {
        throw new Divergence(`${handoff.to}'s first request lacks the caller's words ${where}`);
      }
    }
  }

  /** End the call if the path left it live, and wait until nothing is pending. */
  async close(): Promise<void> {
    this.#openGreeting();
    // A REFER still held when the path ended fails, as it would once the caller is gone (a
    // hang-up during a REFER waits for its outcome).
    this.#heldTransfer?.answer(sipFailure(487, 'Request Terminated'));
    this.#handover?.answer('timeout'); // a department worker that never came
    if (this.bridge.actor.getSnapshot().status === 'active') {
      this.bridge.callerHungUp();
    }
    if (this.#started) await this.bridge.done;
    await Promise.all(this.#stopped.map((session) => session.close()));
    await this.#api?.close();
  }
}
