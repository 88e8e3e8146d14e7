/**
 * The call, as a statechart. This machine is the single authority over which agent talks.
 *
 * state                agent       accepts                                goes to
 * -------------------  ----------  -------------------------------------  ------------------------
 * reception            reception   handoff.requested {department}         billing | support | sales
 *   (both children)                end.requested / caller.hungUp          ended
 *   .greeting                      call.started (records caller, greets)  greeting (once per call)
 *                                  greeting.spoken                        intent
 *   .intent                        (listening)
 * billing    billing     handoff.requested {support | sales}       support | sales
 * support    support     handoff.requested {billing | sales}       billing | sales
 * sales      sales       handoff.requested {billing | support}     billing | support
 *                        reception.requested                       intent
 *                        end.requested / caller.hungUp             ended
 * (any agent state)      transfer.requested (a number configured)  transferring
 * transferring  the asking agent   transfer.succeeded -> ended (transferred)
 *                                  transfer.failed -> back to the asking agent, who apologises
 *                                  caller.hungUp -> ended
 * (any live state)  session.closed (the session closed under the call)  ended
 * ended      (none)      nothing: final
 *
 * Refusals (recorded in context.refusals; the state and the agent do not change):
 * - one-per-turn:    a second control change (handoff, return, end) from the same model turn
 *                    as one already accepted; the first accepted wins.
 * - same-department: a handoff to the department that is already active.
 * - handoff-cap:     the call already had `maxHandoffs` handoffs (returns to reception count).
 * - no-human:        a transfer to a person from an agent with no transfer number.
 *
 * Effects are named here and implemented by the bridge with `callMachine.provide(...)`:
 * greetCaller, activateAgent {agent}, transferCall {from}, apologiseForTransfer {agent},
 * endCall {reason, farewell}. The machine never does I/O and has
 * no `invoke` or `after`: timers belong to the bridge, so every path can be generated and tested.
 */
import { assign, setup } from 'xstate';

/** Bump when states, events or context change shape: persisted snapshots carry it. */
export const CALL_MACHINE_VERSION = 1;

export const DEFAULT_MAX_HANDOFFS = 4;

export const DEPARTMENTS = ['billing', 'support', 'sales'] as const;
export type Department = (typeof DEPARTMENTS)[number];
export type AgentName = 'reception' | Department;
export const AGENT_NAMES: readonly AgentName[] = ['reception', ...DEPARTMENTS];

/** Leaf state names: the reception state's children are `greeting` and `intent`. */
export type CallStateName = 'greeting' | 'intent' | Department | 'transferring' | 'ended';

/** The leaf state of a call snapshot: `{ reception: 'intent' }` -> `intent`. */
export function callStateOf(snapshot: { value: unknown }): CallStateName {
  const { value } = snapshot;
  if (typeof value === 'string') return value as CallStateName;
  return Object.values(value as Record<string, string>)[0] as CallStateName;
}

/** Which agent each live state puts on the line. */
export const AGENT_FOR_STATE: Readonly<
  Record<Exclude<CallStateName, 'ended' | 'transferring'>, AgentName>
> = {
  greeting: 'reception',
  intent: 'reception',
  billing: 'billing',
  support: 'support',
  sales: 'sales',
};

/** The agent on the line in a snapshot: the asking agent while transferring; none once ended. */
export function activeAgentOf(snapshot: {
  value: unknown;
  context: CallContext;
}): AgentName | null {
  const state = callStateOf(snapshot);
  if (state === 'ended') return null;
  if (state === 'transferring') return snapshot.context.transfer?.from ?? null;
  return AGENT_FOR_STATE[state];
}

export function isDepartment(value: string): value is Department {
  return (DEPARTMENTS as readonly string[]).includes(value);
}

export interface CallerInfo {
  /** E.164 number, when the telephony layer knows it. */
  number?: string;
  /** Display name from the SIP From header, when present. */
  name?: string;
  /** Provider or SIP call id, for correlating logs. */
  callId?: string;
}

export interface HandoffRecord {
  from: AgentName;
  to: AgentName;
  reason: string;
  summary: string;
  /** Epoch milliseconds. */
  at: number;
}

export type RefusalCode = 'one-per-turn' | 'same-department' | 'handoff-cap' | 'no-human';

export interface RefusalRecord {
  code: RefusalCode;
  request: 'handoff' | 'return' | 'end' | 'transfer';
  from: AgentName;
  to?: AgentName;
  /** The model turn that asked, when known. */
  turnId?: string;
  at: number;
}

export interface CallContext {
  /** Set by call.started; a second start is ignored (no second greeting). */
  started: boolean;
  caller: CallerInfo | null;
  maxHandoffs: number;
  handoffs: HandoffRecord[];
  refusals: RefusalRecord[];
  endReason: string | null;
  /** Model turn of the last accepted control change; a turn gets one. */
  controlTurnId: string | null;
  /** Model turn of the last control request, accepted or refused. */
  lastTurnId: string | null;
  /** Agents from which the caller can be transferred to a person (a number is configured). */
  humanTransfers: AgentName[];
  /** The transfer to a person under way, if any. */
  transfer: TransferRecord | null;
}

export interface TransferRecord {
  from: AgentName;
  reason: string;
  /** Why the last transfer failed, once it has. */
  error?: string;
}

export interface CallInput {
  maxHandoffs?: number;
  humanTransfers?: AgentName[];
}

/** Control events may carry the id of the model turn that produced them. */
interface TurnScoped {
  turnId?: string;
}

export type CallEvent =
  | { type: 'call.started'; caller?: CallerInfo }
  | { type: 'greeting.spoken' }
  | ({
      type: 'handoff.requested';
      department: Department;
      reason: string;
      summary: string;
    } & TurnScoped)
  | ({ type: 'reception.requested'; reason: string; summary: string } & TurnScoped)
  | ({ type: 'end.requested'; reason: string } & TurnScoped)
  | ({ type: 'transfer.requested'; reason: string } & TurnScoped)
  | { type: 'transfer.succeeded' }
  | { type: 'transfer.failed'; error: string }
  | { type: 'caller.hungUp' }
  /** The session closed under the call (job shut down, unrecoverable model error). */
  | { type: 'session.closed'; reason?: string };

export const END_REASON_HUNG_UP = 'caller-hung-up';
export const END_REASON_TRANSFERRED = 'transferred';

const REQUEST_KIND: Partial<Record<CallEvent['type'], RefusalRecord['request']>> = {
  'handoff.requested': 'handoff',
  'reception.requested': 'return',
  'end.requested': 'end',
  'transfer.requested': 'transfer',
};

export const callMachine = setup({
  types: {
    context: {} as CallContext,
    events: {} as CallEvent,
    input: {} as CallInput,
  },
  guards: {
    isNotStarted: ({ context }) => !context.started,
    isSameTurnAsLastChange: ({ context, event }) =>
      'turnId' in event && event.turnId !== undefined && event.turnId === context.controlTurnId,
    isAtHandoffCap: ({ context }) => context.handoffs.length >= context.maxHandoffs,
    isHandoffTo: ({ event }, params: { department: Department }) =>
      event.type === 'handoff.requested' && event.department === params.department,
    hasHumanFor: ({ context }, params: { agent: AgentName }) =>
      context.humanTransfers.includes(params.agent),
    isTransferFrom: ({ context }, params: { agent: AgentName }) =>
      context.transfer?.from === params.agent,
  },
  actions: {
    recordCaller: assign({
      started: true,
      caller: ({ context, event }) =>
        event.type === 'call.started' && event.caller ? event.caller : context.caller,
    }),
    recordHandoff: assign(({ context, event }, params: { from: AgentName }) => {
      if (event.type !== 'handoff.requested' && event.type !== 'reception.requested') return {};
      const to = event.type === 'handoff.requested' ? event.department : 'reception';
      const record: HandoffRecord = {
        from: params.from,
        to,
        reason: event.reason,
        summary: event.summary,
        at: Date.now(),
      };
      const turnId = event.turnId ?? null;
      return { handoffs: [...context.handoffs, record], controlTurnId: turnId, lastTurnId: turnId };
    }),
    recordRefusal: assign(({ context, event }, params: { from: AgentName; code: RefusalCode }) => {
      const request = REQUEST_KIND[event.type] ?? 'end';
      const refusal: RefusalRecord = {
        code: params.code,
        request,
        from: params.from,
        at: Date.now(),
      };
      if (event.type === 'handoff.requested') refusal.to = event.department;
      if (event.type === 'reception.requested') refusal.to = 'reception';
      const turnId = 'turnId' in event ? event.turnId : undefined;
      if (turnId !== undefined) refusal.turnId = turnId;
      return { refusals: [...context.refusals, refusal], lastTurnId: turnId ?? null };
    }),
    recordEnd: assign({
      endReason: ({ event }) =>
        event.type === 'end.requested'
          ? event.reason
          : event.type === 'transfer.succeeded'
            ? END_REASON_TRANSFERRED
            : event.type === 'session.closed'
              ? (event.reason ?? 'session closed')
              : END_REASON_HUNG_UP,
    }),
    recordTransfer: assign(({ event }, params: { from: AgentName }) => {
      const reason = event.type === 'transfer.requested' ? event.reason : '';
      const turnId = 'turnId' in event ? (event.turnId ?? null) : null;
      return { transfer: { from: params.from, reason }, controlTurnId: turnId, lastTurnId: turnId };
    }),
    // The model turn that asked for the transfer is long over: the next request opens a new one.
    recordTransferFailure: assign({
      transfer: ({ context, event }) =>
        context.transfer && event.type === 'transfer.failed'
          ? { ...context.transfer, error: event.error }
          : context.transfer,
      controlTurnId: null,
      lastTurnId: null,
    }),
    // Effects: the bridge provides the real implementations.
    greetCaller: () => {},
    activateAgent: (_, _params: { agent: AgentName }) => {},
    transferCall: (_, _params: { from: AgentName }) => {},
    apologiseForTransfer: (_, _params: { agent: AgentName }) => {},
    endCall: (_, _params: { reason: string; farewell: boolean }) => {},
  },
}).createMachine({
  id: 'call',
  initial: 'reception',
  // From any live state: nothing can go on without a session.
  on: { 'session.closed': { target: '.ended' } },
  context: ({ input }) => ({
    started: false,
    caller: null,
    maxHandoffs: input.maxHandoffs ?? DEFAULT_MAX_HANDOFFS,
    handoffs: [],
    refusals: [],
    endReason: null,
    controlTurnId: null,
    lastTurnId: null,
    humanTransfers: input.humanTransfers ?? [],
    transfer: null,
  }),
  states: {
    reception: {
      description: 'The reception agent is on the line: greeting the caller, then listening.',
      entry: { type: 'activateAgent', params: { agent: 'reception' } },
      initial: 'greeting',
      states: {
        greeting: {
          description:
            'Reception is speaking its greeting; the caller may already ask for something.',
          on: {
            'call.started': { guard: 'isNotStarted', actions: ['recordCaller', 'greetCaller'] },
            'greeting.spoken': { target: 'intent' },
          },
        },
        intent: {
          description: 'Reception is listening for what the caller needs.',
        },
      },
      on: {
        'handoff.requested': [
          { guard: 'isSameTurnAsLastChange', actions: refuse('reception', 'one-per-turn') },
          { guard: 'isAtHandoffCap', actions: refuse('reception', 'handoff-cap') },
          ...DEPARTMENTS.map((d) => handoffTo(d, 'reception')),
        ],
        'end.requested': endUnlessSameTurn('reception'),
        'transfer.requested': transferUnlessRefused('reception'),
        'caller.hungUp': { target: '#call.ended' },
      },
    },
    billing: specialist('billing'),
    support: specialist('support'),
    sales: specialist('sales'),
    transferring: {
      description:
        'The caller is being handed to a person (SIP REFER); the agent who asked stays on the line.',
      entry: { type: 'transferCall', params: ({ context }) => ({ from: context.transfer!.from }) },
      on: {
        'transfer.succeeded': { target: 'ended' },
        'transfer.failed': AGENT_NAMES.map((agent) => backAfterFailedTransfer(agent)),
        'caller.hungUp': { target: 'ended' },
      },
    },
    ended: {
      type: 'final',
      entry: [
        'recordEnd',
        {
          type: 'endCall',
          params: ({ event, context }) => ({
            reason: context.endReason ?? END_REASON_HUNG_UP,
            // Only an agent's decision to end gets a goodbye: a caller who hung up or was
            // transferred is no longer listening.
            farewell: event.type === 'end.requested',
          }),
        },
      ],
    },
  },
});

function refuse(from: AgentName, code: RefusalCode) {
  return { type: 'recordRefusal', params: { from, code } } as const;
}

function handoffTo(department: Department, from: AgentName) {
  return {
    guard: { type: 'isHandoffTo', params: { department } },
    target: `#call.${department}`,
    actions: { type: 'recordHandoff', params: { from } },
  } as const;
}

function backAfterFailedTransfer(agent: AgentName) {
  return {
    guard: { type: 'isTransferFrom', params: { agent } },
    target: agent === 'reception' ? '#call.reception.intent' : `#call.${agent}`,
    actions: ['recordTransferFailure', { type: 'apologiseForTransfer', params: { agent } }],
  } as const;
}

function transferUnlessRefused(from: AgentName) {
  return [
    { guard: 'isSameTurnAsLastChange', actions: refuse(from, 'one-per-turn') },
    {
      guard: { type: 'hasHumanFor', params: { agent: from } },
      target: '#call.transferring',
      actions: { type: 'recordTransfer', params: { from } },
    },
    { actions: refuse(from, 'no-human') },
  ] as const;
}

function endUnlessSameTurn(from: AgentName) {
  return [
    { guard: 'isSameTurnAsLastChange', actions: refuse(from, 'one-per-turn') },
    { target: '#call.ended' },
  ] as const;
}

function specialist(department: Department) {
  return {
    description: `The ${department} specialist is talking with the caller.`,
    entry: { type: 'activateAgent', params: { agent: department } },
    on: {
      'handoff.requested': [
        { guard: 'isSameTurnAsLastChange', actions: refuse(department, 'one-per-turn') },
        {
          guard: { type: 'isHandoffTo', params: { department } },
          actions: refuse(department, 'same-department'),
        },
        { guard: 'isAtHandoffCap', actions: refuse(department, 'handoff-cap') },
        ...DEPARTMENTS.filter((d) => d !== department).map((d) => handoffTo(d, department)),
      ],
      'reception.requested': [
        { guard: 'isSameTurnAsLastChange', actions: refuse(department, 'one-per-turn') },
        { guard: 'isAtHandoffCap', actions: refuse(department, 'handoff-cap') },
        {
          target: '#call.reception.intent',
          actions: { type: 'recordHandoff', params: { from: department } },
        },
      ],
      'end.requested': endUnlessSameTurn(department),
      'transfer.requested': transferUnlessRefused(department),
      'caller.hungUp': { target: '#call.ended' },
    },
  } as const;
}
