/**
 * The handoff payload: what travels when a call moves to another worker (dispatch mode) or is
 * resumed after a crash. The machine's persisted snapshot is the payload; with it go the brief
 * and a bounded slice of the conversation.
 *
 * Size: LiveKit limits room and participant metadata to 64 KiB. The payload is kept
 * under MAX_PAYLOAD_BYTES (16 KiB) so it also fits beside other room metadata: every free-text
 * field is bounded (FIELD_LIMITS), history is dropped oldest first, then the handoffs' reasons
 * and summaries are shortened. The history is the whole call's (every hop adds its own lines to
 * what it received), not one leg's. It carries no secrets (configuration never
 * enters the machine's context). Personal data in it is what the next agent needs to go on: the
 * caller's number and name, the handoff summaries, and the recent lines of the conversation.
 */
import {
  CALL_MACHINE_VERSION,
  type CallContext,
  type CallerInfo,
  type HandoffRecord,
  agentForState,
  callStateOf,
} from '../../machines/callMachine.js';
import { CallerSchema, HandoffSchema, PayloadSchema, describeIssue } from './payloadSchema.js';
import { DEFAULT_FLOW, type Flow, agentsOf } from '../../machines/flow.js';

/** Bump when the payload's own shape changes. */
export const PAYLOAD_VERSION = 1;
export const MAX_PAYLOAD_BYTES = 16 * 1024;
/** Conversation items carried at most, before the byte bound applies. */
export const MAX_HISTORY_ITEMS = 20;

export interface HistoryLine {
  role: 'user' | 'assistant';
  text: string;
}

export interface HandoffPayload {
  kind: 'call-handoff';
  payloadVersion: number;
  machineVersion: number;
  /** `actor.getPersistedSnapshot()` of the call machine. */
  snapshot: { value: unknown; context: CallContext } & Record<string, unknown>;
  /** The handoff that moved the call (absent when resuming after a crash). */
  handoff: HandoffRecord | null;
  history: HistoryLine[];
  /**
   * Dispatch mode: epoch milliseconds by which the next agent must have spoken. The previous
   * worker carries on in process after that, so a specialist still silent then leaves unheard.
   */
  joinBy?: number;
}

export type DecodedPayload =
  | { ok: true; payload: HandoffPayload }
  | {
      ok: false;
      reason: string;
      handoff: HandoffRecord | null;
      caller: CallContext['caller'];
      joinBy?: number;
    };

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/**
 * Longest free text carried per field, in characters. Every field a model or a caller can make
 * long is bounded here, so the payload fits however the call went: a long `reason` or caller
 * name must never make a handoff fail.
 */
export const FIELD_LIMITS = {
  reason: 300,
  summary: 2_000,
  callerName: 100,
  callerNumber: 32,
  callId: 128,
  /** Transfer reason and error, end reason. */
  note: 300,
  line: 1_000,
  /** Refusals kept (the latest): the machine's guards never read them. */
  refusals: 20,
} as const;

/** `text` cut to `max` characters, marked with an ellipsis when cut. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

type Snapshot = HandoffPayload['snapshot'];

function clipHandoff(h: HandoffRecord, reason: number, summary: number): HandoffRecord {
  return { ...h, reason: clip(h.reason, reason), summary: clip(h.summary, summary) };
}

/** The context with every free-text field within FIELD_LIMITS. */
function boundedContext(context: CallContext): CallContext {
  const { caller, transfer } = context;
  const note = (text: string) => clip(text, FIELD_LIMITS.note);
  return {
    ...context,
    caller: caller && {
      ...caller,
      ...(caller.name !== undefined ? { name: clip(caller.name, FIELD_LIMITS.callerName) } : {}),
      ...(caller.number !== undefined
        ? { number: clip(caller.number, FIELD_LIMITS.callerNumber) }
        : {}),
      ...(caller.callId !== undefined ? { callId: clip(caller.callId, FIELD_LIMITS.callId) } : {}),
    },
    handoffs: context.handoffs.map((h) =>
      clipHandoff(h, FIELD_LIMITS.reason, FIELD_LIMITS.summary),
    ),
    refusals: context.refusals.slice(-FIELD_LIMITS.refusals),
    endReason: context.endReason === null ? null : note(context.endReason),
    transfer: transfer && {
      ...transfer,
      reason: note(transfer.reason),
      ...(transfer.error !== undefined ? { error: note(transfer.error) } : {}),
    },
  };
}

/**
 * Shorter texts for the handoffs when history alone cannot make the payload fit: first every
 * handoff's, then the older handoffs' are emptied (the latest one is the brief the next agent
 * opens with, so it keeps a reason and a short summary).
 */
const SHRINK_STEPS: ((h: HandoffRecord, latest: boolean) => HandoffRecord)[] = [
  (h) => clipHandoff(h, 100, 200),
  (h, latest) => (latest ? clipHandoff(h, 100, 200) : clipHandoff(h, 0, 0)),
];

function withHandoffs(
  snapshot: Snapshot,
  shrink: (h: HandoffRecord, latest: boolean) => HandoffRecord,
): Snapshot {
  const handoffs = snapshot.context.handoffs;
  return {
    ...snapshot,
    context: {
      ...snapshot.context,
      handoffs: handoffs.map((h, i) => shrink(h, i === handoffs.length - 1)),
    },
  };
}

export function encodePayload(
  snapshot: Snapshot,
  handoff: HandoffRecord | null,
  history: HistoryLine[],
  maxBytes = MAX_PAYLOAD_BYTES,
  joinBy?: number,
): string {
  const payload: HandoffPayload = {
    kind: 'call-handoff',
    payloadVersion: PAYLOAD_VERSION,
    machineVersion: CALL_MACHINE_VERSION,
    snapshot: { ...snapshot, context: boundedContext(snapshot.context) },
    handoff: handoff && clipHandoff(handoff, FIELD_LIMITS.reason, FIELD_LIMITS.summary),
    history: history
      .slice(-MAX_HISTORY_ITEMS)
      .map((line) => ({ ...line, text: clip(line.text, FIELD_LIMITS.line) })),
    ...(joinBy !== undefined ? { joinBy } : {}),
  };
  let text = JSON.stringify(payload);
  while (bytes(text) > maxBytes && payload.history.length > 0) {
    payload.history = payload.history.slice(1);
    text = JSON.stringify(payload);
  }
  const bounded = payload.snapshot;
  for (const shrink of SHRINK_STEPS) {
    if (bytes(text) <= maxBytes) break;
    payload.snapshot = withHandoffs(bounded, shrink);
    payload.handoff = handoff && shrink(payload.handoff!, true);
    text = JSON.stringify(payload);
  }
  if (bytes(text) > maxBytes) {
    // Only for a bound far below MAX_PAYLOAD_BYTES: every field above is already bounded.
    throw new Error(`handoff payload is ${bytes(text)} bytes, over the ${maxBytes} byte bound`);
  }
  return text;
}

/**
 * Parse a payload. A payload of another machine or payload version is refused, but what can be
 * salvaged (the brief and the caller) is returned so the call can go on from a fresh start.
 */
export function decodePayload(text: string, flow: Flow = DEFAULT_FLOW): DecodedPayload | null {
  let parsed: Partial<HandoffPayload>;
  try {
    parsed = JSON.parse(text) as Partial<HandoffPayload>;
  } catch {
    return null;
  }
  if (parsed?.kind !== 'call-handoff') return null;
  // What can be salvaged from a payload that cannot be restored: each part only if well formed.
  const handoff = HandoffSchema.safeParse(parsed.handoff);
  const caller = CallerSchema.safeParse(parsed.snapshot?.context?.caller);
  const salvaged = {
    handoff: handoff.success ? (handoff.data as HandoffRecord) : null,
    caller: caller.success ? (caller.data as CallerInfo) : null,
    ...(typeof parsed.joinBy === 'number' ? { joinBy: parsed.joinBy } : {}),
  };
  if (parsed.payloadVersion !== PAYLOAD_VERSION) {
    return { ok: false, reason: `payload version ${parsed.payloadVersion}`, ...salvaged };
  }
  if (parsed.machineVersion !== CALL_MACHINE_VERSION) {
    return {
      ok: false,
      reason: `machine version ${parsed.machineVersion}, this worker runs ${CALL_MACHINE_VERSION}`,
      ...salvaged,
    };
  }
  const valid = PayloadSchema.safeParse(parsed);
  if (!valid.success) {
    return { ok: false, reason: `malformed payload at ${describeIssue(valid.error)}`, ...salvaged };
  }
  // Agent names are well formed; each must also be one of this worker's flow.
  const agents = agentsOf(flow);
  const named = [...payloadAgents(parsed as HandoffPayload)].filter((a) => !agents.includes(a));
  if (named.length > 0) {
    return { ok: false, reason: `agent ${named[0]} is not in this flow`, ...salvaged };
  }
  return { ok: true, payload: parsed as HandoffPayload };
}

/** Every agent a payload names: its state's, its handoffs', refusals', transfer's and failures'. */
function payloadAgents(payload: HandoffPayload): Set<string> {
  const { snapshot, handoff } = payload;
  const context = snapshot.context;
  const state = callStateOf(snapshot);
  const names = new Set<string>(handoff ? [handoff.from, handoff.to] : []);
  const live = agentForState(state);
  if (live) names.add(live);
  for (const h of context.handoffs) names.add(h.from).add(h.to);
  for (const r of context.refusals) {
    names.add(r.from);
    if (r.to) names.add(r.to);
  }
  for (const a of context.humanTransfers) names.add(a);
  if (context.transfer) names.add(context.transfer.from);
  if (context.handover) names.add(context.handover.to);
  for (const f of [...context.reply.failures, ...context.speech.failures]) names.add(f.agent);
  return names;
}
