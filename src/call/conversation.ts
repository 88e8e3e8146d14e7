/**
 * The conversation an agent switched in receives: the lines carried from earlier legs, then this
 * leg's messages, the most recent `limit` items. No instructions, tool calls, handoff markers,
 * config updates or empty messages: the next agent has its own instructions and tools.
 *
 * Built in one backward pass over the session's history, which stops once `limit` items are
 * found; the SDK's `copy()` + `truncate()` walked and copied the whole history on every switch.
 * Items are shared with the history, as `copy()` shares them.
 */
import { llm } from '@livekit/agents';
import type { HistoryLine } from './handoffPayload.js';
import { restoredChatContext } from './handover.js';

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
