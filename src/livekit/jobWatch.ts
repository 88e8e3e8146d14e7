/**
 * Crash recovery: the worker notices that a job process died in the middle of its call and
 * dispatches the room again, so a new job resumes the call from the room's sealed snapshot
 * (worker.ts, `restorationFor`) without a second greeting.
 *
 * Nobody else does it. LiveKit's server (v1.13.5) marks the job of an agent that left the room
 * `JS_FAILED` ("agent worker left the room", pkg/agent/worker.go TerminateJob) and launches jobs
 * only when a room is created or a dispatch is added (pkg/rtc/room.go launchRoomAgents); when a
 * whole worker disconnects it drops its jobs with a "TODO update dispatch state"
 * (pkg/service/agentservice.go deregisterJob). And @livekit/agents 1.9's process pool forgets
 * a dead job process without telling anyone.
 *
 * How the worker knows: each job process connects to a unix socket of its worker (named after
 * the worker's pid, which is the job process's parent) and says which call it runs; when the
 * call is over it says so. A socket that closes before that (SIGKILL, out of memory, a crash)
 * is a lost call: the kernel closes it for the dead process, so nothing polls.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';

/** What a job process reports about its call. */
export interface WatchedJob {
  room: string;
  agentName: string;
  metadata: string;
}

/** The socket of the worker whose pid is `workerPid`. */
export function jobWatchPath(workerPid: number): string {
  return join(tmpdir(), `call-worker-${workerPid}.sock`);
}

export interface JobWatchOptions {
  /** A job process died before its call was over. */
  onLost(job: WatchedJob): void;
  path?: string;
}

/** The worker's side: listen for its job processes. `close()` stops it (and on shutdown). */
export async function watchJobProcesses(options: JobWatchOptions): Promise<{
  path: string;
  close(): Promise<void>;
}> {
  const path = options.path ?? jobWatchPath(process.pid);
  rmSync(path, { force: true }); // left by a worker with the same pid that was killed
  let closing = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    let job: WatchedJob | undefined;
    let over = false;
    let pending = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        try {
          const message = JSON.parse(line) as { job?: WatchedJob; over?: boolean };
          if (message.job) job = message.job;
          if (message.over) over = true;
        } catch {
          // not one of ours
        }
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      if (job && !over && !closing) options.onLost(job);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  server.unref();
  return {
    path,
    async close() {
      closing = true;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(path, { force: true });
    },
  };
}

/**
 * The job's side: tell the worker (this process's parent) which call runs here. `over()` when
 * the call has ended or moved on; until then, this process dying is a lost call. Without a
 * worker listening (another runner, a test) it does nothing.
 */
export function reportJobToWorker(
  job: WatchedJob,
  path = jobWatchPath(process.ppid),
): { over(): void; reported: Promise<void> } {
  const socket = createConnection(path);
  socket.on('error', () => {});
  socket.unref();
  const reported = new Promise<void>((resolve) => {
    socket.write(`${JSON.stringify({ job })}\n`, () => resolve());
  });
  let done = false;
  return {
    /** The worker has been told (never resolves without a worker listening). */
    reported,
    over() {
      if (done) return;
      done = true;
      socket.end(`${JSON.stringify({ over: true })}\n`);
    },
  };
}

/** How often one room is dispatched again: a call that keeps killing its job is not retried forever. */
const MAX_REDISPATCHES_PER_ROOM = 2;

/**
 * The worker's crash recovery: a call whose job process died is dispatched again to the same
 * agent name, with the same metadata (LiveKit offers it to this worker or another one).
 */
export async function redispatchLostCalls(
  dispatch: (job: WatchedJob) => Promise<unknown>,
  log: Pick<Logger, 'warn' | 'error'>,
): Promise<{ close(): Promise<void> }> {
  const redispatched = new Map<string, number>();
  const watching = watchJobProcesses({
    onLost: (job) => {
      const count = (redispatched.get(job.room) ?? 0) + 1;
      redispatched.set(job.room, count);
      if (count > MAX_REDISPATCHES_PER_ROOM) {
        log.error({ room: job.room }, 'job process lost again; not dispatching the call again');
        return;
      }
      log.warn({ room: job.room }, 'job process lost mid-call; dispatching the call again');
      dispatch(job).catch((error: unknown) =>
        log.error({ room: job.room, err: error }, 'could not dispatch the lost call again'),
      );
    },
  });
  // Without the socket (an unwritable temp directory) the worker still takes calls.
  return watching.catch((error: unknown) => {
    log.error({ err: error }, 'crash recovery is off: the job watch socket could not be opened');
    return { close: async () => {} };
  });
}
