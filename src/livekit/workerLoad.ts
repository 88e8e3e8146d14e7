/**
 * The load this worker reports to LiveKit: its share of the calls it may take at once.
 *
 * The SDK's default reports the whole host's CPU use. LiveKit's server offers a job only to a
 * worker whose reported load is below its target (agents.target_load, 0.7 by default), and a
 * dispatch that finds no such worker is dropped, not retried. On a busy host (a shared machine,
 * or the CPU burst of job processes tearing down and fresh ones prewarming after callers hang
 * up) the CPU figure sits at 0.7-1.0, so calls dispatched then were never answered (issue 17).
 * Reporting calls instead keeps the worker available until it is actually full.
 */
import type { AgentServer } from '@livekit/agents';

/** LiveKit server's default agents.target_load; also the SDK's production load threshold. */
export const LIVEKIT_TARGET_LOAD = 0.7;

/**
 * Load for `activeCalls` of `maxCalls`, scaled so that the server's target is reached exactly
 * when the worker is full: available below `maxCalls`, full at it.
 */
export function callLoad(activeCalls: number, maxCalls: number): number {
  return Math.min(1, (activeCalls / maxCalls) * LIVEKIT_TARGET_LOAD);
}

/** ServerOptions for a worker that takes up to `maxCalls` calls at once. */
export function callLoadOptions(maxCalls: number) {
  return {
    loadFunc: async (server: AgentServer) => callLoad(server.activeJobs.length, maxCalls),
    // Full exactly when callLoad reaches the server's target.
    loadThreshold: LIVEKIT_TARGET_LOAD,
  };
}
