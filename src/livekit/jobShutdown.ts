/**
 * The moment this job is asked to stop (the worker draining on SIGTERM, or closing), seen from
 * inside the job process.
 *
 * @livekit/agents 1.9 closes the job's AgentSession before it runs `ctx.addShutdownCallback`
 * callbacks, so a goodbye spoken from one reaches nobody (the live SIGTERM test showed the call
 * ending as "session closed"). The worker tells a job process to stop with the IPC message
 * `{ case: 'shutdownRequest' }` (ipc/message.ts); the SDK then waits up to 15 s for the job's
 * entry function before it closes the session. So the entry listens here, ends the call through
 * the machine (goodbye, `end`), and returns only once the call has ended.
 */

/** Call `listener` when the worker asks this job process to stop; returns the unsubscribe. */
export function onShutdownRequest(listener: () => void): () => void {
  const handler = (message: unknown) => {
    if ((message as { case?: unknown } | null)?.case === 'shutdownRequest') listener();
  };
  process.on('message', handler);
  return () => process.off('message', handler);
}
