/**
 * Moving a call between processes: dispatch-mode handoffs (the payload goes to the department's
 * worker) and crash recovery (the latest snapshot is kept in the room). The bridge uses these;
 * the worker and the console provide the transports.
 */
import { llm } from '@livekit/agents';
import { getInitialSnapshot } from 'xstate';
import {
  type AgentName,
  type CallInput,
  type HandoffRecord,
  machineFor,
} from '../../machines/callMachine.js';
import { DEFAULT_FLOW, type Flow } from '../../machines/flow.js';
import { type HistoryLine, decodePayload } from './handoffPayload.js';

/**
 * Sends the payload to `to`'s worker and waits until it is ready in the room (or gave up).
 * `signal` aborts when the call ends meanwhile: the dispatch is then withdrawn.
 */
export interface HandoverTransport {
  handOver(payload: string, to: AgentName, signal?: AbortSignal): Promise<'joined' | 'timeout'>;
  /**
   * How long `handOver` waits for the next agent's first words (`HANDOFF_JOIN_TIMEOUT_MS`). When
   * set, the payload tells the next agent the same deadline (less JOIN_GRACE_MS), so one that is
   * still silent then leaves instead of talking over the fallback.
   */
  readonly joinTimeoutMs?: number;
}

/** Time left for the "ready" signal to reach the previous worker after the deadline's words. */
export const JOIN_GRACE_MS = 500;

/** The epoch milliseconds by which the next agent must have spoken, for a wait of `timeoutMs`. */
export function joinDeadline(timeoutMs: number, now = Date.now()): number {
  return now + Math.max(timeoutMs - JOIN_GRACE_MS, timeoutMs / 2);
}

/** Where the latest snapshot lives outside the process (room metadata on a live call). */
export interface SnapshotStore {
  /**
   * Called on every state change and every line; `ended` once the call is over (the store may
   * clear it). `encode` gives the latest payload, or null once the call has moved elsewhere:
   * a store calls it only for what it writes, so a burst of changes costs one encoding (and one
   * sealing), not one per change, and none on the path of the event that made the change.
   */
  save(encode: () => string | null, ended: boolean): void;
}

export interface RestorePoint {
  /** A persisted snapshot of the call machine. */
  snapshot: unknown;
  /** The handoff that brought the call here, for the brief and the first words. */
  handoff: HandoffRecord | null;
  history: HistoryLine[];
  /** True when resuming after a crash: the agent picks up instead of greeting. */
  resumed: boolean;
  /** Dispatch mode: epoch milliseconds by which this agent must have spoken, or leave. */
  joinBy?: number;
}

/** The conversation as plain lines, without instructions, tool calls or handoff markers. */
export function historyLines(history: llm.ChatContext): HistoryLine[] {
  const lines: HistoryLine[] = [];
  for (const item of history.items) {
    if (item.type !== 'message') continue;
    if (item.role !== 'user' && item.role !== 'assistant') continue;
    const text = item.textContent ?? '';
    if (text) lines.push({ role: item.role, text });
  }
  return lines;
}

export function restoredChatContext(lines: HistoryLine[]): llm.ChatContext {
  const chatCtx = llm.ChatContext.empty();
  for (const line of lines) chatCtx.addMessage({ role: line.role, content: line.text });
  return chatCtx;
}

export type Restoration =
  { ok: true; restore: RestorePoint } | { ok: false; reason: string; restore: RestorePoint };

/**
 * A restore point from a payload. A payload this worker cannot restore (another machine or
 * payload version) still gives a call: a fresh machine listening in `intent`, with the brief
 * handed to reception, so the caller is not greeted from scratch or dropped.
 */
export function restoreFromPayload(
  text: string,
  resumed: boolean,
  input: CallInput,
  flow: Flow = DEFAULT_FLOW,
): Restoration | null {
  const machine = machineFor(flow);
  const decoded = decodePayload(text, flow);
  if (!decoded) return null;
  if (decoded.ok) {
    const { snapshot, handoff, history, joinBy } = decoded.payload;
    return {
      ok: true,
      restore: { snapshot, handoff, history, resumed, ...(joinBy !== undefined ? { joinBy } : {}) },
    };
  }
  const fresh = machine.resolveState({
    value: { reception: 'intent' },
    context: {
      ...getInitialSnapshot(machine, input).context,
      started: true,
      caller: decoded.caller,
    },
  });
  const handoff = decoded.handoff && { ...decoded.handoff, to: 'reception' as const };
  return {
    ok: false,
    reason: decoded.reason,
    restore: {
      snapshot: machine.getPersistedSnapshot(fresh),
      handoff,
      history: [],
      resumed,
      ...(decoded.joinBy !== undefined ? { joinBy: decoded.joinBy } : {}),
    },
  };
}
