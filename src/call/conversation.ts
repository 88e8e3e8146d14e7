/**
 * The call's words as this leg knows them: the lines it was handed (dispatch or crash restore),
 * then what was said in this leg's session. Every hop carries the whole conversation on.
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
    const here = this.session.history.copy({
      excludeInstructions: true,
      excludeFunctionCall: true,
      excludeHandoff: true,
      excludeConfigUpdate: true,
      excludeEmptyMessage: true,
    });
    return new llm.ChatContext([
      ...restoredChatContext(this.carried).items,
      ...here.items,
    ]).truncate(this.historyItems);
  }

  /** The caller's last few lines (the keypad reads them for a handoff's reason). */
  recentCallerWords(count = 3): string[] {
    return this.lines()
      .filter((line) => line.role === 'user')
      .slice(-count)
      .map((line) => line.text);
  }
}
