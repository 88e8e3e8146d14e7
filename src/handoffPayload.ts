/**
 * The handoff payload: what travels when a call moves to another worker (dispatch mode) or is
 * resumed after a crash. The machine's persisted snapshot is the payload; with it go the brief
 * and a bounded slice of the conversation.
 *
 * Size: LiveKit limits room and participant metadata to 64 KiB. The payload is kept
 * under MAX_PAYLOAD_BYTES (16 KiB) so it also fits beside other room metadata: history is
 * dropped oldest first, then summaries are shortened. It carries no secrets (configuration never
 * enters the machine's context). Personal data in it is what the next agent needs to go on: the
 * caller's number and name, the handoff summaries, and the recent lines of the conversation.
 */
import {
  CALL_MACHINE_VERSION,
  type CallContext,
  type HandoffRecord,
} from '../machines/callMachine.js';

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
}

export type DecodedPayload =
  | { ok: true; payload: HandoffPayload }
  | { ok: false; reason: string; handoff: HandoffRecord | null; caller: CallContext['caller'] };

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

export function encodePayload(
  snapshot: HandoffPayload['snapshot'],
  handoff: HandoffRecord | null,
  history: HistoryLine[],
  maxBytes = MAX_PAYLOAD_BYTES,
): string {
  const payload: HandoffPayload = {
    kind: 'call-handoff',
    payloadVersion: PAYLOAD_VERSION,
    machineVersion: CALL_MACHINE_VERSION,
    snapshot,
    handoff,
    history: history.slice(-MAX_HISTORY_ITEMS),
  };
  let text = JSON.stringify(payload);
  while (bytes(text) > maxBytes && payload.history.length > 0) {
    payload.history = payload.history.slice(1);
    text = JSON.stringify(payload);
  }
  if (bytes(text) > maxBytes) {
    // Still too big: the handoff summaries in the log are the next largest free text.
    const shorten = (h: HandoffRecord) => ({ ...h, summary: h.summary.slice(0, 200) });
    payload.snapshot = {
      ...payload.snapshot,
      context: {
        ...payload.snapshot.context,
        handoffs: payload.snapshot.context.handoffs.map(shorten),
      },
    };
    payload.handoff = handoff && shorten(handoff);
    text = JSON.stringify(payload);
  }
  if (bytes(text) > maxBytes) {
    throw new Error(`handoff payload is ${bytes(text)} bytes, over the ${maxBytes} byte bound`);
  }
  return text;
}

/**
 * Parse a payload. A payload of another machine or payload version is refused, but what can be
 * salvaged (the brief and the caller) is returned so the call can go on from a fresh start.
 */
export function decodePayload(text: string): DecodedPayload | null {
  let parsed: Partial<HandoffPayload>;
  try {
    parsed = JSON.parse(text) as Partial<HandoffPayload>;
  } catch {
    return null;
  }
  if (parsed?.kind !== 'call-handoff') return null;
  const handoff = parsed.handoff ?? null;
  const caller = parsed.snapshot?.context?.caller ?? null;
  if (parsed.payloadVersion !== PAYLOAD_VERSION) {
    return { ok: false, reason: `payload version ${parsed.payloadVersion}`, handoff, caller };
  }
  if (parsed.machineVersion !== CALL_MACHINE_VERSION) {
    return {
      ok: false,
      reason: `machine version ${parsed.machineVersion}, this worker runs ${CALL_MACHINE_VERSION}`,
      handoff,
      caller,
    };
  }
  return { ok: true, payload: parsed as HandoffPayload };
}
