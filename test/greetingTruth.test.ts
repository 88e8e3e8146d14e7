/**
 * Truth in the machine: the greeting counts as spoken only once it was played out to its end.
 * A room-less session with the production bridge; the greeting is a fixed line the scripted
 * model holds until the test lets it go, so the caller can act while it is being spoken.
 */
import { voice } from '@livekit/agents';
import { expect, it } from 'vitest';
import { CallBridge } from '../src/call/bridge.js';
import { callSessionOptions } from '../src/models/index.js';
import { ScriptedLLM } from '../src/models/scriptedLlm.js';
import { DEFAULT_REPLY_DEADLINES } from '../src/call/replyGuard.js';
import { DEFAULT_REPLY_POLICY } from '../machines/callMachine.js';
import { type ObservedEvent, recordingObserver } from './fakes/session.js';

function greetingCall() {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let asked!: () => void;
  const greetingAsked = new Promise<void>((resolve) => (asked = resolve));
  const model = new ScriptedLLM(async (request) => {
    const fixed = /Say exactly this, and nothing else: "(.*)"$/m.exec(request.instructions);
    if (!fixed) return {};
    asked();
    await held;
    return { text: fixed[1]! };
  });
  const session = new voice.AgentSession({
    llm: model,
    ...callSessionOptions({
      reply: { deadlines: DEFAULT_REPLY_DEADLINES, policy: DEFAULT_REPLY_POLICY },
    }),
  });
  const observed: ObservedEvent[] = [];
  const bridge = new CallBridge({
    session,
    companyName: 'Acme',
    maxHandoffs: 4,
    speech: 'generate',
    observer: recordingObserver(observed),
  });
  return { session, bridge, observed, release, greetingAsked };
}

it('records a greeting the caller spoke over as interrupted, not as spoken', async () => {
  const { session, bridge, release, greetingAsked } = greetingCall();
  await bridge.start();
  await greetingAsked;
  session.interrupt();
  release();
  await new Promise<void>((resolve) => {
    const check = () => bridge.state !== 'greeting' && resolve();
    bridge.actor.subscribe(check);
    check();
  });
  expect(bridge.state).toBe('intent');
  expect(bridge.actor.getSnapshot().context.greeting).toBe('interrupted');
  bridge.callerHungUp();
  await bridge.done;
});

it('does not record the greeting as spoken when the session closed under it', async () => {
  const { session, bridge, observed, release, greetingAsked } = greetingCall();
  await bridge.start();
  await greetingAsked;
  const closing = session.close();
  release();
  await closing;
  const end = await bridge.done;
  // Cut short by the close: recorded as interrupted (or not at all), never as spoken.
  expect(end.context.greeting).not.toBe('spoken');
  expect(observed.filter((e) => e.type === 'transition').map((e) => e.event)).not.toContain(
    'greeting.spoken',
  );
  expect(observed.filter((e) => e.type === 'end')).toHaveLength(1);
});

it('records a greeting played to its end as spoken', async () => {
  const { bridge, release, greetingAsked } = greetingCall();
  await bridge.start();
  await greetingAsked;
  release();
  await new Promise<void>((resolve) => {
    const check = () => bridge.state !== 'greeting' && resolve();
    bridge.actor.subscribe(check);
    check();
  });
  expect(bridge.actor.getSnapshot().context.greeting).toBe('spoken');
  bridge.callerHungUp();
  await bridge.done;
});
