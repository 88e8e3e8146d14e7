/**
 * The call, as a statechart. This machine is the single authority over which agent talks.
 *
 * state                agent       accepts                                goes to
 * -------------------  ----------  -------------------------------------  ------------------------
 * reception            reception   handoff.requested {department}         billing | support | sales
 *   (both children)                end.requested / caller.hungUp          ended
 *   .greeting                      call.started (records caller, greets)  greeting (once per call)
 *                                  greeting.spoken (played out)           intent
 *                                  greeting.interrupted (cut, not heard)  intent (recorded)
 *   .intent                        (listening)
 * billing    billing     handoff.requested {support | sales}       support | sales
 * support    support     handoff.requested {billing | sales}       billing | sales
 * sales      sales       handoff.requested {billing | support}     billing | support
 *                        reception.requested                       intent
 *                        end.requested / caller.hungUp             ended
 * (any agent state)      transfer.requested (a number configured)  transferring
 * transferring  the asking agent   transfer.referring: the SIP REFER is sent, its outcome pending
 *                                  transfer.succeeded -> ended (transferred)
 *                                  transfer.failed -> back to the asking agent, who apologises
 *                                  caller.hungUp -> ended; while the REFER is pending the caller
 *                                    leaving is the REFER working (SIP takes them out of the room
 *                                    before the API answers): the outcome settles it, a failure
 *                                    then ends the call as a hang-up
 *                                  call.resumed (restored after a restart): the REFER's outcome is
 *                                    unknowable, so back to the asking agent, who apologises
 * (any live state)  session.closed (the session closed under the call)  ended
 * (any live state)  shutdown.requested (SIGTERM, worker draining)        ended, with a goodbye
 * ended      (none)      nothing: final
 *
 * Reply health (any agent state; the bridge reports how the agent's model requests go):
 * - reply.late {replyId}: no words yet HOLD_LINE_MS after the caller finished -> holdLine, at
 *   most once per turn (one reply: the model request and its retries).
 * - reply.failed {replyId, kind, attempt}: a model request failed. Retryable kinds (http,
 *   rate-limited, network, timeout, stall, missing) are retried `maxRetries` times -> retryReply
 *   {delayMs}, honouring Retry-After up to `retryAfterCapMs`. A turn that still fails, or a
 *   failure that cannot be retried (rejected, empty, filtered, cut), is a failed turn: the agent
 *   apologises (apologiseForReply). After `maxFailedTurns` failed turns in a row: a transfer to
 *   a person where one is configured for that agent (and none has failed yet), else the end
 *   with reason `model-unavailable`, and an apology in the goodbye.
 * - reply.recovered: a reply reached the caller: the count of failed turns starts again.
 *
 * Speech health (any agent state; the bridge reports how the speech providers go):
 * - speech.failed {kind: stt|tts, reason, remaining}: a provider failed; `remaining` providers
 *   of that kind still work (the SDK's fallbacks moved to the next one). Recorded.
 *   - stt, none remaining: recognition is down. The agent says once that it has trouble
 *     hearing (reportHearingTrouble, which also starts the bridge's outage clock); the keypad
 *     still works.
 *   - tts, none remaining: no voice can speak: a transfer to a person where one is configured
 *     (and none has failed), else the end with reason `speech-unavailable`, without words.
 * - speech.recovered {kind}: a provider works again; for stt, recognition is back
 *   (hearingRestored stops the clock).
 * - speech.timedOut {kind: stt}: recognition stayed down SPEECH_OUTAGE_MS: a transfer to a
 *   person where configured, else a goodbye and the end with reason `speech-unavailable`.
 *
 * Refusals (recorded in context.refusals; the state and the agent do not change):
 * - one-per-turn:    a second control change (handoff, return, end) from the same model turn
 *                    as one already accepted; the first accepted wins.
 * - same-department: a handoff to the department that is already active.
 * - handoff-cap:     the call already had `maxHandoffs` handoffs (returns to reception count).
 * - no-human:        a transfer to a person from an agent with no transfer number.
 *
 * Effects are named here and implemented by the bridge (provided once per flow, bound per call:
 * src/call/callEffects.ts):
 * greetCaller, activateAgent {agent}, transferCall {from}, apologiseForTransfer {agent},
 * endCall {reason, farewell}, holdLine {agent}, retryReply {delayMs},
 * apologiseForReply {agent, kind}, reportHearingTrouble {agent}, hearingRestored. The machine never does I/O and has
 * no `invoke` or `after`: timers belong to the bridge, so every path can be generated and tested.
 */
import { and, assign, setup } from 'xstate';
import { DEFAULT_FLOW, type Flow, agentsOf, departmentsOf } from './flow.js';

/** Bump when states, events or context change shape: persisted snapshots carry it. */
export const CALL_MACHINE_VERSION = 5;

export const DEFAULT_MAX_HANDOFFS = 4;
export const DEFAULT_REPLY_POLICY: ReplyPolicy = {
  maxRetries: 2,
  maxFailedTurns: 2,
  retryAfterCapMs: 5_000,
  backoffMs: 250,
};

/** A department's name, as declared in the flow (machines/flow.ts). */
export type Department = string;
/** `reception` or a department. */
export type AgentName = string;

/** Leaf state names: `greeting` and `intent` (reception's children), departments, and the rest. */
export type CallStateName = string;

/** The leaf state of a call snapshot: `{ reception: 'intent' }` -> `intent`. */
export function callStateOf(snapshot: { value: unknown }): CallStateName {
  const { value } = snapshot;
  if (typeof value === 'string') return value;
  return Object.values(value as Record<string, string>)[0]!;
}

/** The agent a live state puts on the line: reception in its two states, else the department. */
export function agentForState(state: CallStateName): AgentName | null {
  if (state === 'ended' || state === 'transferring' || state === 'handedOver') return null;
  return state === 'greeting' || state === 'intent' ? 'reception' : state;
}

/** The agent on the line in a snapshot: the asking agent while transferring; none once ended. */
export function activeAgentOf(snapshot: {
  value: unknown;
  context: CallContext;
}): AgentName | null {
  const state = callStateOf(snapshot);
  if (state === 'transferring') return snapshot.context.transfer?.from ?? null;
  return agentForState(state);
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

/**
 * How a model request failed:
 * - http: a 5xx answer; rate-limited: a 429; rejected: any other 4xx (key, model, request);
 * - network: no connection; timeout: no first token in time; stall: the stream stopped before
 *   any words;
 * - cut: the stream broke after words were already spoken; empty: a reply with neither words
 *   nor tool calls; filtered: the provider's content filter stopped it;
 * - missing: the agent owed the caller words (after their turn, or on taking over the call) and
 *   nothing was said or in progress for DEAD_AIR_MS: a reply never asked for or dropped on the
 *   way (src/call/deadAir.ts). A fresh reply can cure it.
 */
export const REPLY_FAILURE_KINDS = [
  'http',
  'rate-limited',
  'rejected',
  'network',
  'timeout',
  'stall',
  'cut',
  'empty',
  'filtered',
  'missing',
] as const;
export type ReplyFailureKind = (typeof REPLY_FAILURE_KINDS)[number];
/** Failures a fresh request can cure: nothing was spoken and the provider may answer next time. */
export const RETRYABLE_REPLY_FAILURES: readonly ReplyFailureKind[] = [
  'http',
  'rate-limited',
  'network',
  'timeout',
  'stall',
  'missing',
];

export const END_REASON_MODEL_UNAVAILABLE = 'model-unavailable';
export const END_REASON_SHUTDOWN = 'shutdown';
export const END_REASON_SPEECH_UNAVAILABLE = 'speech-unavailable';

/** Speech-to-text (the caller's words) or text-to-speech (the agents' voices). */
export type SpeechKind = 'stt' | 'tts';
/**
 * How a speech provider failed: refused (the connection or websocket was refused), closed (a
 * live connection closed), http (an error status), timeout (no answer or a stalled stream),
 * error (anything else).
 */
export const SPEECH_FAILURE_REASONS = ['refused', 'closed', 'http', 'timeout', 'error'] as const;
export type SpeechFailureReason = (typeof SPEECH_FAILURE_REASONS)[number];

export interface SpeechFailureRecord {
  agent: AgentName;
  kind: SpeechKind;
  reason: SpeechFailureReason;
  remaining: number;
  at: number;
}

export interface SpeechHealth {
  /** No speech-to-text provider can hear the caller. */
  hearingLost: boolean;
  /** The latest failures, newest last (bounded). */
  failures: SpeechFailureRecord[];
}

export interface ReplyPolicy {
  /** Fresh requests after a retryable failure, within one turn. */
  maxRetries: number;
  /** Failed turns in a row before the call goes to a person or ends. */
  maxFailedTurns: number;
  /** The longest Retry-After honoured; longer ones are cut to this. */
  retryAfterCapMs: number;
  /** First backoff without Retry-After; doubled on each further attempt. */
  backoffMs: number;
}

export interface ReplyFailureRecord {
  agent: AgentName;
  kind: ReplyFailureKind;
  attempt: number;
  replyId: string;
  /** What the machine decided. */
  decision: 'retry' | 'apologise' | 'transfer' | 'end';
  at: number;
}

export interface ReplyHealth {
  policy: ReplyPolicy;
  /** Failed turns in a row; a reply that reaches the caller resets it. */
  failedTurns: number;
  /** The model request that got the last hold line: a turn gets one. */
  heldReplyId: string | null;
  /** The latest failures, newest last (bounded). */
  failures: ReplyFailureRecord[];
}

const MAX_FAILURE_RECORDS = 20;

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
  /** How the agents' model requests are going, and the policy for when they fail. */
  reply: ReplyHealth;
  /** How the speech providers are going. */
  speech: SpeechHealth;
  /** How the greeting went: played out, or cut before its end (barge-in, failed audio). */
  greeting: 'spoken' | 'interrupted' | null;
  handoffMode: HandoffMode;
  /** Dispatch mode: the call is being handed to `to`'s worker, which has not joined yet. */
  handover: { to: AgentName } | null;
}

export interface TransferRecord {
  from: AgentName;
  reason: string;
  /** The SIP REFER has been sent and its outcome is pending. */
  referring?: boolean;
  /** The caller left the room while the REFER was pending. */
  callerLeft?: boolean;
  /** Why the machine started it: the caller or agent asked, or the model or speech failed. */
  cause: 'requested' | 'model-unavailable' | 'speech-unavailable';
  /** Why the last transfer failed, once it has. */
  error?: string;
}

export interface CallInput {
  maxHandoffs?: number;
  humanTransfers?: AgentName[];
  replyPolicy?: ReplyPolicy;
  /** How a handoff reaches the next agent: in this session, or another worker (dispatch). */
  handoffMode?: HandoffMode;
}

export type HandoffMode = 'in-process' | 'dispatch';
export const END_REASON_HANDED_OVER = 'handed-over';

/** Control events may carry the id of the model turn that produced them. */
interface TurnScoped {
  turnId?: string;
}

export type CallEvent =
  | { type: 'call.started'; caller?: CallerInfo }
  /** The greeting's audio was played out to its end. */
  | { type: 'greeting.spoken' }
  /** The greeting stopped before its end: the caller spoke over it, or its audio failed. */
  | { type: 'greeting.interrupted' }
  | ({
      type: 'handoff.requested';
      department: Department;
      reason: string;
      summary: string;
    } & TurnScoped)
  | ({ type: 'reception.requested'; reason: string; summary: string } & TurnScoped)
  | ({ type: 'end.requested'; reason: string } & TurnScoped)
  | ({ type: 'transfer.requested'; reason: string } & TurnScoped)
  /** The SIP REFER has been sent; its outcome follows. */
  | { type: 'transfer.referring' }
  | { type: 'transfer.succeeded' }
  | { type: 'transfer.failed'; error: string }
  /** The call was restored from a snapshot after its worker stopped. */
  | { type: 'call.resumed' }
  /** Dispatch mode, in the leg handing over: the next worker has the caller. */
  | { type: 'handover.joined' }
  /** Dispatch mode, in the leg handing over: the next worker never joined. */
  | { type: 'handover.failed'; reason: string }
  /** Dispatch mode, in the leg taking over: the call arrived here. */
  | { type: 'handover.received' }
  | { type: 'caller.hungUp' }
  /** The session closed under the call (job shut down, unrecoverable model error). */
  | { type: 'session.closed'; reason?: string }
  /** The process is stopping (SIGTERM, SIGINT, worker drain): say goodbye and end. */
  | { type: 'shutdown.requested' }
  /** No words yet, `HOLD_LINE_MS` after the caller finished. */
  | { type: 'reply.late'; replyId: string }
  | {
      type: 'reply.failed';
      replyId: string;
      kind: ReplyFailureKind;
      /** 0 for the turn's first request. */
      attempt: number;
      /** The provider's Retry-After, when it sent one. */
      retryAfterMs?: number;
    }
  /** A reply reached the caller. */
  | { type: 'reply.recovered' }
  | {
      type: 'speech.failed';
      kind: SpeechKind;
      reason: SpeechFailureReason;
      /** Providers of this kind that still work (the fallbacks left). */
      remaining: number;
    }
  | { type: 'speech.recovered'; kind: SpeechKind }
  /** Recognition has been down SPEECH_OUTAGE_MS. */
  | { type: 'speech.timedOut'; kind: 'stt' };

export const END_REASON_HUNG_UP = 'caller-hung-up';
export const END_REASON_TRANSFERRED = 'transferred';

const REQUEST_KIND: Partial<Record<CallEvent['type'], RefusalRecord['request']>> = {
  'handoff.requested': 'handoff',
  'reception.requested': 'return',
  'end.requested': 'end',
  'transfer.requested': 'transfer',
};

const callSetup = setup({
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
    isReferring: ({ context }) => context.transfer?.referring === true,
    isHandingOver: ({ context }) => context.handover !== null,
    isCallerGone: ({ context }) => context.transfer?.callerLeft === true,
    isNotHeldInTurn: ({ context, event }) =>
      event.type === 'reply.late' && event.replyId !== context.reply.heldReplyId,
    isRetryableFailure: ({ context, event }) =>
      event.type === 'reply.failed' &&
      RETRYABLE_REPLY_FAILURES.includes(event.kind) &&
      event.attempt < context.reply.policy.maxRetries,
    isLastFailedTurn: ({ context }) =>
      context.reply.failedTurns + 1 >= context.reply.policy.maxFailedTurns,
    canGiveUpToHuman: ({ context }, params: { agent: AgentName }) =>
      context.reply.failedTurns + 1 >= context.reply.policy.maxFailedTurns &&
      context.humanTransfers.includes(params.agent) &&
      !context.transfer?.error,
    hasFailedTurns: ({ context }) => context.reply.failedTurns > 0,
    isVoiceLost: ({ event }) =>
      event.type === 'speech.failed' && event.kind === 'tts' && event.remaining === 0,
    isHearingLostNow: ({ context, event }) =>
      event.type === 'speech.failed' &&
      event.kind === 'stt' &&
      event.remaining === 0 &&
      !context.speech.hearingLost,
    isHearingBack: ({ context, event }) =>
      event.type === 'speech.recovered' && event.kind === 'stt' && context.speech.hearingLost,
    isHearingStillLost: ({ context }) => context.speech.hearingLost,
    canTransferForSpeech: ({ context }, params: { agent: AgentName }) =>
      context.humanTransfers.includes(params.agent) && !context.transfer?.error,
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
      endReason: ({ event }) => endReasonOf(event),
    }),
    recordTransfer: assign(({ event }, params: { from: AgentName }) => {
      if (event.type === 'speech.failed' || event.type === 'speech.timedOut') {
        const transfer: TransferRecord = {
          from: params.from,
          reason: END_REASON_SPEECH_UNAVAILABLE,
          cause: 'speech-unavailable',
        };
        return { transfer, controlTurnId: null, lastTurnId: null };
      }
      if (event.type === 'reply.failed') {
        const transfer: TransferRecord = {
          from: params.from,
          reason: END_REASON_MODEL_UNAVAILABLE,
          cause: 'model-unavailable',
        };
        return { transfer, controlTurnId: null, lastTurnId: null };
      }
      const reason = event.type === 'transfer.requested' ? event.reason : '';
      const turnId = 'turnId' in event ? (event.turnId ?? null) : null;
      const transfer: TransferRecord = { from: params.from, reason, cause: 'requested' };
      return { transfer, controlTurnId: turnId, lastTurnId: turnId };
    }),
    recordHold: assign({
      reply: ({ context, event }) => ({
        ...context.reply,
        heldReplyId: event.type === 'reply.late' ? event.replyId : context.reply.heldReplyId,
      }),
    }),
    recordReplyFailure: assign(
      (
        { context, event },
        params: { agent: AgentName; decision: ReplyFailureRecord['decision'] },
      ) => {
        if (event.type !== 'reply.failed') return {};
        const record: ReplyFailureRecord = {
          agent: params.agent,
          kind: event.kind,
          attempt: event.attempt,
          replyId: event.replyId,
          decision: params.decision,
          at: Date.now(),
        };
        const failures = [...context.reply.failures, record].slice(-MAX_FAILURE_RECORDS);
        const failedTurns = context.reply.failedTurns + (params.decision === 'retry' ? 0 : 1);
        return { reply: { ...context.reply, failures, failedTurns } };
      },
    ),
    recordSpeechFailure: assign(({ context, event }, params: { agent: AgentName }) => {
      if (event.type !== 'speech.failed') return {};
      const record: SpeechFailureRecord = {
        agent: params.agent,
        kind: event.kind,
        reason: event.reason,
        remaining: event.remaining,
        at: Date.now(),
      };
      const failures = [...context.speech.failures, record].slice(-MAX_FAILURE_RECORDS);
      const hearingLost =
        context.speech.hearingLost || (event.kind === 'stt' && event.remaining === 0);
      return { speech: { hearingLost, failures } };
    }),
    recordHearingBack: assign({
      speech: ({ context }) => ({ ...context.speech, hearingLost: false }),
    }),
    recordRecovery: assign({ reply: ({ context }) => ({ ...context.reply, failedTurns: 0 }) }),
    // The model turn that asked for the transfer is long over: the next request opens a new one.
    recordReferring: assign({
      transfer: ({ context }) => context.transfer && { ...context.transfer, referring: true },
    }),
    recordCallerLeft: assign({
      transfer: ({ context }) => context.transfer && { ...context.transfer, callerLeft: true },
    }),
    recordTransferFailure: assign({
      transfer: ({ context, event }) =>
        context.transfer && {
          ...context.transfer,
          referring: false,
          error: event.type === 'transfer.failed' ? event.error : 'interrupted by a restart',
        },
      controlTurnId: null,
      lastTurnId: null,
    }),
    clearHandover: assign({ handover: null }),
    // Effects: the bridge provides the real implementations.
    greetCaller: () => {},
    dispatchCall: (_, _params: { to: AgentName }) => {},
    takeOverHere: (_, _params: { agent: AgentName }) => {},
    leaveCall: () => {},
    activateAgent: (_, _params: { agent: AgentName }) => {},
    transferCall: (_, _params: { from: AgentName }) => {},
    apologiseForTransfer: (_, _params: { agent: AgentName }) => {},
    endCall: (_, _params: { reason: string; farewell: boolean }) => {},
    holdLine: (_, _params: { agent: AgentName }) => {},
    retryReply: (_, _params: { delayMs: number }) => {},
    apologiseForReply: (_, _params: { agent: AgentName; kind: ReplyFailureKind }) => {},
    reportHearingTrouble: (_, _params: { agent: AgentName }) => {},
    hearingRestored: () => {},
  },
});

/** The machine of a flow: reception, then one state per department (see the header). */
export function createCallMachine(flow: Flow) {
  const departments = departmentsOf(flow);
  const agents = agentsOf(flow);
  return callSetup.createMachine({
    id: 'call',
    initial: 'reception',
    // From any live state: nothing can go on without a session, and a stopping process ends it.
    on: {
      'session.closed': { target: '.ended' },
      'shutdown.requested': { target: '.ended' },
    },
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
      reply: {
        policy: input.replyPolicy ?? DEFAULT_REPLY_POLICY,
        failedTurns: 0,
        heldReplyId: null,
        failures: [],
      },
      speech: { hearingLost: false, failures: [] },
      greeting: null,
      handoffMode: input.handoffMode ?? 'in-process',
      handover: null,
    }),
    states: {
      reception: {
        description: 'The reception agent is on the line: greeting the caller, then listening.',
        entry: bringIn('reception'),
        initial: 'greeting',
        states: {
          greeting: {
            description:
              'Reception is speaking its greeting; the caller may already ask for something.',
            on: {
              'call.started': { guard: 'isNotStarted', actions: ['recordCaller', 'greetCaller'] },
              'greeting.spoken': { target: 'intent', actions: assign({ greeting: 'spoken' }) },
              'greeting.interrupted': {
                target: 'intent',
                actions: assign({ greeting: 'interrupted' }),
              },
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
            ...departments.map((d) => handoffTo(d, 'reception')),
          ],
          'end.requested': endUnlessSameTurn('reception'),
          'transfer.requested': transferUnlessRefused('reception'),
          'caller.hungUp': { target: '#call.ended' },
          ...replyHealth('reception'),
          ...speechHealth('reception'),
        },
      },
      ...Object.fromEntries(departments.map((d) => [d, specialist(d, departments)])),
      transferring: {
        description:
          'The caller is being handed to a person (SIP REFER); the agent who asked stays on the line.',
        entry: {
          type: 'transferCall',
          params: ({ context }) => ({ from: context.transfer!.from }),
        },
        on: {
          'transfer.referring': { actions: 'recordReferring' },
          'transfer.succeeded': { target: 'ended' },
          'transfer.failed': [
            { guard: 'isCallerGone', target: 'ended' },
            ...agents.map((agent) => backAfterFailedTransfer(agent)),
          ],
          'caller.hungUp': [
            { guard: 'isReferring', actions: 'recordCallerLeft' },
            { target: 'ended' },
          ],
          'call.resumed': agents.map((agent) => backAfterFailedTransfer(agent)),
        },
      },
      handedOver: {
        description: 'Dispatch mode: the call went on in the next worker; this leg left it.',
        type: 'final',
        entry: [assign({ endReason: END_REASON_HANDED_OVER }), 'leaveCall'],
      },
      ended: {
        type: 'final',
        entry: [
          'recordEnd',
          {
            type: 'endCall',
            params: ({ event, context }) => ({
              reason: context.endReason ?? END_REASON_HUNG_UP,
              // Only an agent's decision to end, a shutdown, a model that gave up or ears that
              // stayed deaf get a goodbye: a caller who hung up or was transferred is no longer
              // listening, and with no voice left nothing can be said.
              farewell:
                event.type === 'end.requested' ||
                event.type === 'shutdown.requested' ||
                event.type === 'reply.failed' ||
                event.type === 'speech.timedOut',
            }),
          },
        ],
      },
    },
  });
}

export type CallMachine = ReturnType<typeof createCallMachine>;

const machines = new WeakMap<Flow, CallMachine>();

/** The flow's machine, built once per flow. */
export function machineFor(flow: Flow): CallMachine {
  let machine = machines.get(flow);
  if (!machine) machines.set(flow, (machine = createCallMachine(flow)));
  return machine;
}

/** The default flow's machine: reception, billing, support and sales. */
export const callMachine: CallMachine = machineFor(DEFAULT_FLOW);

/**
 * Entering an agent's state: in dispatch mode a handoff sends the call to that agent's worker
 * (`dispatchCall`; the old agent falls silent); anything else brings the agent in here.
 */
function bringIn(agent: AgentName) {
  return callSetup.enqueueActions(({ context, event, enqueue }) => {
    const handoff = event.type === 'handoff.requested' || event.type === 'reception.requested';
    if (context.handoffMode === 'dispatch' && handoff) {
      enqueue.assign({ handover: { to: agent } });
      enqueue({ type: 'dispatchCall', params: { to: agent } });
    } else {
      enqueue({ type: 'activateAgent', params: { agent } });
    }
  });
}

/** Dispatch mode: how a handover under way ends, the same in every agent state. */
function handover(agent: AgentName) {
  const takeOver = ['clearHandover', { type: 'takeOverHere', params: { agent } }] as const;
  return {
    'handover.joined': { guard: 'isHandingOver', target: '#call.handedOver' },
    // Never joined, or the worker restarted before it knew: the agent comes in here after all.
    'handover.failed': { guard: 'isHandingOver', actions: takeOver },
    'handover.received': { guard: 'isHandingOver', actions: 'clearHandover' },
    'call.resumed': { guard: 'isHandingOver', actions: takeOver },
  } as const;
}

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

function specialist(department: Department, departments: readonly Department[]) {
  return {
    description: `The ${department} specialist is talking with the caller.`,
    entry: bringIn(department),
    on: {
      'handoff.requested': [
        { guard: 'isSameTurnAsLastChange', actions: refuse(department, 'one-per-turn') },
        {
          guard: { type: 'isHandoffTo', params: { department } },
          actions: refuse(department, 'same-department'),
        },
        { guard: 'isAtHandoffCap', actions: refuse(department, 'handoff-cap') },
        ...departments.filter((d) => d !== department).map((d) => handoffTo(d, department)),
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
      ...replyHealth(department),
      ...speechHealth(department),
      ...handover(department),
    },
  } as const;
}

/** The reply-health policy, the same in every agent state (see the header). */
function replyHealth(agent: AgentName) {
  const failure = (decision: ReplyFailureRecord['decision']) =>
    ({ type: 'recordReplyFailure', params: { agent, decision } }) as const;
  return {
    'reply.late': {
      guard: 'isNotHeldInTurn',
      actions: ['recordHold', { type: 'holdLine', params: { agent } }],
    },
    'reply.failed': [
      {
        guard: 'isRetryableFailure',
        actions: [
          failure('retry'),
          {
            type: 'retryReply',
            params: ({ context, event }: { context: CallContext; event: CallEvent }) => ({
              delayMs: retryDelay(context.reply.policy, event),
            }),
          },
        ],
      },
      {
        guard: { type: 'canGiveUpToHuman', params: { agent } },
        target: '#call.transferring',
        actions: [failure('transfer'), { type: 'recordTransfer', params: { from: agent } }],
      },
      { guard: 'isLastFailedTurn', target: '#call.ended', actions: failure('end') },
      {
        actions: [
          failure('apologise'),
          {
            type: 'apologiseForReply',
            params: ({ event }: { event: CallEvent }) => ({
              agent,
              kind: event.type === 'reply.failed' ? event.kind : ('empty' as const),
            }),
          },
        ],
      },
    ],
    'reply.recovered': { guard: 'hasFailedTurns', actions: 'recordRecovery' },
  } as const;
}

/** The speech-health policy, the same in every agent state (see the header). */
function speechHealth(agent: AgentName) {
  const record = { type: 'recordSpeechFailure', params: { agent } } as const;
  const transfer = { type: 'recordTransfer', params: { from: agent } } as const;
  const toPerson = { type: 'canTransferForSpeech', params: { agent } } as const;
  return {
    'speech.failed': [
      {
        guard: and(['isVoiceLost', toPerson]),
        target: '#call.transferring',
        actions: [record, transfer],
      },
      { guard: 'isVoiceLost', target: '#call.ended', actions: record },
      {
        guard: 'isHearingLostNow',
        actions: [record, { type: 'reportHearingTrouble', params: { agent } }],
      },
      { actions: record },
    ],
    'speech.recovered': {
      guard: 'isHearingBack',
      actions: ['recordHearingBack', 'hearingRestored'],
    },
    'speech.timedOut': [
      {
        guard: and(['isHearingStillLost', toPerson]),
        target: '#call.transferring',
        actions: transfer,
      },
      { guard: 'isHearingStillLost', target: '#call.ended' },
    ],
  } as const;
}

/** Retry-After when the provider sent one (capped), else a doubling backoff. */
export function retryDelay(policy: ReplyPolicy, event: CallEvent): number {
  if (event.type !== 'reply.failed') return 0;
  if (event.retryAfterMs !== undefined) {
    return Math.min(Math.max(0, event.retryAfterMs), policy.retryAfterCapMs);
  }
  return Math.min(policy.backoffMs * 2 ** event.attempt, policy.retryAfterCapMs);
}

function endReasonOf(event: CallEvent): string {
  switch (event.type) {
    case 'end.requested':
      return event.reason;
    case 'transfer.succeeded':
      return END_REASON_TRANSFERRED;
    case 'session.closed':
      return event.reason ?? 'session closed';
    case 'shutdown.requested':
      return END_REASON_SHUTDOWN;
    case 'reply.failed':
      return END_REASON_MODEL_UNAVAILABLE;
    case 'speech.failed':
    case 'speech.timedOut':
      return END_REASON_SPEECH_UNAVAILABLE;
    default:
      return END_REASON_HUNG_UP;
  }
}
