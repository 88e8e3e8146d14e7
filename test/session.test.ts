/**
 * The production agents, tools and bridge on a room-less AgentSession, driven by the shared
 * scripted model. Each test checks machine state, the agent actually speaking, and what the
 * model was sent.
 */
import { llm, voice } from '@livekit/agents';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DEFAULT_FLOW, departmentsOf } from '../machines/flow.js';
import { CallBridge } from '../src/call/bridge.js';
import { ScriptedLLM } from '../src/models/scriptedLlm.js';
import { call, handoffTo, scriptedBrain } from './fakes/model.js';
import { startTestCall, mergeObservers } from './fakes/session.js';
import { trackUnhandledRejections } from './support.js';

const rejections = trackUnhandledRejections();
afterAll(() => {
  rejections.stop();
  expect(rejections.errors).toEqual([]);
});

const CALLER_WORDS = 'I was charged twice for my March invoice, order 4417';

describe('greeting and intent', () => {
  it('greets as reception, then listens', async () => {
    const c = await startTestCall();
    expect(c.bridge.state).toBe('intent');
    expect(c.agents()).toEqual(['reception']);
    expect(c.said('reception')[0]).toMatch(/Thank you for calling Acme/);
    expect(c.events.find((e) => e.type === 'transition')).toEqual({
      type: 'transition',
      from: 'greeting',
      to: 'intent',
      event: 'greeting.spoken',
    });
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it.each(departmentsOf(DEFAULT_FLOW))(
    'hands the caller from reception to %s, which speaks next',
    async (department) => {
      const c = await startTestCall({
        script: { [CALLER_WORDS]: { toolCalls: [handoffTo(department, `${department} help`)] } },
      });
      const result = await c.say(CALLER_WORDS);

      result.expect.containsFunctionCall({ name: `pass_control_to_${department}` });
      result.expect.containsAgentHandoff();
      expect(c.bridge.state).toBe(department);
      expect(c.bridge.speakingAgent).toBe(department);
      expect(c.agents()).toEqual(['reception', department]);
      // The specialist's first words acknowledge the reason, with no extra reception turn between.
      expect(c.said(department)).toEqual([`${department} here, about ${department} help.`]);
      // The greeting, then the bridge line in reception's voice at once; nothing else.
      expect(c.said('reception').slice(1)).toEqual([
        `One moment, I'm connecting you to our ${department} team.`,
      ]);
      // The bridge line is heard before the specialist comes on.
      const kinds = c.events
        .filter((e) => (e.type === 'say' && e.agent === 'reception') || e.type === 'agent')
        .map((e) => (e.type === 'agent' ? e.agent : 'reception says'));
      expect(kinds).toEqual(['reception', 'reception says', 'reception says', department]);
      const log = c.bridge.actor.getSnapshot().context.handoffs;
      expect(log).toMatchObject([
        { from: 'reception', to: department, reason: `${department} help` },
      ]);
      c.bridge.callerHungUp();
      await c.bridge.done;
    },
  );
});

describe('the specialist’s first model request', () => {
  it('carries the caller’s words, the brief and the caller number, without reception’s instructions', async () => {
    const c = await startTestCall({
      caller: { number: '+919812345678' },
      script: {
        [CALLER_WORDS]: {
          toolCalls: [
            call('pass_control_to_billing', {
              reason: 'duplicate charge',
              summary: 'Charged twice for the March invoice, order 4417.',
            }),
          ],
        },
      },
    });
    await c.say(CALLER_WORDS);
    const model = c.model as ScriptedLLM;
    const first = model.requests.find((r) =>
      r.instructions.includes('You are the billing specialist'),
    );
    expect(first).toBeDefined();
    expect(first!.messages).toContainEqual({ role: 'user', text: CALLER_WORDS });
    expect(first!.instructions).toContain('Reason: duplicate charge');
    expect(first!.instructions).toContain(
      'Summary: Charged twice for the March invoice, order 4417.',
    );
    expect(first!.instructions).toContain('Caller number: +919812345678');
    expect(first!.instructions).toContain('Never ask the caller to repeat');
    expect(first!.instructions).not.toContain('You are the receptionist');
    expect(first!.tools).toContain('return_to_reception');
    // Exactly one model call by reception for that turn: the handoff cost no extra turn.
    const receptionCalls = model.requests.filter((r) =>
      r.instructions.includes('You are the receptionist'),
    );
    expect(receptionCalls).toHaveLength(1);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });
});

describe('moving between agents', () => {
  it('goes specialist to specialist, then back to reception, then ends', async () => {
    const c = await startTestCall({
      script: {
        'billing please': { toolCalls: [handoffTo('billing')] },
        'actually my router is broken': { toolCalls: [handoffTo('support', 'broken router')] },
        'something else entirely': {
          toolCalls: [call('return_to_reception', { reason: 'other', summary: 'Not support.' })],
        },
        bye: { toolCalls: [call('end_call', { reason: 'caller done' })] },
      },
    });
    await c.say('billing please');
    await c.say('actually my router is broken');
    expect(c.bridge.state).toBe('support');
    await c.say('something else entirely');
    expect(c.bridge.state).toBe('intent');
    expect(c.bridge.speakingAgent).toBe('reception');
    expect(c.said('reception').at(-1)).toBe('reception here, about other.');
    await c.say('bye');
    const end = await c.bridge.done;
    expect(end.reason).toBe('caller done');
    expect(c.agents()).toEqual(['reception', 'billing', 'support', 'reception']);
    expect(end.context.handoffs.map((h) => `${h.from}>${h.to}`)).toEqual([
      'reception>billing',
      'billing>support',
      'support>reception',
    ]);
    expect(c.said('reception').at(-1)).toMatch(/Goodbye/);
    expect(c.events.at(-1)).toEqual({ type: 'end', reason: 'caller done' });
  });
});

describe('refusals', () => {
  it('refuses a handoff at the cap; the agent stays and tells the caller', async () => {
    const c = await startTestCall({
      maxHandoffs: 1,
      script: {
        'billing please': { toolCalls: [handoffTo('billing')] },
        'and sales': { toolCalls: [handoffTo('sales')] },
      },
    });
    await c.say('billing please');
    const result = await c.say('and sales');
    // An expected refusal is the tool's answer, not an error (nothing logged at ERROR).
    result.expect.containsFunctionCallOutput({ isError: false });
    expect(c.bridge.state).toBe('billing');
    expect(c.bridge.speakingAgent).toBe('billing');
    expect(c.said('billing').at(-1)).toMatch(
      /I can't transfer you again, but I can help with billing/,
    );
    expect(c.events).toContainEqual({ type: 'refusal', code: 'handoff-cap', to: 'sales' });
    expect(c.agents()).toEqual(['reception', 'billing']);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('refuses a handoff to the department already active: not offered as a tool, refused on the keypad', async () => {
    const c = await startTestCall({
      keypad: { '1': 'billing' },
      script: {
        'billing please': { toolCalls: [handoffTo('billing')] },
        'more billing': { toolCalls: [handoffTo('billing')] },
      },
    });
    await c.say('billing please');
    // A model that calls the tool anyway gets the SDK's unknown-tool answer: nothing reaches the
    // machine, and no model turn is spent on a refusal.
    await c.say('more billing');
    expect(c.bridge.state).toBe('billing');
    expect(c.events.filter((e) => e.type === 'refusal')).toEqual([]);
    // The guard stays as a defence: the keypad can still ask, and is refused aloud.
    expect(c.bridge.keypad('1')).toMatchObject({ accepted: false, code: 'same-department' });
    await c.bridge.settled();
    expect(c.events).toContainEqual({ type: 'refusal', code: 'same-department', to: 'billing' });
    expect(c.said('billing').at(-1)).toMatch(/You're in the right place/);
    expect(c.agents()).toEqual(['reception', 'billing']);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });
});

describe('batched tool calls (upstream drops these handoffs)', () => {
  const noteTool = () =>
    llm.tool({
      name: 'note_mood',
      description: 'Note the caller mood.',
      parameters: z.object({ mood: z.string() }),
      execute: async ({ mood }) => `noted ${mood}`,
    });

  it.each([
    ['handoff first', [handoffTo('billing'), call('note_mood', { mood: 'upset' })]],
    ['handoff last', [call('note_mood', { mood: 'upset' }), handoffTo('billing')]],
  ])('keeps the handoff when the model batches it with another tool (%s)', async (_, toolCalls) => {
    const c = await startTestCall({
      extraTools: (agent) => (agent === 'reception' ? [noteTool()] : []),
      script: { 'charged twice': { toolCalls } },
    });
    await c.say('charged twice');
    expect(c.bridge.state).toBe('billing');
    expect(c.bridge.speakingAgent).toBe('billing');
    expect(c.agents()).toEqual(['reception', 'billing']);
    // Reception does not answer the other tool's result: no extra model call, no extra voice.
    const model = c.model as ScriptedLLM;
    expect(model.requests.filter((r) => r.instructions.includes('receptionist'))).toHaveLength(1);
    expect(c.said('reception')).toHaveLength(2); // the greeting and the bridge line
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('drops the result of a business tool that finishes after the handoff (no reply asked, realtime too)', async () => {
    let release!: () => void;
    const slow = llm.tool({
      name: 'lookup_invoice',
      description: 'Look up an invoice.',
      parameters: z.object({ id: z.string() }),
      execute: async ({ id }) => {
        await new Promise<void>((resolve) => (release = resolve));
        return `invoice ${id}: 40 dollars`;
      },
    });
    const c = await startTestCall({
      extraTools: (agent) => (agent === 'reception' ? [slow] : []),
      script: {
        'invoice 4417': {
          toolCalls: [call('lookup_invoice', { id: '4417' }), handoffTo('billing')],
        },
      },
    });
    const run = c.say('invoice 4417');
    await c.until(() => c.bridge.state === 'billing', 'the handoff');
    release();
    const result = await run;
    const output = result.events.find(
      (e) => e.type === 'function_call_output' && e.item.name === 'lookup_invoice',
    );
    expect((output?.item as { output?: string } | undefined)?.output).toBe('');
    expect(c.said('reception')).toHaveLength(2); // the greeting and the bridge line
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('gives exactly one handoff for two conflicting ones, the first accepted', async () => {
    const c = await startTestCall({
      script: { 'money and a purchase': { toolCalls: [handoffTo('billing'), handoffTo('sales')] } },
    });
    await c.say('money and a purchase');
    expect(c.bridge.state).toBe('billing');
    expect(c.agents()).toEqual(['reception', 'billing']);
    const context = c.bridge.actor.getSnapshot().context;
    expect(context.handoffs.map((h) => h.to)).toEqual(['billing']);
    expect(context.refusals).toMatchObject([{ code: 'one-per-turn', to: 'sales' }]);
    // The losing call is silent: reception says only the bridge line after the handoff.
    expect(c.said('reception')).toEqual([
      expect.stringContaining('Thank you for calling'),
      "One moment, I'm connecting you to our billing team.",
    ]);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('refuses an end_call batched after an accepted handoff', async () => {
    const c = await startTestCall({
      script: { 'sales and bye': { toolCalls: [handoffTo('sales'), call('end_call', {})] } },
    });
    await c.say('sales and bye');
    expect(c.bridge.state).toBe('sales');
    expect(c.bridge.speakingAgent).toBe('sales');
    c.bridge.callerHungUp();
    await c.bridge.done;
  });
});

describe('hang-ups', () => {
  it('activates no agent when the caller hangs up as the handoff is accepted', async () => {
    const live: { session?: voice.AgentSession } = {};
    const c = await startTestCall({
      script: { 'billing please': { toolCalls: [handoffTo('billing')] } },
      observer: {
        // The disconnect arrives exactly between the machine's decision and the agent switch.
        transition: ({ to }) => {
          if (to === 'billing') {
            live.session!.shutdown({
              drain: false,
              reason: voice.CloseReason.PARTICIPANT_DISCONNECTED,
            });
          }
        },
      },
    });
    live.session = c.session;
    await c.say('billing please').catch(() => undefined);
    const end = await c.bridge.done;
    expect(end.reason).toBe('caller-hung-up');
    expect(c.bridge.state).toBe('ended');
    expect(c.agents()).toEqual(['reception']);
    const model = c.model as ScriptedLLM;
    expect(model.requests.some((r) => r.instructions.includes('billing specialist'))).toBe(false);
    expect(c.said('reception').some((t) => /Goodbye/.test(t))).toBe(false);
  });

  it('ends cleanly when the caller hangs up while the specialist’s first reply is being generated', async () => {
    let hangUp: () => void = () => {};
    const c = await startTestCall({
      script: { 'billing please': { toolCalls: [handoffTo('billing')] } },
      observer: { agent: (agent) => agent === 'billing' && hangUp() },
    });
    hangUp = () => c.bridge.callerHungUp();
    await c.say('billing please').catch(() => undefined);
    const end = await c.bridge.done;
    expect(end.reason).toBe('caller-hung-up');
    expect(c.events.filter((e) => e.type === 'end')).toHaveLength(1);
    expect(c.agents()).toEqual(['reception', 'billing']);
  });

  it('turns a session closed by a participant disconnect into caller.hungUp', async () => {
    const c = await startTestCall();
    c.session.shutdown({ drain: false, reason: voice.CloseReason.PARTICIPANT_DISCONNECTED });
    const end = await c.bridge.done;
    expect(end.reason).toBe('caller-hung-up');
    expect(c.bridge.state).toBe('ended');
  });

  it('answers a tool call batched after an accepted end with silence, not an error', async () => {
    const c = await startTestCall({
      script: { 'bye, and billing': { toolCalls: [call('end_call', {}), handoffTo('billing')] } },
    });
    const result = await c.say('bye, and billing').catch(() => undefined);
    const end = await c.bridge.done;
    expect(end.reason).toBe('caller is done');
    expect(c.agents()).toEqual(['reception']);
    // The late handoff got no error output and no reply: the goodbye is the last thing said.
    expect(result, 'the run result').toBeDefined();
    const outputs = result!.events.filter((e) => e.type === 'function_call_output');
    // Both tool calls got an output (an empty list would make the check below pass vacuously).
    expect(outputs).toHaveLength(2);
    expect(outputs.map((e) => (e.item as { isError?: boolean }).isError)).toEqual([false, false]);
    expect(c.said('reception').at(-1)).toMatch(/Goodbye/);
    expect(c.said('reception').some((t) => t.startsWith('Sorry'))).toBe(false);
  });

  it('ends cleanly when the caller hangs up before the call could start', async () => {
    const session = new voice.AgentSession({ llm: new ScriptedLLM(scriptedBrain()) });
    const bridge = new CallBridge({ session, companyName: 'Acme', maxHandoffs: 4 });
    bridge.callerHungUp();
    expect((await bridge.done).reason).toBe('caller-hung-up');
    await bridge.start(); // too late: nothing starts
    expect(() => session.say('hello?')).toThrow(/not running/);
  });

  it('answers a request after the end with a call-ended decision', async () => {
    const c = await startTestCall();
    c.bridge.callerHungUp();
    await c.bridge.done;
    expect(
      c.bridge.request({
        type: 'handoff.requested',
        department: 'sales',
        reason: 'r',
        summary: 's',
      }),
    ).toMatchObject({ accepted: false, code: 'call-ended' });
  });
});

describe('tools from the machine', () => {
  it('offers each agent exactly the control tools its state accepts (billing: no handoff to billing)', async () => {
    const c = await startTestCall({
      script: { [CALLER_WORDS]: { toolCalls: [handoffTo('billing')] } },
    });
    const tools = () => Object.keys(c.session.currentAgent.toolCtx.functionTools).sort();
    expect(tools()).toEqual([
      'end_call',
      'pass_control_to_billing',
      'pass_control_to_sales',
      'pass_control_to_support',
    ]);
    await c.say(CALLER_WORDS);
    await c.until(() => c.bridge.speakingAgent === 'billing', 'billing');
    expect(tools()).toEqual([
      'end_call',
      'pass_control_to_sales',
      'pass_control_to_support',
      'return_to_reception',
    ]);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('shares tools between calls, each request reaching its own call', async () => {
    const first = await startTestCall({
      script: { [CALLER_WORDS]: { toolCalls: [handoffTo('billing')] } },
    });
    const second = await startTestCall({
      script: { [CALLER_WORDS]: { toolCalls: [handoffTo('support')] } },
    });
    const handoffTool = (c: typeof first) =>
      c.session.currentAgent.toolCtx.functionTools['pass_control_to_billing'];
    // One definition for both calls (built once per process, not per call).
    expect(handoffTool(first)).toBe(handoffTool(second));
    await second.say(CALLER_WORDS);
    await second.until(() => second.bridge.speakingAgent === 'support', 'support');
    // The other call did not move: its machine never saw the second call's request.
    expect(first.bridge.state).toBe('intent');
    await first.say(CALLER_WORDS);
    await first.until(() => first.bridge.speakingAgent === 'billing', 'billing');
    expect(second.bridge.state).toBe('support');
    for (const c of [first, second]) {
      c.bridge.callerHungUp();
      await c.bridge.done;
    }
  });
});

describe('the shared fakes', () => {
  it('merge observers so that a kind only the caller listens to (keypad) is heard too', () => {
    const heard: string[] = [];
    const merged = mergeObservers(
      { say: () => heard.push('say') },
      { keypad: (d) => heard.push(`key ${d}`) },
    );
    merged.say?.('reception', 'hi');
    merged.keypad?.('1');
    expect(heard).toEqual(['say', 'key 1']);
  });
});
