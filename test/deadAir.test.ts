/**
 * Dead air (src/call/deadAir.ts): when the agent owes the caller words and nothing is said or in
 * progress for DEAD_AIR_MS, the machine decides (`reply.failed {kind: 'missing'}`): asked again,
 * then an apology. A speech the session drops before its first word (here: interrupted the
 * moment it is created, as a false barge-in does) stands for a reply lost on the way.
 */
import { voice } from '@livekit/agents';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_REPLY_DEADLINES } from '../src/call/replyGuard.js';
import { handoffTo } from './fakes/model.js';
import { startTestCall } from './fakes/session.js';
import { trackUnhandledRejections } from './support.js';

const rejections = trackUnhandledRejections();
afterAll(() => {
  rejections.stop();
  expect(rejections.errors).toEqual([]);
});

const DEAD_AIR_MS = 300;

/** A call whose next `count` model replies (not fixed lines) are dropped before a word. */
async function callDroppingReplies(
  script: Parameters<typeof startTestCall>[0] = {},
  shouldDrop: () => boolean = () => false,
) {
  const c = await startTestCall({
    ...script,
    reply: { deadlines: { ...DEFAULT_REPLY_DEADLINES, deadAirMs: DEAD_AIR_MS } },
  });
  let dropped = 0;
  c.session.on(voice.AgentSessionEventTypes.SpeechCreated, (event) => {
    if (event.source !== 'generate_reply' || !shouldDrop()) return;
    dropped++;
    event.speechHandle.interrupt(true);
  });
  const missing = () =>
    c.bridge.actor
      .getSnapshot()
      .context.reply.failures.filter((f) => f.kind === 'missing')
      .map((f) => `${f.agent}:${f.attempt}:${f.decision}`);
  return { c, dropped: () => dropped, missing };
}

describe('dead air', () => {
  it('a specialist whose opening is lost on the way is asked for it again', async () => {
    let drops = 0;
    const { c, dropped, missing } = await callDroppingReplies(
      { script: { 'my bill please': { toolCalls: [handoffTo('billing')] } } },
      // The first reply billing would give (its opening) is dropped.
      () => c.bridge.speakingAgent === 'billing' && drops++ === 0,
    );
    await c.say('my bill please');
    await c.until(() => c.said('billing').length > 0, 'billing speaks', 5 * DEAD_AIR_MS + 2_000);
    expect(dropped()).toBe(1);
    expect(c.said('billing')[0]).toMatch(/billing/i);
    expect(missing()).toEqual(['billing:0:retry']);
  });

  it('a reply to the caller lost on the way is asked for again', async () => {
    let dropNext = false;
    const { c, dropped, missing } = await callDroppingReplies({}, () => {
      const drop = dropNext;
      dropNext = false;
      return drop;
    });
    dropNext = true;
    const before = c.said('reception').length;
    await c.say('what are your opening hours');
    await c.until(
      () => c.said('reception').length > before,
      'reception answers',
      5 * DEAD_AIR_MS + 2_000,
    );
    expect(dropped()).toBe(1);
    expect(missing()).toEqual(['reception:0:retry']);
  });

  it('replies that keep getting lost: asked again twice, then an apology', async () => {
    const { c, missing } = await callDroppingReplies({}, () => true);
    await c.say('what are your opening hours');
    await c.until(
      () => c.said('reception').some((line) => /Sorry to keep you waiting/.test(line)),
      'an apology',
      10 * DEAD_AIR_MS + 2_000,
    );
    expect(missing()).toEqual(['reception:0:retry', 'reception:1:retry', 'reception:2:apologise']);
    expect(c.bridge.actor.getSnapshot().context.reply.failedTurns).toBe(1);
  });

  it('a call where every reply arrives owes nothing between turns and never counts dead air', async () => {
    const { c, missing } = await callDroppingReplies({
      script: {
        'my bill please': { toolCalls: [handoffTo('billing')] },
        'and my router': { toolCalls: [handoffTo('support', 'router')] },
      },
    });
    // Nothing owed once an answer is out: no clock runs while the caller thinks.
    expect(c.bridge.owesWords).toBe(false); // after the greeting
    await c.say('my bill please');
    await c.until(() => c.said('billing').length > 0, 'billing speaks');
    expect(c.bridge.owesWords).toBe(false);
    await c.say('what do I owe');
    expect(c.bridge.owesWords).toBe(false);
    await c.say('and my router');
    await c.until(() => c.said('support').length > 0, 'support speaks');
    expect(c.bridge.owesWords).toBe(false);
    await c.say('thanks');
    expect(c.bridge.owesWords).toBe(false);
    c.bridge.callerHungUp();
    await c.bridge.done;
    expect(missing()).toEqual([]);
  });
});
