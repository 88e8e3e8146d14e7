/**
 * One declaration of the flow: a fourth department ("returns") added as one entry reaches the
 * machine, the agents' prompts, the tools, the keypad, the settings, the offline model, the
 * greeting and the generated path suite, with nothing else edited.
 */
import { getInitialSnapshot, getNextSnapshot } from 'xstate';
import { afterAll, describe, expect, it } from 'vitest';
import { machineFor } from '../machines/callMachine.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_FLOW, type Flow, defineFlow, transferSetting } from '../machines/flow.js';
import { offersFor } from '../machines/offers.js';
import { ConsoleCall } from '../src/call/consoleCall.js';
import { loadConfig } from '../src/config.js';
import { LINES, instructionsFor } from '../src/call/lines.js';
import { createOfflineLLM } from '../src/models/index.js';
import { createLogger } from '../src/logging.js';
import { createPathModel } from './pathModel.js';
import { PathRun } from './pathRunner.js';
import { startTestCall } from './fakes/session.js';

const RETURNS = {
  name: 'returns',
  handles: 'returns, exchanges and parcels sent back',
  spoken: 'returns',
  role: 'You are the returns specialist. You arrange returns and exchanges and track parcels sent back.',
  voice: 'coral',
  key: '4',
  offline: {
    listensFor: /\b(return(ing)?|send (it )?back|exchange|parcel)\b/i,
    topic: 'a return',
    answer: 'I have sent a free return label to your email. Is there anything else?',
  },
} as const;

const WITH_RETURNS: Flow = defineFlow({
  ...DEFAULT_FLOW,
  departments: [...DEFAULT_FLOW.departments, RETURNS],
});

describe('a department added as one entry of the flow', () => {
  it('gets a machine state that reception and every specialist can hand off to', () => {
    const machine = machineFor(WITH_RETURNS);
    expect(Object.keys(machine.root.states)).toContain('returns');
    let snapshot = getInitialSnapshot(machine, {});
    snapshot = getNextSnapshot(machine, snapshot, { type: 'call.started' });
    const request = { reason: 'a return', summary: 'wants to send a parcel back' };
    const toReturns = getNextSnapshot(machine, snapshot, {
      type: 'handoff.requested',
      department: 'returns',
      ...request,
    });
    expect(toReturns.value).toBe('returns');
    const toBilling = getNextSnapshot(machine, toReturns, {
      type: 'handoff.requested',
      department: 'billing',
      ...request,
    });
    expect(toBilling.value).toBe('billing');
    // The default flow's machine knows nothing of it.
    expect(Object.keys(machineFor(DEFAULT_FLOW).root.states)).not.toContain('returns');
  });

  it('is offered as a tool to every other agent and never to itself', () => {
    const offers = offersFor({}, WITH_RETURNS);
    const handoffs = (agent: string) =>
      offers[agent]!.flatMap((o) => (o.kind === 'handoff' ? [o.department] : []));
    expect(handoffs('reception')).toEqual(['billing', 'support', 'sales', 'returns']);
    expect(handoffs('billing')).toContain('returns');
    expect(handoffs('returns')).toEqual(['billing', 'support', 'sales']);
  });

  it('reaches the prompts, the greeting, the keypad and the settings', () => {
    expect(instructionsFor(WITH_RETURNS, 'reception', 'Acme')).toContain(
      'returns (returns, exchanges and parcels sent back)',
    );
    expect(instructionsFor(WITH_RETURNS, 'returns', 'Acme')).toContain(RETURNS.role);
    expect(LINES.greeting('Acme', WITH_RETURNS)).toContain(
      'billing, technical support, sales or returns',
    );
    const config = loadConfig({ TRANSFER_RETURNS: '+15550100999' }, WITH_RETURNS);
    expect(config.telephony.keypad).toMatchObject({ '4': 'returns', '0': 'human' });
    expect(config.telephony.humanNumbers).toEqual({ returns: '+15550100999' });
    expect(config.models.voices.returns).toBe('coral');
    expect(loadConfig({ VOICE_RETURNS: 'ash' }, WITH_RETURNS).models.voices.returns).toBe('ash');
    expect(() => loadConfig({ TRANSFER_RETURNS: '12345' }, WITH_RETURNS)).toThrow(
      /^Invalid TRANSFER_RETURNS: /,
    );
    // The default flow's settings do not know it.
    expect(loadConfig({ TRANSFER_RETURNS: '+15550100999' }).telephony.humanNumbers).toEqual({});
  });

  it('the default flow: each department has its TRANSFER_ line in .env.example', () => {
    const example = readFileSync(join(import.meta.dirname, '..', '.env.example'), 'utf8');
    for (const { name } of DEFAULT_FLOW.departments) {
      expect(example).toMatch(new RegExp(`^${transferSetting(name)}=`, 'm'));
    }
  });

  it('refuses a declaration that cannot work, in one line naming the entry', () => {
    const clash = { ...RETURNS, key: '1' };
    expect(() =>
      defineFlow({ ...DEFAULT_FLOW, departments: [...DEFAULT_FLOW.departments, clash] }),
    ).toThrow('Department "returns": key 1 is already billing\'s.');
    expect(() =>
      defineFlow({ ...DEFAULT_FLOW, departments: [{ ...RETURNS, name: 'Returns Desk' }] }),
    ).toThrow(/^Department "Returns Desk": a name is one lowercase word/);
    expect(() => defineFlow({ ...DEFAULT_FLOW, departments: [] })).toThrow(/no departments/);
  });

  it('runs a console call: the offline model hears it, the keypad reaches it', async () => {
    const config = loadConfig({}, WITH_RETURNS);
    const said: { agent: string; text: string }[] = [];
    const states: string[] = [];
    const call = new ConsoleCall({
      flow: config.flow,
      createModel: () => createOfflineLLM(config.flow),
      reply: config.reply,
      companyName: config.companyName,
      maxHandoffs: config.maxHandoffs,
      logger: createLogger({ level: 'silent', pii: false, destination: 'stderr' }),
      observer: {
        say: (agent, text) => said.push({ agent, text }),
        transition: ({ to }) => states.push(to),
      },
      handoffMode: 'in-process',
      keypad: config.telephony.keypad,
      joinTimeoutMs: config.handoff.joinTimeoutMs,
    });
    await call.start();
    expect(said[0]?.text).toContain('billing, technical support, sales or returns');
    await call.say('hi, I want to send back a parcel');
    await call.say('[1]');
    await call.say('[4]');
    await call.say('thanks, goodbye');
    const end = await call.done;
    expect(states).toEqual(['intent', 'returns', 'billing', 'returns', 'ended']);
    expect(said.find((s) => s.agent === 'returns')?.text).toMatch(
      /returns team.*free return label/,
    );
    expect(end.reason).toBe('caller said goodbye');
    await call.close();
  });

  it('is answered by its own agent, offered only the tools its state accepts', async () => {
    const model = createOfflineLLM(WITH_RETURNS);
    const c = await startTestCall({ flow: WITH_RETURNS, llm: model });
    await c.say('I would like to return my order');
    await c.until(() => c.bridge.speakingAgent === 'returns', 'returns on the line');
    await c.bridge.settled();
    const fromReturns = model.requests.at(-1)!;
    expect(fromReturns.tools.sort()).toEqual(
      [
        'end_call',
        'pass_control_to_billing',
        'pass_control_to_sales',
        'pass_control_to_support',
        'return_to_reception',
      ].sort(),
    );
    expect(c.said('returns').at(-1)).toMatch(/returns team.*free return label/);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });
});

describe('the whole path suite over a flow with a fourth department', () => {
  const model = createPathModel(WITH_RETURNS);
  const paths = model.generatePaths();
  const covered = new Set<string>();

  it.concurrent.each(paths.map((path) => [path.target, path]))('%s', async (_, path) => {
    const run = new PathRun(path.input, WITH_RETURNS);
    await run.run(path.steps);
    for (const step of path.steps) covered.add(step.transition);
  });

  afterAll(() => {
    const missing = model.allTransitionKeys().filter((t) => !covered.has(t));
    expect(missing).toEqual([]);
    // More transitions than the default flow's: the new state and every handoff to it.
    expect(model.allTransitionKeys().length).toBeGreaterThan(
      createPathModel(DEFAULT_FLOW).allTransitionKeys().length,
    );
  });
});
