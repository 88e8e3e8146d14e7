/**
 * The worker's watch over its job processes (src/livekit/jobWatch.ts): a real child process reports
 * its call over the worker's unix socket; killed before its call is over, it is a lost call;
 * one that said its call was over is not.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { type WatchedJob, watchJobProcesses } from '../src/livekit/jobWatch.js';

const JOB: WatchedJob = { room: 'room-1', agentName: 'agent', metadata: '{"a":1}' };

/** A job process: reports JOB to the socket at `path`, optionally says it is over, then waits. */
function jobProcess(path: string, over: boolean) {
  const code = `
    import { reportJobToWorker } from ${JSON.stringify(join(import.meta.dirname, '..', 'src', 'livekit', 'jobWatch.ts'))};
    const watched = reportJobToWorker(${JSON.stringify(JOB)}, ${JSON.stringify(path)});
    await watched.reported;
    ${over ? 'watched.over();' : ''}
    process.stdout.write('reported\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const reported = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  return { child, reported };
}

describe('job watch', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('reports a job process killed before its call is over, with its call', async () => {
    const lost: WatchedJob[] = [];
    let onLost!: () => void;
    const lostOnce = new Promise<void>((resolve) => (onLost = resolve));
    const path = join(tmpdir(), `job-watch-test-${process.pid}-1.sock`);
    ({ close } = await watchJobProcesses({
      path,
      onLost: (job) => {
        lost.push(job);
        onLost();
      },
    }));
    const { child, reported } = jobProcess(path, false);
    await reported;
    child.kill('SIGKILL');
    await lostOnce;
    expect(lost).toEqual([JOB]);
  });

  it('leaves alone a job process whose call was over', async () => {
    const lost: WatchedJob[] = [];
    let seen: () => void = () => {};
    const path = join(tmpdir(), `job-watch-test-${process.pid}-2.sock`);
    ({ close } = await watchJobProcesses({
      path,
      onLost: (job) => {
        lost.push(job);
        seen();
      },
    }));
    const ended = jobProcess(path, true);
    await ended.reported;
    const endedExit = once(ended.child, 'exit');
    ended.child.kill('SIGKILL');
    await endedExit;
    // Then a lost one: once it is reported, the first one's closed socket was seen long before.
    const lostSeen = new Promise<void>((resolve) => (seen = resolve));
    const killed = jobProcess(path, false);
    await killed.reported;
    killed.child.kill('SIGKILL');
    await lostSeen;
    expect(lost).toEqual([JOB]);
  });
});
