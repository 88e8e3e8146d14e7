/**
 * The worker leaves no processes behind (src/livekit/workerExit.ts). The worker runs for real (the SDK's
 * CLI, its inference process and idle job processes) against a LiveKit address nothing listens
 * on, so it stays in its connect loop; no server is needed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { freeTcpPort } from '../src/livekit/freePort.js';
import { descendantsOf } from '../src/livekit/workerExit.js';

const ROOT = join(import.meta.dirname, '..');
const HAS_PROC = existsSync('/proc/self/stat');

/** Polls `check` every 50 ms until it returns a value, or fails after `ms`. */
async function waitFor<T>(what: string, ms: number, check: () => T | undefined): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

const isAlive = (pid: number) => existsSync(`/proc/${pid}`) && !isZombie(pid);
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Resolves when the process prints a line containing `text`. */
function lineContaining(worker: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve) => {
    const lines = createInterface({ input: worker.stdout! });
    lines.on('line', (line) => {
      if (line.includes(text)) {
        lines.close();
        resolve();
      }
    });
  });
}

let worker: ChildProcess | undefined;
afterEach(() => {
  if (worker?.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
});

describe.skipIf(!HAS_PROC)('worker exit', () => {
  it('a stop signal during start-up, then another: exits and leaves no process behind', async () => {
    worker = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src', 'main.ts'), 'start', '--log-level', 'debug'],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          LIVEKIT_URL: `ws://127.0.0.1:${await freeTcpPort()}`,
          LIVEKIT_API_KEY: 'devkey',
          LIVEKIT_API_SECRET: 'secret',
          OPENAI_API_KEY: 'unused',
          OPENAI_BASE_URL: '',
          HEALTH_PORT: String(await freeTcpPort()),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = once(worker, 'exit');
    const pid = worker.pid!;

    // The SDK forks its inference process first, and logs "starting worker" once it is ready.
    const inference = await waitFor('the inference process', 60_000, () =>
      descendantsOf(pid).find((p) => commandLine(p).includes('inference_proc')),
    );
    const heard = lineContaining(worker, 'SIGTERM received in CLI');
    worker.kill('SIGTERM');
    await heard;
    await waitFor('an idle job process', 60_000, () =>
      descendantsOf(pid).find((p) => commandLine(p).includes('job_proc')),
    );
    const started = descendantsOf(pid);
    expect(started).toContain(inference);

    worker.kill('SIGTERM');
    await exited;

    // The SDK's children give up on an orphaned parent after 15 s; well before that, none is left.
    const left = await waitFor("the worker's processes to end", 5_000, () => {
      const alive = started.filter(isAlive);
      return alive.length === 0 ? alive : undefined;
    }).catch(() => started.filter(isAlive).map((p) => `${p} ${commandLine(p)}`));
    expect(left).toEqual([]);
  }, 120_000);

  it('descendantsOf finds children and grandchildren', async () => {
    const parent = spawn('sh', ['-c', 'sleep 30 & sleep 30 & wait'], { stdio: 'ignore' });
    const found = await waitFor('two children of sh', 10_000, () => {
      const pids = descendantsOf(process.pid);
      const sleeps = pids.filter((p) => commandLine(p).startsWith('sleep 30'));
      return sleeps.length === 2 ? { pids, sleeps } : undefined;
    });
    expect(found.pids).toContain(parent.pid);
    for (const sleep of found.sleeps) process.kill(sleep, 'SIGKILL');
    await once(parent, 'exit');
  });
});
