/**
 * Model and network faults, through the real OpenAI plugin against a fault-injecting
 * OpenAI-compatible server: every class gets a spoken line and a recovery decided by the
 * machine, exactly one agent is on the line, and the call ends once, cleanly.
 *
 * Deadlines are shortened (hold 300 ms, first token 600 ms, gap 400 ms) so the suite is quick;
 * the assertions are about order and silence, never about exact durations.
 */
import { llm } from '@livekit/agents';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { AgentName } from '../machines/callMachine.js';
import { loadConfig } from '../src/config.js';
import { LINES } from '../src/call/lines.js';
import { createOpenAILLM } from '../src/models/index.js';
import { WireObserver } from '../src/models/openaiWire.js';
import type { Brain } from '../src/models/scriptedLlm.js';
import { promisesTransfer } from '../src/call/replyGuard.js';
import {
  type Fault,
  type OpenAICompatibleServer,
  startOpenAICompatibleServer,
} from './fakes/openaiServer.js';
import { call, handoffTo, scriptedBrain } from './fakes/model.js';
import { startTestCall } from './fakes/session.js';
import { trackUnhandledRejections } from './support.js';

const DEADLINES = { holdLineMs: 300, firstTokenMs: 600, chunkGapMs: 400, deadAirMs: 4_000 };
const POLICY = { maxRetries: 2, maxFailedTurns: 2, retryAfterCapMs: 1_000, backoffMs: 50 };
/** The longest the caller may wait, after their line, for anything to be said. */
const MAX_SILENCE_MS = 2_000;

const ANSWER = 'Your last invoice was 40 dollars, paid on the first of the month.';
const script = {
  'what was my last bill': { text: ANSWER },
  'bye now': { toolCalls: [call('end_call', { reason: 'caller done' })] },
  'billing please': { toolCalls: [handoffTo('billing')] },
};

let server: OpenAICompatibleServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

interface Said {
  at: number;
  who: AgentName | 'caller';
  text: string;
}

async function faultyCall(
  faults: Fault[],
  extra: Parameters<typeof startTestCall>[0] = {},
  brain = scriptedBrain(script),
) {
  server = await startOpenAICompatibleServer(brain);
  server.fault(...faults);
  const config = loadConfig({ OPENAI_BASE_URL: server.url, OPENAI_API_KEY: 'test-key' });
  const wire = new WireObserver();
  const timeline: Said[] = [];
  const c = await startTestCall({
    llm: createOpenAILLM({ ...config, reply: { deadlines: DEADLINES, policy: POLICY } }, wire),
    wire,
    reply: { deadlines: DEADLINES, policy: POLICY },
    observer: {
      say: (who, text) => timeline.push({ at: performance.now(), who, text }),
      caller: (text) => timeline.push({ at: performance.now(), who: 'caller', text }),
    },
    ...extra,
  });
  const failures = () => c.bridge.actor.getSnapshot().context.reply.failures;
  return { c, timeline, failures, server };
}

/** After every caller line, something was said within MAX_SILENCE_MS. */
function expectNoSilence(timeline: Said[]): void {
  timeline.forEach((entry, i) => {
    if (entry.who !== 'caller') return;
    const next = timeline.slice(i + 1).find((e) => e.who !== 'caller');
    expect(next, `nothing said after "${entry.text}"`).toBeDefined();
    expect(next!.at - entry.at, `silence after "${entry.text}"`).toBeLessThan(MAX_SILENCE_MS);
  });
}

const rejections = trackUnhandledRejections();
afterEach(() => expect(rejections.errors).toEqual([]));

describe('a model that fails once is retried and the caller hears the answer', () => {
  it.each<[string, Fault, string]>([
    ['HTTP 500', { status: 500 }, 'http'],
    ['no answer at all', { noAnswer: true }, 'timeout'],
    ['a stream that stalls before any words', { stallAfterChunks: 1 }, 'stall'],
  ])('%s', async (_, fault, kind) => {
    const { c, timeline, failures } = await faultyCall([fault]);
    await c.say('what was my last bill');
    expect(c.said('reception').at(-1)).toContain(ANSWER);
    expect(failures()).toMatchObject([{ kind, attempt: 0, decision: 'retry' }]);
    expect(c.bridge.actor.getSnapshot().context.reply.failedTurns).toBe(0);
    expect(c.agents()).toEqual(['reception']);
    expectNoSilence(timeline);
    c.bridge.callerHungUp();
    expect((await c.bridge.done).reason).toBe('caller-hung-up');
  });

  it('waits as long as Retry-After says (capped), holding the line meanwhile', async () => {
    const { c, timeline, failures, server } = await faultyCall([{ status: 429, retryAfter: '30' }]);
    const asked: number[] = [];
    const requests = server.requests;
    const push = requests.push.bind(requests);
    requests.push = (...items) => {
      asked.push(performance.now());
      return push(...items);
    };
    await c.say('what was my last bill');
    expect(failures()).toMatchObject([{ kind: 'rate-limited', decision: 'retry' }]);
    // 30 s asked, capped at 1 s: the retry came after the cap, not before and not 30 s later.
    expect(asked[1]! - asked[0]!).toBeGreaterThanOrEqual(POLICY.retryAfterCapMs - 50);
    expect(c.said('reception').at(-1)).toContain(ANSWER);
    // The caller heard the hold line once while the retry waited.
    expect(c.said('reception').filter((line) => line === LINES.hold)).toHaveLength(1);
    expectNoSilence(timeline);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('gives a slow reply one hold line, then the answer', async () => {
    const { c, timeline } = await faultyCall([{ delayMs: 700 }], {
      reply: { deadlines: { ...DEADLINES, firstTokenMs: 2_000 }, policy: POLICY },
    });
    await c.say('what was my last bill');
    // The hold line is heard on its own, before the answer.
    expect(c.said('reception').slice(-2)).toEqual([LINES.hold, ANSWER]);
    expect(c.bridge.actor.getSnapshot().context.reply.heldReplyId).not.toBeNull();
    expectNoSilence(timeline);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });
});

describe('a reply that cannot be retried gets a spoken line', () => {
  it.each<[string, Fault, string, string]>([
    ['an empty completion', { empty: true }, 'empty', LINES.replyFailed('empty')],
    ['a content_filter finish', { contentFilter: true }, 'filtered', LINES.replyFailed('filtered')],
    ['a plain JSON body', { plainJson: true }, 'empty', LINES.replyFailed('empty')],
    ['HTTP 401 (a wrong key)', { status: 401 }, 'rejected', LINES.replyFailed('rejected')],
  ])('%s', async (_, fault, kind, line) => {
    const { c, timeline, failures } = await faultyCall([fault]);
    await c.say('what was my last bill');
    expect(c.said('reception').at(-1)).toBe(line);
    expect(failures()).toMatchObject([{ kind, attempt: 0, decision: 'apologise' }]);
    expectNoSilence(timeline);
    // The next turn works, and the count of failed turns starts again.
    await c.say('what was my last bill');
    expect(c.said('reception').at(-1)).toContain(ANSWER);
    expect(c.bridge.actor.getSnapshot().context.reply.failedTurns).toBe(0);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it.each<[string, Fault]>([
    ['stalls', { stallAfterChunks: 3 }],
    ['is cut by a dropped connection', { destroyAfterChunks: 3 }],
  ])(
    'a stream that %s mid-sentence is recorded as interrupted, then apologised for',
    async (_, fault) => {
      const { c, timeline, failures } = await faultyCall([fault]);
      await c.say('what was my last bill');
      await c.until(() => c.said('reception').includes(LINES.replyFailed('cut')), 'the apology');
      expect(failures()).toMatchObject([{ kind: 'cut', decision: 'apologise' }]);
      const half = c.session.history.items.find((item) => {
        if (item.type !== 'message' || item.role !== 'assistant') return false;
        const text = (item.textContent ?? '').trim();
        return text !== '' && text !== ANSWER && ANSWER.startsWith(text);
      });
      expect(half, 'the half sentence in the history').toBeDefined();
      expect((half as { interrupted?: boolean }).interrupted).toBe(true);
      expectNoSilence(timeline);
      c.bridge.callerHungUp();
      await c.bridge.done;
    },
  );
});

describe('a model that stays down', () => {
  it('apologises, then ends the call with model-unavailable after MAX_FAILED_TURNS', async () => {
    const outage = Array.from({ length: 20 }, () => ({ status: 503 }) as Fault);
    const { c, timeline, failures } = await faultyCall(outage);
    await c.say('what was my last bill');
    expect(c.said('reception').at(-1)).toBe(LINES.replyFailed('http'));
    await c.say('hello, are you there');
    const end = await c.bridge.done;
    expect(end.reason).toBe('model-unavailable');
    expect(c.said('reception').at(-1)).toBe(LINES.modelUnavailable('Acme'));
    expect(failures().map((f) => f.decision)).toEqual([
      'retry',
      'retry',
      'apologise',
      'retry',
      'retry',
      'end',
    ]);
    expect(c.events.filter((e) => e.type === 'end')).toHaveLength(1);
    expectNoSilence(timeline);
  });

  it('transfers the caller to a person when one is configured', async () => {
    const transfers: string[] = [];
    const outage = Array.from({ length: 20 }, () => ({ status: 500 }) as Fault);
    const { c } = await faultyCall(outage, {
      telephony: {
        transferCaller: async (to) => {
          transfers.push(to);
        },
      },
      humanNumbers: { reception: '+15550100' },
    });
    await c.say('what was my last bill');
    await c.say('hello, are you there');
    const end = await c.bridge.done;
    expect(end.reason).toBe('transferred');
    expect(transfers).toEqual(['+15550100']);
    expect(c.said('reception')).toContain(LINES.transferring('reception', 'model-unavailable'));
  });
});

describe('nothing is promised that does not happen', () => {
  it('a reply that says it is transferring without the tool is asked again, tool required', async () => {
    const promise = "Sure, I'm transferring you to our billing team now.";
    // The model promises in words; asked again with a tool required, it calls the tool.
    const words = scriptedBrain({ 'my bill is wrong': { text: promise } });
    const brain: Brain = (request) =>
      request.instructions.includes('you called no tool')
        ? { toolCalls: [handoffTo('billing', 'wrong bill')] }
        : words(request);
    const { c, server, timeline } = await faultyCall([], {}, brain);
    await c.say('my bill is wrong');
    await c.until(() => c.bridge.speakingAgent === 'billing', 'billing on the line');
    expect(c.bridge.state).toBe('billing');
    expect(c.said('reception')).toContain(promise);
    expect(server.requests.find((r) => r.tool_choice === 'required')).toBeDefined();
    expectNoSilence(timeline);
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('recognises a promise, and not a question or a refusal', () => {
    expect(promisesTransfer("I'm transferring you to billing now.")).toBe(true);
    expect(promisesTransfer('Let me put you through to our support team.')).toBe(true);
    expect(promisesTransfer("I'm putting you through to our support team.")).toBe(true);
    expect(promisesTransfer('Would you like me to transfer you to sales?')).toBe(false);
    expect(promisesTransfer("I can't transfer you again, but I can help.")).toBe(false);
  });
});

describe('hang-ups are immediate', () => {
  it('while a reply is stalled: the call ends at once and nothing is said after', async () => {
    const { c } = await faultyCall([{ noAnswer: true }], {
      reply: { deadlines: { ...DEADLINES, firstTokenMs: 60_000 }, policy: POLICY },
    });
    const pending = c.say('what was my last bill');
    await c.until(() => c.said('reception').includes(LINES.hold), 'the hold line');
    const saidBefore = c.events.filter((e) => e.type === 'say').length;
    c.bridge.callerHungUp();
    const end = await c.bridge.done;
    await pending.catch(() => undefined);
    expect(end.reason).toBe('caller-hung-up');
    expect(c.events.filter((e) => e.type === 'say')).toHaveLength(saidBefore);
    expect(c.events.filter((e) => e.type === 'end')).toHaveLength(1);
  });

  it('a shutdown ends the call through the machine, with a goodbye and one end', async () => {
    const { c } = await faultyCall([]);
    await c.say('what was my last bill');
    const end = await c.bridge.shutdown();
    expect(end.reason).toBe('shutdown');
    expect(c.said('reception').at(-1)).toBe(LINES.shutdown('Acme'));
    expect(c.events.filter((e) => e.type === 'end')).toEqual([{ type: 'end', reason: 'shutdown' }]);
  });
});

describe('stream shapes the SDK mis-parses', () => {
  const noteMood = () =>
    llm.tool({
      name: 'note_mood',
      description: 'Note the caller’s mood.',
      parameters: z.object({ mood: z.string() }),
      execute: async ({ mood }) => {
        moods.push(mood);
        return undefined;
      },
    });
  const moods: string[] = [];
  const both = { toolCalls: [call('note_mood', { mood: 'upset' }), handoffTo('billing')] };

  it('two tool calls sharing one index with different ids both run (mended on the wire)', async () => {
    moods.length = 0;
    const { c } = await faultyCall(
      [{ sharedToolIndex: true }],
      { extraTools: (agent) => (agent === 'reception' ? [noteMood()] : []) },
      scriptedBrain({ 'charged twice': both }),
    );
    await c.say('charged twice');
    await c.until(() => c.bridge.speakingAgent === 'billing', 'billing on the line');
    expect(moods).toEqual(['upset']); // agents 1.9 alone drops this first call
    expect(c.bridge.state).toBe('billing');
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('a tool call stopped by the content filter is not run, and the caller hears the filtered line (known limit)', async () => {
    const { c, failures } = await faultyCall(
      [{ toolThenContentFilter: true }],
      {},
      scriptedBrain({ 'charged twice': { toolCalls: [handoffTo('billing')] } }),
    );
    await c.say('charged twice');
    expect(c.bridge.state).toBe('intent');
    expect(failures()).toMatchObject([{ kind: 'filtered', decision: 'apologise' }]);
    expect(c.said('reception').at(-1)).toBe(LINES.replyFailed('filtered'));
    c.bridge.callerHungUp();
    await c.bridge.done;
  });
});
