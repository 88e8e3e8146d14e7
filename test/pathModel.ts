/**
 * Handoff paths generated from the call machine itself, and coverage measured against its
 * definition. Nothing here lists states or transitions by hand: add a state or a guarded
 * transition to the machine and it is generated, executed and counted.
 *
 * The state space is bounded on purpose. A snapshot is identified only by what changes the
 * machine's future behaviour:
 *   - the state value,
 *   - whether the call has started,
 *   - the number of handoffs so far (capped by MODEL_MAX_HANDOFFS = 2: the cap guard behaves the
 *     same at 2 as at 4, and 2 keeps paths short),
 *   - while the model turn that made the last accepted change is still open, which agent made
 *     it (a same-turn request hits the one-per-turn guard, and can only be a tool that agent has),
 *   - the failed model turns in a row (under MODEL_REPLY_POLICY: one retry, two failed turns),
 *     and whether a transfer has failed: the reply-health guards read these,
 *   - whether recognition is down: the speech-health guards read it,
 *   - whether a SIP REFER is pending and whether the caller left during it.
 * Timestamps, the refusal log and the exact reason texts are left out: they grow without bound
 * and no guard reads them.
 */
import {
  type AnyStateNode,
  type SnapshotFrom,
  type TransitionDefinition,
  getInitialSnapshot,
  getNextSnapshot,
} from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import {
  type AgentName,
  type CallEvent,
  type CallInput,
  type CallMachine,
  DEFAULT_REPLY_POLICY,
  agentForState,
  callStateOf,
  machineFor,
} from '../machines/callMachine.js';
import { DEFAULT_FLOW, type Flow, departmentsOf } from '../machines/flow.js';
import { acceptedRequests } from '../machines/offers.js';

export const MODEL_MAX_HANDOFFS = 2;
/** One retry and two failed turns reach every reply-health guard with the shortest paths. */
export const MODEL_REPLY_POLICY = { ...DEFAULT_REPLY_POLICY, maxRetries: 1, maxFailedTurns: 2 };
/**
 * Configurations the model is explored under. Which agents have a transfer number is
 * configuration, so one configuration cannot reach every guard: these two together do.
 */
export function modelInputs(flow: Flow): Required<CallInput>[] {
  const departments = departmentsOf(flow);
  return [
    {
      maxHandoffs: MODEL_MAX_HANDOFFS,
      humanTransfers: ['reception', ...departments.slice(0, -1)],
      replyPolicy: MODEL_REPLY_POLICY,
      handoffMode: 'in-process',
    },
    {
      maxHandoffs: MODEL_MAX_HANDOFFS,
      humanTransfers: departments.slice(-1),
      replyPolicy: MODEL_REPLY_POLICY,
      handoffMode: 'in-process',
    },
    // Dispatch mode: a handoff goes to the department's worker, which joins or never does.
    {
      maxHandoffs: MODEL_MAX_HANDOFFS,
      humanTransfers: [],
      replyPolicy: MODEL_REPLY_POLICY,
      handoffMode: 'dispatch',
    },
  ];
}
export const MODEL_INPUTS = modelInputs(DEFAULT_FLOW);
export const MODEL_CALLER = { number: '+15550100' };

type Snapshot = SnapshotFrom<CallMachine>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- transitions of any event type
type AnyTransition = TransitionDefinition<any, any>;

export interface PathStep {
  event: CallEvent;
  /** The machine's snapshot before the event. */
  before: Snapshot;
  /** The machine's snapshot after it: what the system must match. */
  after: Snapshot;
  /** Key of the machine transition the event takes. */
  transition: string;
}

export interface ModelPath {
  /** The configuration the call runs with. */
  input: Required<CallInput>;
  /** The transition this path was generated to cover (its last step), and from which state. */
  target: string;
  steps: PathStep[];
}

/** The path model of a flow's machine: its states, transitions and generated paths. */
export function createPathModel(flow: Flow = DEFAULT_FLOW) {
  const machine = machineFor(flow);
  function allStateNodes(node: AnyStateNode = machine.root): AnyStateNode[] {
    return [node, ...Object.values(node.states).flatMap((child) => allStateNodes(child))];
  }

  /** The machine's own states (ids without the machine id), excluding the root. */
  function machineStates(): string[] {
    return allStateNodes()
      .filter((node) => node !== machine.root)
      .map((node) => node.path.join('.'));
  }

  /** The states a snapshot is in, as `machineStates()` names them: `reception` and `reception.intent`. */
  function activeStates(snapshot: Snapshot): string[] {
    return snapshot._nodes
      .filter((node) => node !== machine.root)
      .map((node) => node.path.join('.'));
  }

  /** Every transition of the machine, one per guarded alternative, keyed `state:event#index`. */
  function machineTransitions(): Map<AnyTransition, string> {
    const keys = new Map<AnyTransition, string>();
    for (const node of allStateNodes()) {
      for (const [eventType, candidates] of node.transitions) {
        candidates.forEach((candidate, index) => {
          keys.set(candidate, `${node.path.join('.')}:${eventType}#${index}${describe(candidate)}`);
        });
      }
    }
    return keys;
  }

  function describe(transition: AnyTransition): string {
    const guard = transition.guard
      ? typeof transition.guard === 'string'
        ? transition.guard
        : ((transition.guard as { type?: string }).type ?? 'guard')
      : '';
    const target = transition.target?.map((t) => t.key).join(',') ?? 'self';
    return ` [${guard ? `${guard} ` : ''}-> ${target}]`;
  }

  const TRANSITIONS = machineTransitions();

  function transitionKey(snapshot: Snapshot, event: CallEvent): string | undefined {
    const [taken] = machine.getTransitionData(snapshot, event);
    return taken ? TRANSITIONS.get(taken) : undefined;
  }

  /** Event types each agent's states handle: what that agent's tools can ask for. */
  function eventTypesOfAgent(agent: AgentName, context: Snapshot['context']): Set<string> {
    const types = new Set<string>();
    for (const node of allStateNodes()) {
      if (agentForState(node.key) !== agent) continue;
      // A state handles its own events and its ancestors'.
      for (let n: AnyStateNode | undefined = node; n; n = n.parent) {
        for (const type of n.transitions.keys()) types.add(type);
      }
    }
    // The transfer tool is only offered to agents with a transfer number.
    if (!context.humanTransfers.includes(agent)) types.delete('transfer.requested');
    return types;
  }

  function isTurnOpen(snapshot: Snapshot): boolean {
    const { controlTurnId, lastTurnId } = snapshot.context;
    return controlTurnId !== null && lastTurnId === controlTurnId;
  }

  let freshTurns = 0;
  /** Events generated as "one more tool call in the model turn that made the last change". */
  const sameTurnEvents = new WeakSet<CallEvent>();

  /** The agent whose model turn is still open (it made the last accepted change), if any. */
  function openBatchAgent(snapshot: Snapshot): AgentName | null {
    if (!isTurnOpen(snapshot)) return null;
    const { transfer, handoffs } = snapshot.context;
    // The last accepted change was a transfer request (we are transferring) or a handoff.
    return callStateOf(snapshot) === 'transferring'
      ? (transfer?.from ?? null)
      : (handoffs.at(-1)?.from ?? null);
  }

  /** Payload variants per event type. An event type not listed here is sent as `{ type }`. */
  function variants(type: string, snapshot: Snapshot): CallEvent[] {
    const { context } = snapshot;
    const step = context.handoffs.length + context.refusals.length;
    // A fresh model turn, and (while open) the turn that made the last accepted change, but only
    // for requests the agent who made that turn has tools for: a batch comes from one agent.
    const turns = [`fresh-${++freshTurns}`];
    const batchAgent = openBatchAgent(snapshot);
    const sameTurn =
      batchAgent && eventTypesOfAgent(batchAgent, context).has(type)
        ? context.controlTurnId!
        : null;
    if (sameTurn) turns.push(sameTurn);
    const mark = (event: CallEvent) => {
      if ('turnId' in event && event.turnId === sameTurn) sameTurnEvents.add(event);
      return event;
    };
    switch (type) {
      case 'call.started':
        return [{ type, caller: MODEL_CALLER }];
      case 'handoff.requested':
        return departmentsOf(flow).flatMap((department) =>
          // In a batch, only the departments that agent has a tool for (derived from the machine).
          turns
            .filter(
              (turnId) => turnId !== sameTurn || offersHandoff(batchAgent!, department, context),
            )
            .map((turnId) =>
              mark({
                type,
                department,
                reason: `${department} need ${step}`,
                summary: `Caller explained the ${department} need at step ${step}.`,
                turnId,
              }),
            ),
        );
      case 'reception.requested':
        return turns.map((turnId) =>
          mark({
            type,
            reason: `other need ${step}`,
            summary: `Caller needs something else at step ${step}.`,
            turnId,
          }),
        );
      case 'end.requested':
        return turns.map((turnId) => mark({ type, reason: `caller done ${step}`, turnId }));
      case 'transfer.requested':
        return turns.map((turnId) => mark({ type, reason: `wants a person ${step}`, turnId }));
      case 'transfer.failed':
        return [{ type, error: 'SIP 408 Request Timeout' }];
      case 'reply.late':
        return [{ type, replyId: `reply-${step}-${freshTurns}` }];
      case 'reply.failed': {
        const replyId = `reply-${step}-${freshTurns}`;
        const last = context.reply.policy.maxRetries;
        // A retryable failure with retries left, the same with none left, and one never retried.
        return [
          { type, replyId, kind: 'http', attempt: 0 },
          { type, replyId, kind: 'timeout', attempt: last },
          { type, replyId, kind: 'empty', attempt: 0 },
        ];
      }
      case 'speech.failed':
        // A provider down with a fallback left, and the last of each kind.
        return [
          { type, kind: 'stt', reason: 'closed', remaining: 1 },
          { type, kind: 'stt', reason: 'refused', remaining: 0 },
          { type, kind: 'tts', reason: 'http', remaining: 0 },
        ];
      case 'speech.recovered':
        return [{ type, kind: 'stt' }];
      case 'speech.timedOut':
        return [{ type, kind: 'stt' }];
      default:
        return [{ type } as CallEvent];
    }
  }

  function offersHandoff(
    agent: AgentName,
    department: string,
    context: Snapshot['context'],
  ): boolean {
    return acceptedRequests(
      agent,
      { maxHandoffs: context.maxHandoffs, humanTransfers: context.humanTransfers },
      flow,
    ).some((r) => r.kind === 'handoff' && r.department === department);
  }

  /** The events worth trying from a snapshot: those the machine has a transition for. */
  function eventsFrom(snapshot: Snapshot): CallEvent[] {
    if (snapshot.status !== 'active') return [];
    // Every call begins with call.started: the bridge sends it before anything else can happen.
    if (!snapshot.context.started) return [{ type: 'call.started', caller: MODEL_CALLER }];
    const types = new Set<string>();
    for (const node of snapshot._nodes) for (const type of node.transitions.keys()) types.add(type);
    return [...types]
      .flatMap((type) => variants(type, snapshot))
      .filter((event) => snapshot.can(event));
  }

  function serializeSnapshot(snapshot: Snapshot): string {
    const { started, handoffs, reply, transfer } = snapshot.context;
    return JSON.stringify([
      callStateOf(snapshot),
      started,
      handoffs.length,
      openBatchAgent(snapshot),
      // The reply-health guards read the failed turns and whether a transfer has failed.
      reply.failedTurns,
      transfer?.error !== undefined,
      // The REFER/hang-up guards read whether the REFER is pending and the caller has left.
      transfer?.referring === true,
      transfer?.callerLeft === true,
      // Dispatch mode and a handover under way: the handover guards read them.
      snapshot.context.handoffMode,
      snapshot.context.handover?.to ?? null,
      snapshot.context.speech.hearingLost,
    ]);
  }

  /**
   * One path per machine transition and state it can be taken from: the shortest path to that
   * state, plus the transition. Together they cover every state and every transition.
   */
  function generatePaths(): ModelPath[] {
    const best = new Map<string, ModelPath>();
    for (const input of modelInputs(flow)) {
      const statePaths = getShortestPaths(machine, {
        input,
        events: eventsFrom,
        serializeState: serializeSnapshot,
      });
      for (const statePath of statePaths) {
        const prefix = statePath.steps
          .map((step) => step.event)
          .filter((event) => !event.type.startsWith('xstate.'));
        // The prefix is replayed once; each event from its state is one step more.
        const reached = replayer(input);
        for (const event of prefix) reached.step(event);
        for (const event of eventsFrom(statePath.state)) {
          const next = reached.peek(event);
          // A transition declared on a parent state (reception's handoffs, ends, hang-ups) is
          // taken from each of its children: one path per child, so each is exercised.
          const target = `${next.transition} from ${callStateOf(next.before)}`;
          const current = best.get(target);
          if (!current || reached.steps.length + 1 < current.steps.length) {
            best.set(target, { input, target, steps: [...reached.steps, next.take()] });
          }
        }
      }
    }
    return [...best.values()].sort((a, b) => a.target.localeCompare(b.target));
  }

  /**
   * Replay events from the start. Paths are stitched from representative snapshots (one per
   * serialized state), so the true snapshots and turn ids are recomputed here: an event generated
   * as a same-turn request joins the previous event's turn (one batch of tool calls); any other
   * request opens a new turn.
   */
  function replay(input: Required<CallInput>, events: CallEvent[]): PathStep[] {
    const replaying = replayer(input);
    for (const event of events) replaying.step(event);
    return replaying.steps;
  }

  /**
   * A replay in progress: `step` takes an event; `peek` says which transition one more would
   * take, and `take()` computes the step (the next snapshot is the costly part).
   */
  function replayer(input: Required<CallInput>) {
    let snapshot = getInitialSnapshot(machine, input);
    const steps: PathStep[] = [];
    let turns = 0;
    let turn = '';
    const peek = (original: CallEvent) => {
      let event = original;
      let nextTurns = turns;
      let nextTurn = turn;
      if ('turnId' in original && original.turnId !== undefined) {
        if (!sameTurnEvents.has(original)) nextTurn = `turn-${++nextTurns}`;
        event = { ...original, turnId: nextTurn };
      }
      const before = snapshot;
      const transition = transitionKey(before, event) ?? 'none';
      const take = (): PathStep => ({
        event,
        before,
        after: getNextSnapshot(machine, before, event),
        transition,
      });
      return { before, transition, take, nextTurns, nextTurn };
    };
    return {
      steps,
      peek,
      step: (event: CallEvent): void => {
        const next = peek(event);
        const taken = next.take();
        steps.push(taken);
        snapshot = taken.after;
        turns = next.nextTurns;
        turn = next.nextTurn;
      },
    };
  }

  function allTransitionKeys(): string[] {
    return [...TRANSITIONS.values()];
  }

  return {
    flow,
    machine,
    machineStates,
    activeStates,
    machineTransitions,
    transitionKey,
    eventsFrom,
    serializeSnapshot,
    generatePaths,
    replay,
    allTransitionKeys,
  };
}

export type PathModel = ReturnType<typeof createPathModel>;

const DEFAULT_MODEL = createPathModel(DEFAULT_FLOW);
export const {
  machineStates,
  activeStates,
  machineTransitions,
  transitionKey,
  eventsFrom,
  serializeSnapshot,
  generatePaths,
  replay,
  allTransitionKeys,
} = DEFAULT_MODEL;
