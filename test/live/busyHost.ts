/**
 * A busy host, as a shared machine is: processes at the lowest priority that take whatever CPU
 * is idle. They slow nothing that matters (nice 19), but the host's CPU use reads near 100%,
 * which is what made LiveKit stop offering calls to a worker that reported host CPU as its load.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';

export async function withBusyHost<T>(run: () => Promise<T>): Promise<T> {
  const spinners: ChildProcess[] = [];
  for (let i = 0; i < availableParallelism(); i++) {
    spinners.push(
      spawn('nice', ['-n', '19', process.execPath, '-e', 'for (;;) {}'], { stdio: 'ignore' }),
    );
  }
  try {
    return await run();
  } finally {
    await Promise.all(
      spinners.map((spinner) => {
        const exited = once(spinner, 'exit');
        spinner.kill('SIGKILL');
        return exited;
      }),
    );
  }
}
