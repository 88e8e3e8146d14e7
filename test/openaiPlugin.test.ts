/**
 * The production model path: the real @livekit/agents-plugin-openai LLM, over HTTP, against a
 * local OpenAI-compatible server (streaming chat completions with tool calls).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createOpenAILLM } from '../src/models/index.js';
import { type OpenAICompatibleServer, startOpenAICompatibleServer } from './fakes/openaiServer.js';
import { call, scriptedBrain } from './fakes/model.js';
import { startTestCall } from './fakes/session.js';

let server: OpenAICompatibleServer;

beforeAll(async () => {
  server = await startOpenAICompatibleServer(
    scriptedBrain({
      'I was double charged': {
        text: 'Let me connect you with billing.',
        toolCalls: [
          call('pass_control_to_billing', {
            reason: 'double charge',
            summary: 'Charged twice on the May invoice.',
          }),
        ],
      },
      'my app crashes too': {
        toolCalls: [
          call('pass_control_to_support', { reason: 'app crash', summary: 'App crashes.' }),
        ],
      },
      goodbye: { toolCalls: [call('end_call', { reason: 'caller said goodbye' })] },
    }),
  );
});
afterAll(() => server.close());

describe('OpenAI plugin against a local OpenAI-compatible server', () => {
  it('streams text and tool calls through the real plugin and hands off billing -> support -> end', async () => {
    const config = loadConfig({ OPENAI_BASE_URL: server.url, OPENAI_LLM_MODEL: 'test-model' });
    const c = await startTestCall({
      llm: createOpenAILLM(config),
      caller: { number: '+14155550123' },
    });

    await c.say('I was double charged');
    expect(c.bridge.state).toBe('billing');
    expect(c.said('reception')).toContain('Let me connect you with billing.');
    expect(c.said('billing')).toEqual(['billing here, about double charge.']);

    await c.say('my app crashes too');
    expect(c.bridge.state).toBe('support');
    await c.say('goodbye');
    const end = await c.bridge.done;
    expect(end.reason).toBe('caller said goodbye');
    expect(c.agents()).toEqual(['reception', 'billing', 'support']);

    // What went over the wire: the model, streaming, the tool schema, and the billing brief.
    const first = server.requests[0]!;
    expect(first.model).toBe('test-model');
    expect(first.stream).toBe(true);
    expect(first.tools?.map((t) => t.function.name).sort()).toEqual([
      'end_call',
      'pass_control_to_billing',
      'pass_control_to_sales',
      'pass_control_to_support',
    ]);
    const billingFirst = server.requests.find((r) =>
      JSON.stringify(r.messages).includes('You are the billing specialist'),
    )!;
    const system = billingFirst.messages.find((m) => m.role === 'system' || m.role === 'developer');
    expect(system?.content).toContain('Reason: double charge');
    expect(system?.content).toContain('Caller number: +14155550123');
    expect(billingFirst.messages).toContainEqual(
      expect.objectContaining({ role: 'user', content: 'I was double charged' }),
    );
    // Reception's tool call is not carried over as a dangling call without its result.
    expect(JSON.stringify(billingFirst.messages)).not.toContain('tool_calls');
  });
});
