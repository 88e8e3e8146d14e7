/**
 * The house's own cost, without audio or models in the way:
 *
 * - orchestration per control event: a handoff request through the bridge (machine, decision,
 *   the new agent with its tools and brief, `session.updateAgent`, the crash-recovery snapshot)
 *   in a room-less text session, against a bare XState `actor.send` of the same event to the
 *   same machine (in a loop of its own, and paired with each request in the same call); the
 *   house's own share is each request less the SDK's `session.updateAgent` timed inside it;
 * - memory per call: N room-less sessions with the project's bridge started, against N native
 *   AgentSessions with LiveKit's documented agents (run in a child process with --expose-gc,
 *   one per variant and N, so nothing else is on the heap).
 *
 *   tsx bench/micro.ts orchestration [iterations]
 *   node --expose-gc --import tsx bench/micro.ts memory project|native N
 */
import { llm, voice } from '@livekit/agents';
import { createActor } from 'xstate';
import {
  type CallEvent,
  DEFAULT_MAX_HANDOFFS,
  type Department,
  callMachine,
} from '../machines/callMachine.js';
import { CallBridge } from '../src/call/bridge.js';
import { deriveSnapshotKey, snapshotSealer } from '../src/call/sealing.js';
import { RoomSnapshotStore } from '../src/livekit/roomHandover.js';
import { DEFAULT_FLOW } from '../machines/flow.js';
import { LINES } from '../src/call/lines.js';
import { createLogger, installAgentsLogger } from '../src/logging.js';
import { offlineBrain } from '../src/models/offlineBrain.js';
import { ScriptedLLM } from '../src/models/scriptedLlm.js';
import { NativeReception, NativeSpecialist } from './nativeAgents.js';

installAgentsLogger(createLogger({ level: 'error', pii: false, destination: 'stderr' }));

const COMPANY = 'Acme';

const SEALER = snapshotSealer(deriveSnapshotKey('bench secret'));

/**
 * The crash-recovery store every call of the worker has (the room's metadata, sealed), with the
 * room's API answering at once: its cost on the call's path is counted, not the network's.
 */
function roomStore(): RoomSnapshotStore {
  return new RoomSnapshotStore(
    { updateRoomMetadata: async () => ({}) as never },
    'bench-room',
    SEALER,
    () => {},
    2_000,
  );
}

function handoffTo(department: Department): CallEvent {
  return {
    type: 'handoff.requested',
    department,
    reason: 'a billing question',
    summary: 'Caller said: "I was charged twice"',
  };
}

const speeches = new WeakMap<voice.AgentSession, voice.SpeechHandle>();

/** The latest speech a session created (the SDK keeps its current one private). */
function lastSpeech(session: voice.AgentSession): voice.SpeechHandle | undefined {
  if (!speeches.has(session)) {
    session.on(voice.AgentSessionEventTypes.SpeechCreated, ({ speechHandle }) =>
      speeches.set(session, speechHandle),
    );
  }
  return speeches.get(session);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export interface Percentiles {
  p50: number;
  p99: number;
}

function summarise(samples: number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

/**
 * Microseconds per handoff event: through the bridge; a bare actor.send; and what a native
 * LiveKit tool does per handoff (build the next agent, with its tools, and `llm.handoff`).
 */
export interface OrchestrationResult {
  /** The whole request through the bridge, the SDK's agent switch included. */
  bridge: Percentiles;
  /** The house's own work: each request less the `session.updateAgent` call inside it. */
  house: Percentiles;
  /** The SDK's `session.updateAgent` inside each request (native's handoff makes the same call). */
  sdkSwitch: Percentiles;
  /** A bare `actor.send`, in a loop of its own. */
  bare: Percentiles;
  /** A bare `actor.send` of the same event just before each bridge request, in the same call. */
  barePaired: Percentiles;
  native: Percentiles;
}

export async function orchestration(iterations: number): Promise<OrchestrationResult> {
  const departments: Department[] = ['billing', 'support'];
  const warmup = Math.min(200, iterations);

  // Calls as they are: a handoff at a time, at most MAX_HANDOFFS per call, a new call after.
  const perCall = DEFAULT_MAX_HANDOFFS;
  const calls = Math.ceil((warmup + iterations) / perCall);

  // A bare actor: the machine alone, with its effects doing nothing.
  const bare: number[] = [];
  for (let c = 0; c < calls; c++) {
    const actor = createActor(callMachine, { input: { maxHandoffs: perCall } }).start();
    actor.send({ type: 'call.started' });
    actor.send({ type: 'greeting.spoken' });
    for (let i = 0; i < perCall; i++) {
      const event = handoffTo(departments[i % 2]!);
      const t0 = performance.now();
      actor.send(event);
      bare.push((performance.now() - t0) * 1000);
    }
    actor.stop();
  }

  // Native: the work of LiveKit's documented handoff tool, the new agent and its tools.
  const native: number[] = [];
  const options = { companyName: COMPANY, handoff: 'no-returns' as const, voices: () => undefined };
  for (let i = 0; i < calls * perCall; i++) {
    const department = departments[i % 2]!;
    const t0 = performance.now();
    llm.handoff({ agent: new NativeSpecialist(options, department, 'a billing question') });
    native.push((performance.now() - t0) * 1000);
  }

  // The project: the same events through the bridge, into a live (room-less) session.
  const through: number[] = [];
  const house: number[] = [];
  const sdkSwitch: number[] = [];
  const barePaired: number[] = [];
  for (let c = 0; c < calls; c++) {
    const session = new voice.AgentSession({ llm: new ScriptedLLM(offlineBrain) });
    lastSpeech(session);
    // The SDK's switch, timed inside each request: LiveKit's own handoff makes the same call.
    let switching = 0;
    const updateAgent = session.updateAgent.bind(session);
    session.updateAgent = (agent) => {
      const t0 = performance.now();
      try {
        updateAgent(agent);
      } finally {
        switching += performance.now() - t0;
      }
    };
    // A bare actor in step with the call, so both see the same moment of the same process.
    const paired = createActor(callMachine, { input: { maxHandoffs: perCall } }).start();
    paired.send({ type: 'call.started' });
    paired.send({ type: 'greeting.spoken' });
    let switched: (() => void) | null = null;
    const bridge = new CallBridge({
      session,
      companyName: COMPANY,
      maxHandoffs: perCall,
      snapshotStore: roomStore(),
      bridgeLine: false,
      observer: { agent: () => switched?.() },
    });
    await bridge.start();
    await bridge.settled();
    for (let i = 0; i < perCall; i++) {
      const event = handoffTo(departments[i % 2]!);
      const active = new Promise<void>((resolve) => (switched = resolve));
      const bare = () => {
        const b0 = performance.now();
        paired.send(event);
        barePaired.push((performance.now() - b0) * 1000);
      };
      // Whichever goes first after the wait finds the caches cold: they take turns.
      if (i % 2 === 0) bare();
      switching = 0;
      const t0 = performance.now();
      bridge.request(event);
      const elapsed = performance.now() - t0;
      through.push(elapsed * 1000);
      house.push((elapsed - switching) * 1000);
      sdkSwitch.push(switching * 1000);
      if (i % 2 === 1) bare();
      // The session switches agents after the request returns; the next one waits for that.
      await active;
      // The specialist's opening reply runs through the offline model; let it finish.
      await lastSpeech(session)?.waitForPlayout();
    }
    bridge.callerHungUp();
    await bridge.done;
    paired.stop();
  }
  const measured = (samples: number[]) => samples.slice(warmup);
  return {
    bridge: summarise(measured(through)),
    house: summarise(measured(house)),
    sdkSwitch: summarise(measured(sdkSwitch)),
    bare: summarise(measured(bare)),
    barePaired: summarise(measured(barePaired)),
    native: summarise(measured(native)),
  };
}

/** Heap bytes per call with `calls` calls open, after a full GC. */
export async function memory(variant: 'project' | 'native', calls: number): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  // One call first, closed, so module-level state (schemas, caches) is not counted per call.
  const open = async () => {
    const session = new voice.AgentSession({ llm: new ScriptedLLM(offlineBrain) });
    lastSpeech(session);
    if (variant === 'project') {
      const bridge = new CallBridge({
        session,
        companyName: COMPANY,
        maxHandoffs: 4,
        snapshotStore: roomStore(),
      });
      await bridge.start();
      await bridge.settled();
      return async () => {
        bridge.callerHungUp();
        await bridge.done;
      };
    }
    await session.start({
      agent: new NativeReception({
        companyName: COMPANY,
        handoff: 'no-returns',
        voices: () => undefined,
      }),
    });
    await lastSpeech(session)?.waitForPlayout(); // the greeting
    return () => session.close();
  };
  await (
    await open()
  )();
  await settle();
  const before = process.memoryUsage().heapUsed;
  const closers: (() => Promise<void>)[] = [];
  for (let i = 0; i < calls; i++) closers.push(await open());
  await settle();
  const after = process.memoryUsage().heapUsed;
  for (const close of closers) await close();
  return (after - before) / calls;
}

const [, , what, ...args] = process.argv;
if (what === 'orchestration') {
  process.stdout.write(`${JSON.stringify(await orchestration(Number(args[0] ?? 1000)))}\n`);
  process.exit(0);
} else if (what === 'memory') {
  const bytes = await memory(args[0] as 'project' | 'native', Number(args[1] ?? 1));
  process.stdout.write(`${JSON.stringify({ bytesPerCall: bytes })}\n`);
  process.exit(0);
}

/** For the greeting the native reception says, so both sides say the same. */
export const GREETING = LINES.greeting(COMPANY, DEFAULT_FLOW);
