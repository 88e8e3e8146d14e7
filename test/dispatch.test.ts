/**
 * Dispatch mode and crash recovery: the machine's snapshot is the payload that travels.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { ParticipantKind, RoomEvent } from '@livekit/rtc-node';
import { AgentDispatchClient, RoomServiceClient } from 'livekit-server-sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createActor } from 'xstate';
import {
  CALL_MACHINE_VERSION,
  DEFAULT_REPLY_POLICY,
  type CallerInfo,
  callMachine,
} from '../machines/callMachine.js';
import { sendAndDecide } from '../machines/decide.js';
import type { CallAgent } from '../src/call/agents.js';
import { ConsoleCall } from '../src/call/consoleCall.js';
import {
  FIELD_LIMITS,
  MAX_PAYLOAD_BYTES,
  PAYLOAD_VERSION,
  decodePayload,
  encodePayload,
  type HandoffPayload,
} from '../src/call/handoffPayload.js';
import {
  type HandoverTransport,
  JOIN_GRACE_MS,
  type RestorePoint,
  restoreFromPayload,
} from '../src/call/handover.js';
import { deriveSnapshotKey, snapshotSealer } from '../src/call/sealing.js';
import { loadConfig } from '../src/config.js';
import { type Brain, ScriptedLLM } from '../src/models/scriptedLlm.js';
import { DEFAULT_REPLY_DEADLINES } from '../src/call/replyGuard.js';
import {
  LiveKitHandover,
  READY_ATTRIBUTE,
  RoomSnapshotStore,
  readRoomSnapshot,
} from '../src/livekit/roomHandover.js';
import { type LiveKitApiStandIn, startLiveKitApiStandIn } from './fakes/livekitApi.js';
import { type ObservedEvent, recordingObserver, startTestCall } from './fakes/session.js';
import { type ScriptEntry, call, handoffTo, scriptedBrain } from './fakes/model.js';

const INPUT = { maxHandoffs: 4, humanTransfers: [] };
const CALLER_WORDS = 'I was charged twice for invoice 4417';

let api: LiveKitApiStandIn;
beforeEach(async () => {
  api = await startLiveKitApiStandIn();
});
afterEach(() => api.close());

/** What a department's worker does with a payload: a new session and bridge, nothing shared. */
async function startFromPayload(payload: string, resumed = false) {
  const restoration = restoreFromPayload(payload, resumed, INPUT);
  if (!restoration) throw new Error('not a payload');
  const leg = await startTestCall({
    restore: restoration.restore,
    script: { bye: { toolCalls: [call('end_call', { reason: 'done' })] } },
  });
  await leg.until(() => leg.events.some((e) => e.type === 'say'), 'first words');
  return { leg, restoration };
}

describe('dispatch-mode handoff', () => {
  it('moves the call to a session that shares nothing with the first but the payload', async () => {
    let payload = '';
    let specialist: Awaited<ReturnType<typeof startFromPayload>>['leg'] | undefined;
    const reception = await startTestCall({
      caller: { number: '+919812345678' },
      script: { [CALLER_WORDS]: { toolCalls: [handoffTo('billing', 'duplicate charge')] } },
      handover: {
        handOver: async (sent, to) => {
          expect(to).toBe('billing');
          payload = sent;
          specialist = (await startFromPayload(sent)).leg;
          return 'joined';
        },
      },
    });
    await reception.say(CALLER_WORDS);
    const left = await reception.bridge.done;
    expect(left.reason).toBe('handed-over');
    expect(reception.said('reception')).toContain(
      "One moment, I'm connecting you to our billing team.",
    );
    expect(reception.agents()).toEqual(['reception']); // billing never ran in this session
    expect(JSON.parse(payload)).toMatchObject({
      kind: 'call-handoff',
      machineVersion: CALL_MACHINE_VERSION,
    });

    const s = specialist!;
    expect(s.bridge.state).toBe('billing');
    expect(s.agents()).toEqual(['billing']);
    expect(s.said('billing')[0]).toBe('billing here, about duplicate charge.');
    expect(s.said('reception')).toEqual([]); // no greeting in the new session
    const first = (s.model as ScriptedLLM).requests[0]!;
    expect(first.instructions).toContain('Reason: duplicate charge');
    expect(first.instructions).toContain('Caller number: +919812345678');
    expect(first.messages).toContainEqual({ role: 'user', text: CALLER_WORDS });
    expect(s.bridge.actor.getSnapshot().context.handoffs).toMatchObject([
      { from: 'reception', to: 'billing', reason: 'duplicate charge' },
    ]);
    await s.say('bye');
    expect((await s.bridge.done).reason).toBe('done');
  });

  it('falls back in process when the dispatch cannot even be sent', async () => {
    const c = await startTestCall({
      script: { [CALLER_WORDS]: { toolCalls: [handoffTo('billing', 'duplicate charge')] } },
      handover: {
        handOver: async () => {
          throw new Error('CreateDispatch 503');
        },
      },
    });
    await c.say(CALLER_WORDS);
    await c.until(() => c.bridge.speakingAgent === 'billing', 'billing in process');
    await c.until(() => c.said('billing').length > 0, 'billing speaking');
    expect(c.said('billing')[0]).toBe('billing here, about duplicate charge.');
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('withdraws the handover when the caller hangs up during it, and activates nobody', async () => {
    let aborted = false;
    const c = await startTestCall({
      script: { [CALLER_WORDS]: { toolCalls: [handoffTo('billing')] } },
      handover: {
        handOver: (_payload, _to, signal) =>
          new Promise((resolve) => {
            signal?.addEventListener('abort', () => {
              aborted = true;
              resolve('timeout');
            });
          }),
      },
    });
    await c.say(CALLER_WORDS);
    await c.until(() => c.events.some((e) => e.type === 'dispatch'), 'the dispatch');
    c.bridge.callerHungUp();
    expect((await c.bridge.done).reason).toBe('caller-hung-up');
    await c.bridge.settled();
    expect(aborted).toBe(true);
    expect(c.agents()).toEqual(['reception']);
  });

  it('speaks a fallback and switches in process when the specialist never joins', async () => {
    const c = await startTestCall({
      script: { [CALLER_WORDS]: { toolCalls: [handoffTo('billing', 'duplicate charge')] } },
      handover: { handOver: async () => 'timeout' },
    });
    await c.say(CALLER_WORDS);
    await c.until(() => c.bridge.speakingAgent === 'billing', 'billing in process');
    expect(c.said('reception').at(-1)).toMatch(/could not pick up on their line/);
    expect(c.bridge.state).toBe('billing');
    await c.until(() => c.said('billing').length > 0, 'billing speaking');
    c.bridge.callerHungUp();
    expect((await c.bridge.done).reason).toBe('caller-hung-up');
  });
});

type Leg = Awaited<ReturnType<typeof startTestCall>>;

/**
 * A call in dispatch mode where every handoff starts the next leg from the payload alone, as a
 * department's worker would; each leg hands over the same way.
 */
async function dispatchedCall(script: Record<string, ScriptEntry>, caller?: CallerInfo) {
  const legs: Leg[] = [];
  const payloads: string[] = [];
  const transport: HandoverTransport = {
    handOver: async (payload) => {
      payloads.push(payload);
      const restoration = restoreFromPayload(payload, false, INPUT);
      if (!restoration?.ok) return 'timeout';
      const leg = await startTestCall({
        restore: restoration.restore,
        script,
        handover: transport,
      });
      await leg.until(() => leg.events.some((e) => e.type === 'say'), 'first words');
      legs.push(leg);
      return 'joined';
    },
  };
  legs.push(await startTestCall({ script, handover: transport, ...(caller ? { caller } : {}) }));
  return { legs, payloads, onLine: () => legs.at(-1)! };
}

describe('dispatch mode keeps the whole call', () => {
  it('gives the third agent of a call every earlier line, not only the latest leg', async () => {
    const c = await dispatchedCall({
      [CALLER_WORDS]: { toolCalls: [handoffTo('billing', 'duplicate charge')] },
      'and the app crashes on login': { toolCalls: [handoffTo('support', 'app crash')] },
      bye: { toolCalls: [call('end_call', { reason: 'done' })] },
    });
    await c.legs[0]!.say(CALLER_WORDS);
    expect((await c.legs[0]!.bridge.done).reason).toBe('handed-over');
    const billing = c.onLine();
    await billing.say('and the app crashes on login');
    expect((await billing.bridge.done).reason).toBe('handed-over');
    const support = c.onLine();
    expect(support.agents()).toEqual(['support']);

    const opening = (support.model as ScriptedLLM).requests[0]!;
    const heard = opening.messages.map((m) => ('text' in m ? `${m.role}: ${m.text}` : m.role));
    expect(heard.filter((line) => line.startsWith('user: '))).toEqual([
      `user: ${CALLER_WORDS}`,
      'user: and the app crashes on login',
    ]);
    expect(heard).toContain('assistant: billing here, about duplicate charge.');
    const second = decodePayload(c.payloads[1]!);
    expect(second?.ok && second.payload.history.map((l) => l.text)).toContain(CALLER_WORDS);
    await support.say('bye');
    expect((await support.bridge.done).reason).toBe('done');
  });

  it('hands over with a very long reason and caller name, bounded, without a false apology', async () => {
    const reason = 'r'.repeat(50_000);
    const c = await dispatchedCall(
      { [CALLER_WORDS]: { toolCalls: [handoffTo('billing', reason)] } },
      { number: '+919812345678', name: 'N'.repeat(50_000) },
    );
    const reception = c.legs[0]!;
    await reception.say(CALLER_WORDS);
    const apology = () => reception.said('reception').some((t) => /could not pick up/.test(t));
    const dispatched = () => reception.events.some((e) => e.type === 'dispatch');
    await reception.until(() => dispatched() || apology(), 'the dispatch or the fallback');
    expect(apology()).toBe(false);
    expect((await reception.bridge.done).reason).toBe('handed-over');
    expect(Buffer.byteLength(c.payloads[0]!)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);

    const billing = c.onLine();
    const brief = (billing.model as ScriptedLLM).requests[0]!.instructions;
    expect(brief).toMatch(/^Reason: r+…$/m);
    expect(/^Reason: (.*)$/m.exec(brief)![1]).toHaveLength(FIELD_LIMITS.reason);
    expect(brief).toContain(`Caller name: ${'N'.repeat(FIELD_LIMITS.callerName - 1)}…`);
    expect(brief).toContain('Caller number: +919812345678');
    billing.bridge.callerHungUp();
    await billing.bridge.done;
  });

  it('refuses control tools of the agent that handed over (code retired); caller words reach nobody retired', async () => {
    let settle!: (outcome: 'joined' | 'timeout') => void;
    const c = await startTestCall({
      script: {
        [CALLER_WORDS]: { toolCalls: [handoffTo('billing', 'duplicate charge')] },
        'hello?': { toolCalls: [call('end_call', { reason: 'caller is done' })] },
      },
      handover: { handOver: () => new Promise((resolve) => (settle = resolve)) },
    });
    await c.say(CALLER_WORDS);
    await c.until(() => c.events.some((e) => e.type === 'dispatch'), 'the dispatch');
    // Billing's worker has not joined yet: reception is still in this session, but retired.
    const retired = c.session.currentAgent as CallAgent;
    expect(retired.callAgent).toBe('reception');
    const endCall = retired.toolCtx.functionTools.end_call!;
    await expect(
      endCall.execute({ reason: 'bye' }, {
        ctx: { speechHandle: { id: 'a-later-turn' } },
      } as never),
    ).resolves.toBeUndefined();
    expect(c.bridge.request({ type: 'end.requested', reason: 'x' }, 'reception')).toMatchObject({
      accepted: false,
      code: 'retired',
    });
    await c.say('hello?');
    expect(c.bridge.state).toBe('billing');
    expect(c.bridge.actor.getSnapshot().context.refusals).toEqual([]);
    expect(c.said('reception').at(-1)).toBe("One moment, I'm connecting you to our billing team.");

    settle('timeout');
    await c.until(() => c.said('billing').length > 0, 'billing in process');
    // The caller's words during the wait were kept for the agent on the line.
    const opening = (c.model as ScriptedLLM).requests.at(-1)!;
    expect(opening.messages).toContainEqual({ role: 'user', text: 'hello?' });
    c.bridge.callerHungUp();
    expect((await c.bridge.done).reason).toBe('caller-hung-up');
  });

  it('does not emit the refusals a restored call brings with it, only new ones', async () => {
    const actor = createActor(callMachine, { input: INPUT }).start();
    actor.send({ type: 'call.started' });
    const toBilling = {
      type: 'handoff.requested',
      department: 'billing',
      reason: 'refund',
      summary: 's',
    } as const;
    actor.send(toBilling);
    actor.send(toBilling); // same-department: refused and recorded
    expect(actor.getSnapshot().context.refusals).toHaveLength(1);
    const handoff = actor.getSnapshot().context.handoffs[0]!;
    const { leg } = await startFromPayload(
      encodePayload(actor.getPersistedSnapshot() as never, handoff, []),
    );
    expect(leg.events.filter((e) => e.type === 'refusal')).toEqual([]);
    expect(leg.bridge.request(toBilling, 'billing')).toMatchObject({ code: 'same-department' });
    expect(leg.events.filter((e) => e.type === 'refusal')).toEqual([
      { type: 'refusal', code: 'same-department', to: 'billing' },
    ]);
    leg.bridge.callerHungUp();
    await leg.bridge.done;
  });

  it("speaks one bridge line: the model's own, when it said one in the turn that handed over", async () => {
    const c = await startTestCall({
      script: {
        [CALLER_WORDS]: {
          text: 'Let me get you to our billing team.',
          toolCalls: [handoffTo('billing')],
        },
      },
      handover: { handOver: async () => 'joined' },
    });
    await c.say(CALLER_WORDS);
    expect((await c.bridge.done).reason).toBe('handed-over');
    expect(c.said('reception').slice(1)).toEqual(['Let me get you to our billing team.']);
  });

  it('withdraws a console specialist leg that has not spoken in time; the call goes on in process', async () => {
    const events: ObservedEvent[] = [];
    const waiters = new Set<() => void>();
    const until = (ready: () => boolean) =>
      new Promise<void>((resolve) => {
        const check = () => ready() && (waiters.delete(check), resolve());
        waiters.add(check);
        check();
      });
    const brain = scriptedBrain({
      [CALLER_WORDS]: { toolCalls: [handoffTo('billing', 'duplicate charge')] },
      'is it sorted?': { text: 'Yes, refunded.' },
      bye: { toolCalls: [call('end_call', { reason: 'done' })] },
    });
    // The specialist leg's opening never comes back; the in-process one's does.
    let openings = 0;
    const stalling: Brain = (request) =>
      request.instructions.includes('Opening:') && ++openings === 1
        ? new Promise(() => {})
        : brain(request);
    const models: ScriptedLLM[] = [];
    const consoleCall = new ConsoleCall({
      createModel: () => {
        const model = new ScriptedLLM(stalling);
        models.push(model);
        return model;
      },
      companyName: 'Acme',
      maxHandoffs: 4,
      logger: pino({ level: 'silent' }),
      observer: recordingObserver(events, () => waiters.forEach((check) => check())),
      handoffMode: 'dispatch',
      joinTimeoutMs: 300,
      reply: { deadlines: DEFAULT_REPLY_DEADLINES, policy: DEFAULT_REPLY_POLICY },
    });
    const said = (agent: string) =>
      events.flatMap((e) => (e.type === 'say' && e.agent === agent ? [e.text] : []));
    await consoleCall.start();
    await consoleCall.say(CALLER_WORDS);
    await until(() => said('billing').length > 0);
    expect(said('reception').at(-1)).toMatch(/could not pick up on their line/);
    expect(said('billing')).toEqual(['billing here, about duplicate charge.']);
    // The withdrawn leg never reached the observer: one agent on the line at a time.
    expect(events.filter((e) => e.type === 'agent').map((e) => e.agent)).toEqual([
      'reception',
      'billing',
    ]);

    await consoleCall.say('is it sorted?');
    expect(said('billing').at(-1)).toBe('Yes, refunded.');
    expect(models).toHaveLength(2);
    expect(models[1]!.requests).toHaveLength(1); // the stalled opening, nothing after
    await consoleCall.say('bye');
    expect((await consoleCall.done).reason).toBe('done');
    expect(events.filter((e) => e.type === 'end')).toEqual([{ type: 'end', reason: 'done' }]);
    await consoleCall.close();
  }, 10_000);
});

describe('join deadline', () => {
  it("tells the next agent by when it must have spoken, from the transport's join timeout", async () => {
    let payload = '';
    const c = await startTestCall({
      script: { [CALLER_WORDS]: { toolCalls: [handoffTo('billing')] } },
      handover: {
        joinTimeoutMs: 4_000,
        handOver: async (sent) => {
          payload = sent;
          return 'joined';
        },
      },
    });
    const before = Date.now();
    await c.say(CALLER_WORDS);
    await c.bridge.done;
    const restoration = restoreFromPayload(payload, false, INPUT)!;
    const joinBy = restoration.restore.joinBy!;
    expect(joinBy).toBeGreaterThan(before + 4_000 - JOIN_GRACE_MS - 1_000);
    expect(joinBy).toBeLessThanOrEqual(Date.now() + 4_000 - JOIN_GRACE_MS);
  });

  it('has a specialist still silent at the deadline withdraw, with no word and no end', async () => {
    const actor = createActor(callMachine, { input: INPUT }).start();
    actor.send({ type: 'call.started' });
    actor.send({ type: 'handoff.requested', department: 'billing', reason: 'r', summary: 's' });
    const handoff = actor.getSnapshot().context.handoffs[0]!;
    const snapshot = actor.getPersistedSnapshot() as never;
    const payload = encodePayload(snapshot, handoff, [], MAX_PAYLOAD_BYTES, Date.now() + 200);
    const { restore } = restoreFromPayload(payload, false, INPUT)!;
    const silent = new ScriptedLLM(() => new Promise(() => {}));
    const leg = await startTestCall({ restore, llm: silent });
    expect(await leg.bridge.firstWordsBy(restore.joinBy!)).toBe(false);
    await leg.bridge.withdraw();
    expect((await leg.bridge.done).reason).toBe('withdrawn');
    expect(leg.events.filter((e) => e.type === 'say' || e.type === 'end')).toEqual([]);
    expect(silent.requests).toHaveLength(1); // its opening, never answered
  });
});

describe('a slow specialist', () => {
  it('has joined once the caller heard its hold line: it owns the call from then on', async () => {
    const actor = createActor(callMachine, { input: INPUT }).start();
    actor.send({ type: 'call.started' });
    actor.send({ type: 'handoff.requested', department: 'billing', reason: 'r', summary: 's' });
    const handoff = actor.getSnapshot().context.handoffs[0]!;
    const snapshot = actor.getPersistedSnapshot() as never;
    const payload = encodePayload(snapshot, handoff, [], MAX_PAYLOAD_BYTES, Date.now() + 5_000);
    const { restore } = restoreFromPayload(payload, false, INPUT)!;
    const leg = await startTestCall({
      restore,
      llm: new ScriptedLLM(() => new Promise(() => {})),
      reply: { deadlines: { ...DEFAULT_REPLY_DEADLINES, holdLineMs: 100, firstTokenMs: 10_000 } },
    });
    expect(await leg.bridge.firstWordsBy(restore.joinBy!)).toBe(true);
    expect(leg.said('billing')).toEqual(['One moment, please.']);
    leg.bridge.callerHungUp();
    expect((await leg.bridge.done).reason).toBe('caller-hung-up');
  });
});

describe('retired senders', () => {
  it('refuses requests from an agent the machine moved on from, except its own turn', () => {
    const actor = createActor(callMachine, { input: INPUT }).start();
    actor.send({ type: 'call.started' });
    const toBilling = {
      type: 'handoff.requested',
      department: 'billing',
      reason: 'refund',
      summary: 's',
      turnId: 't1',
    } as const;
    expect(sendAndDecide(actor, toBilling, 'reception')).toMatchObject({ accepted: true });
    // The same turn's second change gets the machine's own, recorded answer.
    expect(
      sendAndDecide(actor, { type: 'end.requested', reason: 'x', turnId: 't1' }, 'reception'),
    ).toMatchObject({ accepted: false, code: 'one-per-turn' });
    // A later turn of the retired agent never reaches the machine.
    expect(
      sendAndDecide(actor, { type: 'end.requested', reason: 'x', turnId: 't2' }, 'reception'),
    ).toEqual({ accepted: false, state: 'billing', code: 'retired' });
    expect(actor.getSnapshot().context.refusals).toHaveLength(1);
    // The agent on the line, and the caller's keypad (no sender), are heard.
    expect(sendAndDecide(actor, { type: 'end.requested', reason: 'x' })).toMatchObject({
      accepted: true,
    });
  });
});

describe('LiveKit dispatch transport', () => {
  const room = () =>
    Object.assign(new EventEmitter(), {
      remoteParticipants: new Map([
        ['sip-caller', { kind: ParticipantKind.SIP, identity: 'sip-caller' }],
        ['agent-reception', { kind: ParticipantKind.AGENT, identity: 'agent-reception' }],
      ]),
    });
  const dispatcher = () => new AgentDispatchClient(api.url, api.apiKey, api.apiSecret);

  it("dispatches the department's worker with the payload and reports its join", async () => {
    const r = room();
    const handover = new LiveKitHandover(dispatcher(), r, 'call-abc', 'acme', 5_000);
    const held = api.hold('CreateDispatch');
    const outcome = handover.handOver('{"kind":"call-handoff"}', 'billing');
    await held.arrived;
    held.answer({ ok: true, body: { id: 'AD_1', agentName: 'acme-billing', room: 'call-abc' } });
    // An agent already in the room does not count; a new one counts once its session runs.
    let settled = false;
    void outcome.then(() => (settled = true));
    const ready = { [READY_ATTRIBUTE]: '1' };
    r.emit(RoomEvent.ParticipantAttributesChanged, ready, {
      kind: ParticipantKind.AGENT,
      identity: 'agent-reception',
      attributes: ready,
    });
    r.emit(RoomEvent.ParticipantConnected, { kind: ParticipantKind.SIP, identity: 'someone' });
    r.emit(RoomEvent.ParticipantConnected, {
      kind: ParticipantKind.AGENT,
      identity: 'agent-billing',
      attributes: {},
    });
    await Promise.resolve();
    expect(settled).toBe(false); // connected is not ready
    r.emit(RoomEvent.ParticipantAttributesChanged, ready, {
      kind: ParticipantKind.AGENT,
      identity: 'agent-billing',
      attributes: ready,
    });
    expect(await outcome).toBe('joined');
    expect(api.requests[0]).toMatchObject({
      service: 'AgentDispatchService',
      method: 'CreateDispatch',
      authorized: true,
      body: { agentName: 'acme-billing', room: 'call-abc', metadata: '{"kind":"call-handoff"}' },
    });
  });

  it('withdraws the dispatch when the call ends while waiting', async () => {
    const handover = new LiveKitHandover(dispatcher(), room(), 'call-abc', 'acme', 60_000);
    const ended = new AbortController();
    const held = api.hold('CreateDispatch');
    const outcome = handover.handOver('{}', 'sales', ended.signal);
    await held.arrived;
    held.answer({ ok: true, body: { id: 'AD_9' } });
    ended.abort();
    expect(await outcome).toBe('timeout');
    expect(api.requests.map((r) => r.method)).toEqual(['CreateDispatch', 'DeleteDispatch']);
    expect(api.requests[1]!.body).toMatchObject({ dispatchId: 'AD_9', room: 'call-abc' });
  });

  it('times out and withdraws the dispatch when nobody joins', async () => {
    const handover = new LiveKitHandover(dispatcher(), room(), 'call-abc', 'acme', 200);
    expect(await handover.handOver('{}', 'sales')).toBe('timeout');
    expect(api.requests.map((r) => r.method)).toEqual(['CreateDispatch', 'DeleteDispatch']);
    expect(api.requests[1]!.body).toMatchObject({ room: 'call-abc' });
  });
});

describe('payload rules', () => {
  const snapshotOf = async () => {
    const c = await startTestCall({ script: { x: { toolCalls: [handoffTo('billing')] } } });
    await c.say('x');
    const snapshot = c.bridge.actor.getPersistedSnapshot() as unknown as HandoffPayload['snapshot'];
    c.bridge.callerHungUp();
    await c.bridge.done;
    return snapshot;
  };

  it('bounds the size by dropping the oldest history first', async () => {
    const snapshot = await snapshotOf();
    const history = Array.from({ length: 400 }, (_, i) => ({
      role: 'user' as const,
      text: `line ${i} ${'x'.repeat(90)}`,
    }));
    const text = encodePayload(snapshot, null, history);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
    const decoded = decodePayload(text);
    expect(decoded?.ok).toBe(true);
    const kept = (decoded as { payload: HandoffPayload }).payload.history;
    expect(kept.at(-1)!.text).toMatch(/^line 399 /);
    expect(kept.length).toBeLessThan(400);
  });

  it('shortens summaries when history alone cannot make it fit, and refuses what never fits', async () => {
    const snapshot = await snapshotOf();
    const handoff = { ...snapshot.context.handoffs[0]!, summary: 's'.repeat(5_000) };
    const big = { ...snapshot, context: { ...snapshot.context, handoffs: [handoff] } };
    const text = encodePayload(big, handoff, [], 2_000);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(2_000);
    expect(() => encodePayload(big, handoff, [], 100)).toThrow(/over the 100 byte bound/);
  });

  it('bounds every free-text field, so a call at the handoff cap with long texts still fits', async () => {
    const long = (c: string) => c.repeat(40_000);
    const snapshot = await snapshotOf();
    const handoffs = Array.from({ length: 50 }, (_, i) => ({
      ...snapshot.context.handoffs[0]!,
      reason: long(`${i % 10}`),
      summary: long('s'),
    }));
    const refusals = Array.from({ length: 500 }, () => ({
      code: 'handoff-cap' as const,
      request: 'handoff' as const,
      from: 'billing' as const,
      to: 'sales' as const,
      at: 1,
    }));
    const big = {
      ...snapshot,
      context: {
        ...snapshot.context,
        caller: { number: long('9'), name: long('N'), callId: long('c') },
        handoffs,
        refusals,
        transfer: {
          from: 'billing' as const,
          reason: long('t'),
          cause: 'requested' as const,
          error: long('e'),
        },
      },
    };
    const history = [{ role: 'user' as const, text: long('h') }];
    const text = encodePayload(big, handoffs.at(-1)!, history);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
    const { payload } = decodePayload(text) as { payload: HandoffPayload };
    const context = payload.snapshot.context;
    expect(context.caller?.name).toHaveLength(FIELD_LIMITS.callerName);
    expect(context.handoffs).toHaveLength(50);
    expect(context.handoffs.at(-1)!.reason).toMatch(/^9+…$/); // the latest brief keeps a reason
    expect(payload.handoff!.reason).toBe(context.handoffs.at(-1)!.reason);
    expect(context.refusals).toHaveLength(FIELD_LIMITS.refusals);
  });

  it('carries no configuration or secrets, even with every secret set', async () => {
    // The secrets are really in scope: the configuration the worker would run with holds them.
    const secrets = {
      OPENAI_API_KEY: 'sk-test-0123456789abcdef',
      LIVEKIT_API_SECRET: 'lk-secret-0123456789abcdef',
      VOBIZ_PASSWORD: 'vobiz-pass-0123456789',
      SNAPSHOT_KEY: 'snapshot-key-0123456789abcdef',
    };
    const config = loadConfig({ ...secrets, LIVEKIT_API_KEY: 'APIkey', VOBIZ_USERNAME: 'u' });
    expect(config.openai.apiKey).toBe(secrets.OPENAI_API_KEY);
    const c = await startTestCall({
      maxHandoffs: config.maxHandoffs,
      reply: config.reply,
      keypad: config.telephony.keypad,
      script: { 'billing please': { toolCalls: [handoffTo('billing')] } },
    });
    await c.say('billing please');
    const text = encodePayload(
      c.bridge.actor.getPersistedSnapshot() as never,
      c.bridge.actor.getSnapshot().context.handoffs.at(-1) ?? null,
      [{ role: 'user', text: 'billing please' }],
    );
    for (const secret of Object.values(secrets)) expect(text).not.toContain(secret);
    expect(text).not.toMatch(/apiKey|password/i);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('falls back to a fresh intent with the brief when the machine version differs', async () => {
    const snapshot = await snapshotOf();
    const payload = JSON.parse(
      encodePayload(snapshot, snapshot.context.handoffs[0]!, [{ role: 'user', text: 'hello' }]),
    ) as HandoffPayload;
    payload.machineVersion = CALL_MACHINE_VERSION + 1;
    const restoration = restoreFromPayload(JSON.stringify(payload), false, INPUT)!;
    expect(restoration.ok).toBe(false);
    expect(restoration.ok ? '' : restoration.reason).toMatch(/machine version/);

    const { leg } = await startFromPayload(JSON.stringify(payload));
    expect(leg.bridge.state).toBe('intent');
    expect(leg.agents()).toEqual(['reception']);
    expect(leg.said('reception')[0]).toBe('reception here, about billing question.');
    leg.bridge.callerHungUp();
    await leg.bridge.done;
  });
});

describe('crash recovery', () => {
  it('does not leave a call restored mid-transfer stuck: the agent takes over and apologises', async () => {
    const actor = createActor(callMachine, { input: { humanTransfers: ['billing'] } }).start();
    actor.send({ type: 'call.started' });
    actor.send({
      type: 'handoff.requested',
      department: 'billing',
      reason: 'refund',
      summary: 's',
    });
    actor.send({ type: 'transfer.requested', reason: 'wants a person' });
    expect(actor.getSnapshot().value).toBe('transferring');
    const payload = encodePayload(actor.getPersistedSnapshot() as never, null, []);
    const { leg } = await startFromPayload(payload, true);
    expect(leg.bridge.state).toBe('billing');
    expect(leg.bridge.actor.getSnapshot().context.transfer?.error).toBe('interrupted by a restart');
    await leg.until(() => leg.said('billing').some((t) => t.startsWith('Sorry')), 'the apology');
    leg.bridge.callerHungUp();
    await leg.bridge.done;
  });

  it('keeps the snapshot in the room on every transition, sealed, and clears it at the end', async () => {
    const sealer = snapshotSealer(deriveSnapshotKey(api.apiSecret));
    const store = new RoomSnapshotStore(
      new RoomServiceClient(api.url, api.apiKey, api.apiSecret),
      'call-room',
      sealer,
      (error) => {
        throw error;
      },
      0,
    );
    const c = await startTestCall({
      caller: { number: '+919812345678', name: 'Asha Rao' },
      snapshotStore: store,
      script: { 'billing for invoice 4417': { toolCalls: [handoffTo('billing')] } },
    });
    await c.say('billing for invoice 4417');
    await store.flushed();
    const metadata = api.roomMetadata.get('call-room')!;
    // Any participant can read room metadata: no number, name or words of the caller in it.
    for (const pii of ['9812345678', 'Asha', 'invoice 4417', 'billing question']) {
      expect(metadata).not.toContain(pii);
    }
    const kept = readRoomSnapshot(metadata, sealer);
    const decoded = decodePayload(kept!);
    expect(decoded?.ok && decoded.payload.snapshot.value).toBe('billing');
    expect(decoded?.ok && decoded.payload.snapshot.context.caller?.number).toBe('+919812345678');
    expect(
      decoded?.ok && decoded.payload.history.some((l) => l.text === 'billing for invoice 4417'),
    ).toBe(true);
    // Saved on each transition and each line, coalesced into at least the latest write.
    const writes = api.requests.filter((r) => r.method === 'UpdateRoomMetadata');
    expect(writes.length).toBeGreaterThan(0);
    expect(JSON.parse(writes.at(-1)!.body.metadata as string).call).toBe(JSON.parse(metadata).call);

    c.bridge.callerHungUp();
    await c.bridge.done;
    await store.flushed();
    expect(JSON.parse(api.roomMetadata.get('call-room')!)).toEqual({ call: null });
  });

  it('treats a snapshot that does not open (another key, tampered) as absent, and says so', () => {
    const mine = snapshotSealer(deriveSnapshotKey('secret-of-this-deployment'));
    const theirs = snapshotSealer(deriveSnapshotKey('another-deployment-secret'));
    const metadata = JSON.stringify({ call: theirs.seal('{"kind":"call-handoff"}') });
    let unreadable = 0;
    expect(readRoomSnapshot(metadata, mine, () => unreadable++)).toBe(null);
    expect(unreadable).toBe(1);
    const sealed = mine.seal('{"kind":"call-handoff"}');
    const tampered = sealed.slice(0, -6) + (sealed.endsWith('A') ? 'B' : 'A') + sealed.slice(-5);
    expect(readRoomSnapshot(JSON.stringify({ call: tampered }), mine, () => unreadable++)).toBe(
      null,
    );
    expect(unreadable).toBe(2);
    expect(readRoomSnapshot(JSON.stringify({ call: sealed }), mine)).toBe(
      '{"kind":"call-handoff"}',
    );
  });

  it('coalesces rapid saves: one write in flight, then only the newest', async () => {
    const writes: string[] = [];
    const sealer = snapshotSealer(deriveSnapshotKey('a test secret'));
    let release!: () => void;
    const firstWrite = new Promise<void>((resolve) => (release = resolve));
    const store = new RoomSnapshotStore(
      {
        updateRoomMetadata: async (_room, metadata) => {
          writes.push(metadata);
          if (writes.length === 1) await firstWrite; // hold the first write in flight
          return {} as never;
        },
      },
      'call-room',
      sealer,
      () => {},
      0,
    );
    const encoded: number[] = [];
    for (const n of [1, 2, 3, 4, 5]) store.save(() => (encoded.push(n), `payload ${n}`), false);
    release();
    await store.flushed();
    expect(writes.map((w) => sealer.open(JSON.parse(w).call))).toEqual(['payload 1', 'payload 5']);
    // Only what was written was encoded: the saves in between cost nothing.
    expect(encoded).toEqual([1, 5]);
  });

  it('resumes a call whose worker died, in the same state, without greeting again', async () => {
    let latest = '';
    const crashed = await startTestCall({
      snapshotStore: { save: (encode, ended) => void (ended ? null : (latest = encode()!)) },
      script: {
        'charged twice': { toolCalls: [handoffTo('billing', 'double charge')] },
        'the amount was 40 dollars': { text: 'Noted.' },
      },
    });
    await crashed.say('charged twice');
    await crashed.say('the amount was 40 dollars');
    // The worker dies here: nothing more is saved, nothing is ended.

    const { leg, restoration } = await startFromPayload(latest, true);
    expect(restoration.ok).toBe(true);
    expect((restoration.restore as RestorePoint).resumed).toBe(true);
    expect(leg.bridge.state).toBe('billing');
    expect(leg.agents()).toEqual(['billing']);
    expect(leg.said('billing')[0]).toBe(
      'billing again, sorry about that. You were saying: the amount was 40 dollars',
    );
    expect(leg.events.some((e) => e.type === 'say' && /Thank you for calling/.test(e.text))).toBe(
      false,
    );
    expect(leg.bridge.actor.getSnapshot().context.handoffs).toHaveLength(1);
    leg.bridge.callerHungUp();
    await leg.bridge.done;
    crashed.bridge.callerHungUp();
    await crashed.bridge.done;
  });
});

describe('saved payloads (versioned fixtures in test/fixtures)', () => {
  const fixture = (name: string) =>
    readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');

  it('restores a payload saved by this payload and machine version (change the shape: bump a version)', async () => {
    const text = fixture(`payload.v${PAYLOAD_VERSION}.machine${CALL_MACHINE_VERSION}.json`);
    const decoded = decodePayload(text);
    expect(decoded).toMatchObject({ ok: true });
    const { leg } = await startFromPayload(text);
    expect(leg.bridge.state).toBe('billing');
    expect(leg.bridge.actor.getSnapshot().context.caller?.number).toBe('+919812345678');
    leg.bridge.callerHungUp();
    await leg.bridge.done;
  });

  it('refuses a payload of the previous machine version safely, keeping the caller and brief', () => {
    const decoded = decodePayload(fixture('payload.v1.machine1.json'));
    expect(decoded).toMatchObject({
      ok: false,
      reason: `machine version 1, this worker runs ${CALL_MACHINE_VERSION}`,
      caller: { number: '+919812345678' },
      handoff: { to: 'billing' },
    });
  });

  it('refuses a malformed payload before it reaches the machine, naming what is wrong', () => {
    const text = fixture(`payload.v${PAYLOAD_VERSION}.machine${CALL_MACHINE_VERSION}.json`);
    const broken = JSON.parse(text) as HandoffPayload;
    (broken.snapshot.context.handoffs[0] as { to: string }).to = 'Marketing Team';
    expect(decodePayload(JSON.stringify(broken))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^malformed payload at snapshot\.context\.handoffs\.0\.to/),
      caller: { number: '+919812345678' },
    });
    // Well formed, but a department this worker's flow does not have.
    (broken.snapshot.context.handoffs[0] as { to: string }).to = 'marketing';
    expect(decodePayload(JSON.stringify(broken))).toMatchObject({
      ok: false,
      reason: 'agent marketing is not in this flow',
      caller: { number: '+919812345678' },
    });
    const truncated = JSON.parse(text) as Record<string, unknown>;
    delete (truncated.snapshot as { context: Record<string, unknown> }).context.reply;
    expect(decodePayload(JSON.stringify(truncated))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/snapshot\.context\.reply/),
    });
  });
});
