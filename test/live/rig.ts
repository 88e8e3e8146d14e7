/**
 * The live rig: a real LiveKit server and Redis (inside the private network namespace), the
 * local speech server (flite / pocketsphinx behind OpenAI's audio protocols) forwarding chat
 * completions to the scripted model server, and the project's worker started the way `npm start`
 * starts it (`node dist/src/main.js start`, the real `cli.runApp` path) as a child process.
 *
 *   const rig = await startRig();
 *   const worker = await rig.startWorker();          // resolves once registered
 *   await rig.dispatch('room-1');                     // AgentDispatchClient.createDispatch
 *   const caller = await rig.joinCaller('room-1');    // @livekit/rtc-node participant
 *   await caller.waitForHeard((h) => h.agent === 'reception', 5_000, 'greeting');
 *   await caller.say('I have a question about my bill');
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dispose } from '@livekit/rtc-node';
import { AgentDispatchClient, RoomServiceClient } from 'livekit-server-sdk';
import { afterAll, beforeAll } from 'vitest';
import type { AgentName } from '../../machines/callMachine.js';
import { DEFAULT_FLITE_VOICES } from '../../src/speech/flite.js';
import {
  type SpeechServer,
  type SpeechServerHooks,
  startSpeechServer,
} from '../../src/speech/server.js';
import { loadStackConfig } from '../../src/config.js';
import { type LocalStack, findServerBin, startLocalStack } from '../../src/stack/localStack.js';
import { offlineBrain } from '../../src/models/offlineBrain.js';
import type { Brain } from '../../src/models/scriptedLlm.js';
import { type OpenAICompatibleServer, startOpenAICompatibleServer } from '../fakes/openaiServer.js';
import { Caller, type CallerOptions, type HeardLine } from './caller.js';
import { WORKER_ENTRY } from './gate.js';

const ROOT = join(import.meta.dirname, '..', '..');
export const AGENT_NAME = 'live-agent';
export const COMPANY = 'Acme';

/** What callers say in these tests: the recognition grammar of the speech server. */
export const CALLER_LINES = [
  'Hello, I have a question about my bill',
  'I was charged twice this month',
  'Also the app keeps crashing when I open it',
  'That is all, goodbye',
  'Hello, can you hear me',
];

/** The agents' default voices (config.ts) and the flite speaker each is synthesised with. */
const AGENT_VOICES: Record<AgentName, string> = {
  reception: 'alloy',
  billing: 'sage',
  support: 'echo',
  sales: 'shimmer',
};
export const AGENT_BY_FLITE = Object.fromEntries(
  Object.entries(AGENT_VOICES).map(([agent, voice]) => [DEFAULT_FLITE_VOICES[voice]!, agent]),
) as Record<string, AgentName>;

/** The console's offline brain, plus a line for a job that resumes after a crash. */
const liveBrain: Brain = (request) =>
  request.instructions.includes('Resuming:')
    ? { text: 'Sorry, we were cut off for a moment. I am still here with you.' }
    : offlineBrain(request);

/** Resolve within `ms` or fail with a message naming what did not happen. */
export async function within<T>(
  ms: number,
  what: string | (() => string),
  promise: Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${ms} ms: ${typeof what === 'string' ? what : what()}`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface LogLine {
  msg?: string;
  level?: number;
  [key: string]: unknown;
}

/** The worker as a user runs it: `node --import tsx src/main.ts start`, a child process. */
export class WorkerProcess {
  readonly logs: LogLine[] = [];
  readonly exited: Promise<number | null>;
  #listeners = new Set<(line: LogLine) => void>();

  constructor(readonly child: ChildProcess) {
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const raw of lines) {
        let line: LogLine;
        try {
          line = JSON.parse(raw) as LogLine;
        } catch {
          line = { msg: raw };
        }
        this.logs.push(line);
        for (const listener of this.#listeners) listener(line);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      if (process.env.LIVE_DEBUG) process.stderr.write(chunk);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The job process that took the call in `room` (it logged the caller joining). */
  async jobPid(room: string): Promise<number> {
    const joined = await this.waitForLog(
      (l) => l.msg === 'caller joined' && l.room === room,
      1,
      `the job of the call in ${room}`,
      true,
    );
    return joined.pid as number;
  }

  /** The first log line (from now, or already logged when `past`) that matches. */
  waitForLog(match: (line: LogLine) => boolean, ms: number, what: string, past = false) {
    const found = past ? this.logs.find(match) : undefined;
    if (found) return Promise.resolve(found);
    let listener!: (line: LogLine) => void;
    const seen = new Promise<LogLine>((resolve) => {
      listener = (line) => {
        if (match(line)) resolve(line);
      };
      this.#listeners.add(listener);
    });
    const exited = this.exited.then((code) => {
      throw new Error(`worker exited (code ${code}) while waiting for ${what}`);
    });
    return within(ms, what, Promise.race([seen, exited])).finally(() =>
      this.#listeners.delete(listener),
    );
  }

  /** Child processes of the worker (job processes and idle ones), with their CPU ticks. */
  jobProcesses(): { pid: number; ticks: number }[] {
    const out: { pid: number; ticks: number }[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (Number(fields[1]) !== this.pid) continue;
        out.push({ pid: Number(entry), ticks: Number(fields[11]) + Number(fields[12]) });
      } catch {
        // gone meanwhile
      }
    }
    return out;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', ms = 30_000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    try {
      return await within(ms, 'worker to exit', this.exited);
    } catch (error) {
      this.child.kill('SIGKILL');
      throw error;
    }
  }
}

export interface WorkerOptions {
  /** Settings on top of the rig's (LiveKit, OpenAI base URL, agent name). */
  env?: Record<string, string>;
  /** After `start`, e.g. ['--department', 'billing']. */
  args?: string[];
  /** Another compiled worker (the benchmark's baseline); default the project's. */
  entry?: string;
}

export interface Rig {
  stack: LocalStack;
  model: OpenAICompatibleServer;
  speech: SpeechServer;
  dispatcher: AgentDispatchClient;
  rooms: RoomServiceClient;
  startWorker(options?: WorkerOptions): Promise<WorkerProcess>;
  dispatch(room: string, metadata?: string, agentName?: string): Promise<number>;
  joinCaller(room: string, options?: CallerOptions): Promise<Caller>;
  /** The workers' log lines at info and above (the last `last`), one JSON line each. */
  workerLogs(last?: number): string;
  close(): Promise<void>;
}

export interface RigOptions {
  /** The speech server's per-request hooks (a fault script: test/speechFaults.ts). */
  speechHooks?: SpeechServerHooks;
}

export async function startRig({ speechHooks }: RigOptions = {}): Promise<Rig> {
  const settings = loadStackConfig(process.env);
  const stack = await startLocalStack({
    serverBin: (await findServerBin(settings.serverBin))!,
    nodeIp: process.env.NETNS_NODE_IP ?? '10.99.0.1',
    livekitPort: settings.livekitPort,
    redisPort: settings.redisPort,
    ...(process.env.LIVE_SERVER_LOG
      ? { output: (source: string, chunk: Buffer) => process.stderr.write(`[${source}] ${chunk}`) }
      : {}),
  });
  const model = await startOpenAICompatibleServer(liveBrain);
  const speech = await startSpeechServer({
    phrases: CALLER_LINES,
    chat: { baseURL: model.url },
    ...(speechHooks ? { hooks: speechHooks } : {}),
  });
  const dispatcher = new AgentDispatchClient(stack.url, stack.apiKey, stack.apiSecret);
  const rooms = new RoomServiceClient(stack.url, stack.apiKey, stack.apiSecret);
  const workers: WorkerProcess[] = [];
  const callers: Caller[] = [];

  const rig: Rig = {
    stack,
    model,
    speech,
    dispatcher,
    rooms,
    async startWorker({ env = {}, args = [], entry = WORKER_ENTRY } = {}) {
      const child = spawn(
        process.execPath,
        // `npm start`: the compiled worker (npm run build), so job processes start without tsx.
        [entry, 'start', ...args],
        {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
          env: {
            PATH: process.env.PATH ?? '',
            HOME: process.env.HOME ?? '/root',
            ...stack.env,
            OPENAI_BASE_URL: speech.url,
            OPENAI_API_KEY: 'local',
            AGENT_NAME: AGENT_NAME,
            COMPANY_NAME: COMPANY,
            LOG_LEVEL: 'info',
            ...env,
          },
        },
      );
      const worker = new WorkerProcess(child);
      workers.push(worker);
      await worker.waitForLog((l) => l.msg === 'registered worker', 60_000, 'worker registered');
      return worker;
    },
    async dispatch(room, metadata = '', agentName = AGENT_NAME) {
      await dispatcher.createDispatch(room, agentName, { metadata });
      return performance.now();
    },
    async joinCaller(room, options = {}) {
      const caller = await Caller.join(stack, room, speech, options);
      callers.push(caller);
      return caller;
    },
    workerLogs(last = Infinity) {
      const quiet = /VAD inference|event loop blocked/;
      return workers
        .flatMap((w) => w.logs.filter((l) => (l.level ?? 30) >= 30 && !quiet.test(l.msg ?? '')))
        .slice(-last)
        .map((l) => JSON.stringify(l).slice(0, 400))
        .join('\n');
    },
    async close() {
      if (process.env.LIVE_DEBUG) process.stderr.write(`${rig.workerLogs()}\n`);
      await Promise.allSettled(callers.map((c) => c.hangUp()));
      await Promise.allSettled(workers.map((w) => w.stop('SIGKILL', 10_000)));
      await speech.close();
      await model.close();
      await stack.stop();
    },
  };
  return rig;
}

/**
 * The rig and one worker for the tests of a `describe` block: started before them, closed after
 * (with rtc-node's FFI). Read `live.rig` and `live.worker` inside the tests.
 */
export function useRig(options: RigOptions & { worker?: WorkerOptions } = {}): {
  readonly rig: Rig;
  readonly worker: WorkerProcess;
} {
  let rig: Rig | undefined;
  let worker: WorkerProcess | undefined;
  beforeAll(async () => {
    rig = await startRig(options);
    worker = await rig.startWorker(options.worker);
  });
  afterAll(async () => {
    await rig?.close();
    await dispose();
  });
  return {
    get rig() {
      if (!rig) throw new Error('the rig is not started (read live.rig inside a test)');
      return rig;
    },
    get worker() {
      if (!worker) throw new Error('the worker is not started (read live.worker inside a test)');
      return worker;
    },
  };
}

/** A new call in `room`: the worker dispatched, a caller joined, reception's greeting heard. */
export async function greetedCall(
  rig: Rig,
  room: string,
  options: CallerOptions = {},
  ms = 30_000,
): Promise<{ caller: Caller; greeting: HeardLine }> {
  await rig.dispatch(room);
  const caller = await rig.joinCaller(room, options);
  const greeting = await caller.waitForHeard((h) => h.agent === 'reception', ms, 'greeting');
  return { caller, greeting };
}
