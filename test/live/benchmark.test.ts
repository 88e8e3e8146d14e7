/**
 * The project's worker against a minimal worker written the way LiveKit documents handoffs
 * (bench/nativeWorker.ts), on the same stack, models, voices and measurement: the greeting of the
 * first call after a start and of a later call (dispatch to greeting heard), a handoff (caller's
 * end of speech to the specialist's voice) and model requests per call. Written to
 * bench/live-figures.json, not asserted: issue 17 asks the project's greetings to be within 1.3x.
 */
import { join } from 'node:path';
import { dispose } from '@livekit/rtc-node';
import { afterAll, beforeAll, it } from 'vitest';
import { ms, recordFigures } from './figures.js';
import { WORKER_ENTRY, describeLive } from './gate.js';
import { type Rig, startRig } from './rig.js';

const NATIVE_ENTRY = join(WORKER_ENTRY, '..', '..', 'bench', 'nativeWorker.js');

describeLive('benchmark: the project worker and a documented-pattern worker', () => {
  let rig: Rig;
  const results: Record<string, { firstGreetingMs: number; laterGreetingMs: number }> = {};

  beforeAll(async () => {
    rig = await startRig();
  });
  afterAll(async () => {
    await rig?.close();
    await dispose();
  });

  async function measure(kind: 'project' | 'native', entry: string) {
    const worker = await rig.startWorker({ entry });
    // The first call after the start: the greeting, then a hang-up.
    const first = `bench-${kind}-1`;
    let dispatchedAt = await rig.dispatch(first);
    const firstCaller = await rig.joinCaller(first);
    const firstGreeting = await firstCaller.waitForHeard(
      (h) => h.agent === 'reception',
      30_000,
      `${kind}: first greeting`,
    );
    const firstGreetingMs = firstGreeting.startedAt - dispatchedAt;
    await firstCaller.hangUp();

    // A later call: greeting, a handoff to billing, goodbye.
    const requestsBefore = rig.model.requests.length;
    const later = `bench-${kind}-2`;
    dispatchedAt = await rig.dispatch(later);
    const caller = await rig.joinCaller(later);
    const greeting = await caller.waitForHeard(
      (h) => h.agent === 'reception',
      30_000,
      `${kind}: later greeting`,
    );
    await caller.say('Hello, I have a question about my bill');
    const asked = caller.lastSpeechEndedAt;
    const billing = await caller.waitForHeard(
      (h) => h.agent === 'billing',
      30_000,
      `${kind}: billing`,
    );
    await caller.say('That is all, goodbye');
    await caller.waitForHeard(
      (h) => /goodbye/i.test(h.line?.text ?? ''),
      30_000,
      `${kind}: goodbye`,
    );
    await caller.hangUp(); // the baseline's agent stays in the room after its goodbye
    const figures = {
      firstCallDispatchToGreetingHeardMs: ms(firstGreetingMs),
      laterCallDispatchToGreetingHeardMs: ms(greeting.startedAt - dispatchedAt),
      handoffCallerEndOfSpeechToBillingVoiceMs: ms(billing.startedAt - asked),
      modelRequestsPerCall: rig.model.requests.length - requestsBefore,
    };
    recordFigures(`benchmark: ${kind} worker`, figures);
    results[kind] = {
      firstGreetingMs: figures.firstCallDispatchToGreetingHeardMs,
      laterGreetingMs: figures.laterCallDispatchToGreetingHeardMs,
    };
    await worker.stop('SIGKILL');
  }

  it('measures the documented-pattern worker, then the project worker, the same way', async () => {
    await measure('native', NATIVE_ENTRY);
    await measure('project', WORKER_ENTRY);
    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
    recordFigures('benchmark: project / native', {
      firstGreeting: ratio(results.project!.firstGreetingMs, results.native!.firstGreetingMs),
      laterGreeting: ratio(results.project!.laterGreetingMs, results.native!.laterGreetingMs),
    });
  }, 300_000);
});
