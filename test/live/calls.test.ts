/**
 * Many calls on one worker, and a deploy in the middle of one: 5 calls one after another and
 * 3 at once are each answered and end clean (the caller says goodbye, the job ends, its process
 * exits; processes do not pile up); SIGTERM during a call ends it through the machine (reason
 * `shutdown`, a goodbye the caller hears) and the worker exits within its drain time.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dispose } from '@livekit/rtc-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeLive } from './gate.js';
import { type Rig, type WorkerProcess, startRig, within } from './rig.js';

/** The worker's drain time in this test: SIGTERM lets a call go on this long. */
const DRAIN_TIMEOUT_MS = 3_000;

describeLive('many calls on a live worker', () => {
  let rig: Rig;
  let worker: WorkerProcess;
  let calls = 0;

  beforeAll(async () => {
    rig = await startRig();
    worker = await rig.startWorker({ env: { DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS) } });
  });
  afterAll(async () => {
    await rig?.close();
    await dispose();
  });

  async function processExits(pid: number, ms: number, what: string) {
    // tail --pid exits when that process does: an exit event for a process that is not ours.
    const watcher = spawn('tail', [`--pid=${pid}`, '-f', '/dev/null'], { stdio: 'ignore' });
    try {
      await within(ms, what, once(watcher, 'exit'));
    } finally {
      watcher.kill();
    }
  }

  /** One whole short call: greeting heard, goodbye said, the job ends and its process exits. */
  async function shortCall() {
    const room = `many-${++calls}`;
    await rig.dispatch(room);
    const caller = await rig.joinCaller(room);
    await caller.waitForHeard((h) => h.agent === 'reception', 40_000, `${room}: greeting`);
    const ended = worker.waitForLog(
      (l) => l.msg === 'call ended' && l.room === room,
      40_000,
      `${room}: the call ends after the goodbye`,
    );
    await caller.say('That is all, goodbye');
    const end = await ended;
    await caller.agentLeft(10_000);
    await processExits(await worker.jobPid(room), 10_000, `${room}: its job process exits`);
    await caller.hangUp();
    return end.reason;
  }

  it('5 calls one after another are answered and end clean', async () => {
    for (let i = 0; i < 5; i++) expect(await shortCall()).toBe('caller said goodbye');
    expect(worker.jobProcesses().length).toBeLessThanOrEqual(3);
  });

  it('3 calls at once are answered and end clean', async () => {
    const reasons = await Promise.all([shortCall(), shortCall(), shortCall()]);
    expect(reasons).toEqual(['caller said goodbye', 'caller said goodbye', 'caller said goodbye']);
    expect(worker.jobProcesses().length).toBeLessThanOrEqual(3);
  });

  it('SIGTERM during a call: the call ends through the machine with a goodbye, the worker exits in its drain time', async () => {
    const room = 'sigterm-1';
    await rig.dispatch(room);
    const caller = await rig.joinCaller(room);
    await caller.waitForHeard((h) => h.agent === 'reception', 40_000, 'greeting');
    const goodbye = caller.waitForHeard(
      (h) => /goodbye/i.test(h.line?.text ?? ''),
      DRAIN_TIMEOUT_MS + 20_000,
      'the goodbye after SIGTERM',
    );
    const signalledAt = performance.now();
    worker.child.kill('SIGTERM');
    const ended = await worker.waitForLog(
      (l) => l.msg === 'call ended' && l.room === room,
      DRAIN_TIMEOUT_MS + 10_000,
      'the call ends after SIGTERM',
    );
    expect(ended.reason).toBe('shutdown');
    await goodbye;
    const code = await within(DRAIN_TIMEOUT_MS + 20_000, 'the worker exits', worker.exited);
    console.log(
      'worker exited',
      Math.round(performance.now() - signalledAt),
      'ms after SIGTERM, code',
      code,
    );
    expect(code).toBe(143);
  });
});
