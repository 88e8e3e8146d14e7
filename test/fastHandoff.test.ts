/**
 * HANDOFF_OPENING=brief on the production bridge (room-less session, scripted model): the
 * specialist's first words are the sentence built from the decision, with no bridge line before
 * them, and its first model request asks it to continue after that sentence with the brief.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { CONTINUATION_PREFIX, briefOpeningLine } from '../src/call/fastHandoff.js';
import { LINES } from '../src/call/lines.js';
import type { ScriptedLLM } from '../src/models/scriptedLlm.js';
import { call } from './fakes/model.js';
import { startTestCall } from './fakes/session.js';
import { trackUnhandledRejections } from './support.js';

const rejections = trackUnhandledRejections();
afterAll(() => {
  rejections.stop();
  expect(rejections.errors).toEqual([]);
});

const CALLER_WORDS = 'I was charged twice for my March invoice';
const HANDOFF = {
  reason: 'a duplicate charge on the March invoice',
  summary: 'Charged twice for the March invoice.',
};

async function handOffWith(opening: 'model' | 'brief') {
  const c = await startTestCall({
    opening,
    script: { [CALLER_WORDS]: { toolCalls: [call('pass_control_to_billing', HANDOFF)] } },
  });
  await c.say(CALLER_WORDS);
  await c.until(() => c.said('billing').length > 0);
  return c;
}

describe('HANDOFF_OPENING=brief', () => {
  it('speaks the decision’s sentence in the specialist’s turn first, with no bridge line', async () => {
    const c = await handOffWith('brief');
    const line = briefOpeningLine('billing', {
      ...HANDOFF,
      from: 'reception',
      to: 'billing',
      at: 0,
    });
    expect(line).toContain(HANDOFF.reason);
    expect(c.said('billing')[0]).toBe(line);
    expect(c.said('reception')).not.toContain(LINES.bridge('billing'));
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('asks the specialist’s model to continue after that sentence, with the brief', async () => {
    const c = await handOffWith('brief');
    const model = c.model as ScriptedLLM;
    const first = model.requests.find((r) => r.instructions.includes('You are the billing'));
    expect(first?.instructions).toContain(CONTINUATION_PREFIX);
    expect(first?.instructions).toContain(`Reason: ${HANDOFF.reason}`);
    expect(first?.messages).toContainEqual({ role: 'user', text: CALLER_WORDS });
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('keeps the bridge line and the model’s opening by default', async () => {
    const c = await handOffWith('model');
    expect(c.said('reception')).toContain(LINES.bridge('billing'));
    const model = c.model as ScriptedLLM;
    const first = model.requests.find((r) => r.instructions.includes('You are the billing'));
    expect(first?.instructions).not.toContain(CONTINUATION_PREFIX);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });
});
