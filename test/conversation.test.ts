import { llm } from '@livekit/agents';
import { describe, expect, it } from 'vitest';
import { conversationFor } from '../src/call/conversation.js';

/** A leg's history as the session keeps it: instructions, tool calls and handoffs included. */
function history(): llm.ChatContext {
  const ctx = llm.ChatContext.empty();
  ctx.addMessage({ role: 'system', content: 'You are the receptionist.' });
  ctx.addMessage({ role: 'user', content: 'I was charged twice' });
  ctx.items.push(
    llm.FunctionCall.create({ callId: 'c1', name: 'pass_control_to_billing', args: '{}' }),
    llm.FunctionCallOutput.create({ callId: 'c1', output: '', isError: false }),
    llm.AgentHandoffItem.create({ oldAgentId: 'reception', newAgentId: 'billing' }),
  );
  ctx.addMessage({ role: 'assistant', content: [] }); // an empty turn
  ctx.addMessage({ role: 'assistant', content: 'Hi, this is billing.' });
  ctx.addMessage({ role: 'user', content: 'The amount was 40 dollars' });
  return ctx;
}

const texts = (ctx: llm.ChatContext) =>
  ctx.items.map((item) =>
    item.type === 'message' ? `${item.role}: ${item.textContent}` : item.type,
  );

describe('the conversation an agent switched in receives', () => {
  it('keeps the words only: no instructions, tool calls, handoff markers or empty messages', () => {
    expect(texts(conversationFor([], history(), 40))).toEqual([
      'user: I was charged twice',
      'assistant: Hi, this is billing.',
      'user: The amount was 40 dollars',
    ]);
  });

  it('puts the lines carried from earlier legs first', () => {
    const carried = [{ role: 'user' as const, text: 'Hello' }];
    expect(texts(conversationFor(carried, history(), 0))).toEqual([
      'user: Hello',
      'user: I was charged twice',
      'assistant: Hi, this is billing.',
      'user: The amount was 40 dollars',
    ]);
  });

  it('keeps the most recent items within the limit, dropping the oldest (carried first)', () => {
    const carried = [
      { role: 'user' as const, text: 'Hello' },
      { role: 'assistant' as const, text: 'Hi there' },
    ];
    expect(texts(conversationFor(carried, history(), 4))).toEqual([
      'assistant: Hi there',
      'user: I was charged twice',
      'assistant: Hi, this is billing.',
      'user: The amount was 40 dollars',
    ]);
    expect(texts(conversationFor(carried, history(), 2))).toEqual([
      'assistant: Hi, this is billing.',
      'user: The amount was 40 dollars',
    ]);
  });

  it('gives each agent a context of its own: the history is not changed', () => {
    const leg = history();
    const before = leg.items.length;
    const ctx = conversationFor([], leg, 40);
    ctx.addMessage({ role: 'user', content: 'more' });
    expect(leg.items).toHaveLength(before);
  });
});
