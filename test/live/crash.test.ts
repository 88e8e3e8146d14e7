/**
 * Crash recovery on the live path: the job process of a call is killed (SIGKILL) in the middle
 * of the call. LiveKit's server does not offer the job again (it marks it failed: see
 * src/livekit/jobWatch.ts), so the worker notices its job process died and dispatches the room again;
 * the new job resumes from the room's sealed snapshot: the caller hears billing again (an
 * apology, not a second greeting) and the call goes on to a clean end.
 */
import { expect, it } from 'vitest';
import { describeLive } from './gate.js';
import { greetedCall, useRig, within } from './rig.js';

describeLive('crash recovery on a live worker', () => {
  const live = useRig();

  it('the job process is killed mid-call: the call resumes from the snapshot without a second greeting', async () => {
    const { rig, worker } = live;
    const room = 'crash-1';
    const { caller, greeting } = await greetedCall(rig, room);
    expect(greeting.line?.text).toMatch(/Thank you for calling Acme/);
    await caller.say('Hello, I have a question about my bill');
    await caller.waitForHeard((h) => h.agent === 'billing', 30_000, 'billing');
    // The snapshot of the call with billing is in the room once the machine is there.
    await worker.waitForLog(
      (l) => l.msg === 'call state changed' && l.room === room && l.to === 'billing',
      10_000,
      'the machine in billing',
      true,
    );
    const jobPid = await worker.jobPid(room);
    const heardBefore = caller.heard.length;
    const spokenBefore = rig.speech.spoken.length;
    const lost = worker.waitForLog(
      (l) => l.msg === 'job process lost mid-call; dispatching the call again' && l.room === room,
      10_000,
      'the worker notices the lost job process',
    );
    process.kill(jobPid, 'SIGKILL');
    await lost;

    const restored = await worker.waitForLog(
      (l) => l.msg === 'call restored from snapshot' && l.room === room,
      30_000,
      'a new job restores the call from the room snapshot',
    );
    expect(restored.pid).not.toBe(jobPid);
    const resumed = await caller.waitForHeard(
      (h) => h.agent === 'billing' && /cut off/i.test(h.line?.text ?? ''),
      30_000,
      'billing picks up again',
    );
    expect(resumed.line?.text).toMatch(/Sorry, we were cut off/);

    await caller.say('That is all, goodbye');
    await caller.waitForHeard((h) => /goodbye/i.test(h.line?.text ?? ''), 30_000, 'goodbye');
    await caller.agentLeft(20_000);
    await within(
      10_000,
      'the resumed call ends',
      worker.waitForLog(
        (l) => l.msg === 'call end observed' && l.room === room,
        10_000,
        'end',
        true,
      ),
    );

    // No second greeting: after the kill, nobody in reception's voice.
    const after = caller.heard.slice(heardBefore);
    expect(after.filter((h) => h.agent === 'reception')).toEqual([]);
    // (The goodbye starts as the greeting does: "Thank you for calling Acme." The rest of the
    // greeting is its own.)
    const spokenAfter = rig.speech.spoken.slice(spokenBefore).map((l) => l.text);
    expect(spokenAfter.filter((text) => /You can ask about/.test(text))).toEqual([]);
    expect(
      worker.logs.filter((l) => l.pid === restored.pid && l.msg === 'call state changed'),
    ).not.toContainEqual(expect.objectContaining({ from: 'greeting' }));
    // One end, from the resumed job; the killed one never ended its call.
    const ends = worker.logs.filter((l) => l.msg === 'call end observed' && l.room === room);
    expect(ends.map((l) => [l.pid, l.reason])).toEqual([[restored.pid, 'caller said goodbye']]);
    // The call was dispatched again once.
    const redispatched = worker.logs.filter(
      (l) => l.msg === 'job process lost mid-call; dispatching the call again',
    );
    expect(redispatched).toHaveLength(1);
  });
});
