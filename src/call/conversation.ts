/**
 * The call's words as this leg knows them: the lines it was handed (dispatch or crash restore),
 * then what was said in this leg's session. Every hop carries the whole conversation on.
 *
 * An agent switched in receives the carried lines, then this leg's messages, the most recent
 * `historyItems` items: no instructions, tool calls, handoff markers, config updates or empty
 * messages (the next agent has its own instructions and tools). Built in one backward pass over
 * the session's history, which stops once enough items are found; the SDK's `copy()` +
 * `truncate()` walked and copied the whole history on every switch. Items are shared with the
 * history, as `copy()` shares them.
 */
import { llm, type voice } from '@livekit/agents';
import type { HistoryLine } from './handoffPayload.js';
import { historyLines, restoredChatContext } from './handover.js';

export class CallConversation {
  constructor(
    private readonly session: voice.AgentSession,
    /** The conversation before this leg. */
    private readonly carried: HistoryLine[],
    /** How many recent conversation items the next agent receives. */
    private readonly historyItems: number,
  ) {}

  /** The whole call's conversation as plain lines: what this leg was handed, then its own. */
  lines(): HistoryLine[] {
    return [...this.carried, ...historyLines(this.session.history)];
  }

  /** The conversation for an agent switched in here, the carried lines first. */
  soFar(): llm.ChatContext {
    return conversationFor(this.carried, this.session.history, this.historyItems);
  }

  /** The caller's last few lines (the keypad reads them for a handoff's reason). */
  recentCallerWords(count = 3): string[] {
    return this.lines()
      .filter((line) => line.role === 'user')
      .slice(-count)
      .map((line) => line.text);
  }
}

/** A leg's carried lines as chat items, made once per leg (the lines do not change). */
const carriedItems = new WeakMap<readonly HistoryLine[], llm.ChatItem[]>();

function itemsOf(carried: readonly HistoryLine[]): llm.ChatItem[] {
  let items = carriedItems.get(carried);
  if (!items) carriedItems.set(carried, (items = restoredChatContext([...carried]).items));
  return items;
}

/** What `copy({ excludeInstructions, excludeFunctionCall, excludeHandoff, ... })` would keep. */
function carriesOver(item: llm.ChatItem): boolean {
  switch (item.type) {
    case 'function_call':
    case 'function_call_output':
    case 'agent_handoff':
    case 'agent_config_update':
      return false;
    case 'message':
      return item.role !== 'system' && item.role !== 'developer' && item.content.length > 0;
    default:
      return true;
  }
}

/**
 * A fresh chat context for the next agent: `carried` (earlier legs), then `history` (this leg),
 * at most `limit` items (all of them when `limit` <= 0), oldest first.
 */
export function conversationFor(
  carried: readonly HistoryLine[],
  history: llm.ChatContext,
  limit: number,
): llm.ChatContext {
  const max = limit > 0 ? limit : Number.POSITIVE_INFINITY;
  const recent: llm.ChatItem[] = [];
  const here = history.items;
  for (let i = here.length - 1; i >= 0 && recent.length < max; i--) {
    if (carriesOver(here[i]!)) recent.push(here[i]!);
  }
  recent.reverse();
  if (recent.length < max && carried.length > 0) {
    const earlier = itemsOf(carried);
    const room = Math.min(earlier.length, max - recent.length);
    return new llm.ChatContext([...earlier.slice(earlier.length - room), ...recent]);
  }
  return new llm.ChatContext(recent);
}
