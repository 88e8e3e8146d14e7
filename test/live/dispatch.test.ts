/**
 * Dispatch mode on one host: reception and billing run as separate workers (the billing one as
 * `npm start -- --department billing`, each with its own HEALTH_PORT). A handoff is a real `createDispatch` with the machine's
 * snapshot as the payload: the billing worker joins the room, restores the call and speaks in
 * its voice; the reception agent leaves; the call ends with billing's goodbye.
 *
 * Crash recovery is not here: a job process killed mid-call is reported failed by LiveKit's
 * server (1.13.5, "agent worker left the room") and no new job was dispatched within 60 s, so
 * the room-snapshot resume is tested offline only (test/dispatch.test.ts).
 */
import { dispose } from '@livekit/rtc-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeLive } from './gate.js';
import { type Rig, type WorkerProcess, startRig } from './rig.js';

describeLive('dispatch mode with department workers', () => {
  let rig: Rig;
  let reception: WorkerProcess;
  let billing: WorkerProcess;

  beforeAll(async () => {
    rig = await startRig();
    reception = await rig.startWorker({ env: { HANDOFF_MODE: 'dispatch', HEALTH_PORT: '8091' } });
    billing = await rig.startWorker({
      env: { HANDOFF_MODE: 'dispatch', HEALTH_PORT: '8092' },
      args: ['--department', 'billing'],
    });
  });
  afterAll(async () => {
    await rig?.close();
    await dispose();
  });

  it('hands the call to the billing worker with the snapshot; reception leaves, billing says goodbye', async () => {
    const room = 'dispatch-1';
    await rig.dispatch(room);
    const caller = await rig.joinCaller(room);
    await caller.waitForHeard((h) => h.agent === 'reception', 30_000, 'greeting');

    await caller.say('Hello, I have a question about my bill');
    await caller.waitForHeard((h) => h.agent === 'billing', 40_000, 'billing, from its own worker');
    const restored = await billing.waitForLog(
      (l) => l.msg === 'call restored from snapshot' && l.room === room,
      1,
      'the billing worker restored the call from the payload',
      true,
    );
    expect(restored.resumed).toBe(false);
    await reception.waitForLog(
      (l) => l.msg === 'call handed over' && l.room === room,
      10_000,
      'the reception worker hands over and leaves',
      true,
    );

    await caller.say('That is all, goodbye');
    const goodbye = await caller.waitForHeard(
      (h) => /goodbye/i.test(h.line?.text ?? ''),
      30_000,
      'goodbye',
    );
    expect(goodbye.agent).toBe('billing');
  }, 240_000);
});
