/**
 * The load the worker reports to LiveKit: calls taken, scaled so that LiveKit's target load is
 * reached exactly when the worker is full (the live hang-up test shows why host CPU is wrong).
 */
import { describe, expect, it } from 'vitest';
import { LIVEKIT_TARGET_LOAD, callLoad, callLoadOptions } from '../src/livekit/workerLoad.js';

describe('worker load', () => {
  it('stays below LiveKit target until the worker holds its maximum of calls', () => {
    expect(callLoad(0, 4)).toBe(0);
    expect(callLoad(3, 4)).toBeLessThan(LIVEKIT_TARGET_LOAD);
    expect(callLoad(4, 4)).toBe(LIVEKIT_TARGET_LOAD);
    expect(callLoad(9, 4)).toBeLessThanOrEqual(1);
  });

  it('reads the calls the server is running, not the host CPU', async () => {
    const { loadFunc, loadThreshold } = callLoadOptions(2);
    const server = { activeJobs: [{}, {}] } as never;
    expect(await loadFunc(server)).toBeGreaterThanOrEqual(loadThreshold);
    expect(await loadFunc({ activeJobs: [{}] } as never)).toBeLessThan(loadThreshold);
  });
});
