/**
 * A room-less, text-only call: the production AgentSession, bridge, machine, agents and tools,
 * with the scripted model (./model.ts) or any other `llm.LLM`, and an observer that records what
 * the call does. Only the room and the model are missing.
 */
import type { llm } from '@livekit/agents';
import { voice } from '@livekit/agents';
import type { Flow } from '../../machines/flow.js';
import type { AgentName, CallerInfo } from '../../machines/callMachine.js';
import { DEFAULT_REPLY_POLICY } from '../../machines/callMachine.js';
import { CallBridge, type CallObserver } from '../../src/call/bridge.js';
import type { HandoverTransport, RestorePoint, SnapshotStore } from '../../src/call/handover.js';
import type { KeypadMap } from '../../src/call/keypad.js';
import type { CallTelephony } from '../../src/livekit/telephony.js';
import type { AnyFunctionTool } from '../../src/call/tools.js';
import type { HandoffOpening } from '../../src/call/fastHandoff.js';
import type { Config } from '../../src/config.js';
import { callSessionOptions } from '../../src/models/index.js';
import type { WireObserver } from '../../src/models/openaiWire.js';
import { DEFAULT_REPLY_DEADLINES } from '../../src/call/replyGuard.js';
import { ScriptedLLM } from '../../src/models/scriptedLlm.js';
import { type ScriptEntry, scriptedBrain } from './model.js';

export type ObservedEvent =
  | { type: 'transition'; from: string; to: string; event: string }
  | { type: 'refusal'; code: string; to?: string }
  | { type: 'agent'; agent: AgentName }
  | { type: 'say'; agent: AgentName; text: string }
  | { type: 'caller'; text: string }
  | { type: 'dispatch'; agent: AgentName; bytes: number }
  | { type: 'end'; reason: string };

export function recordingObserver(events: ObservedEvent[], onEvent = () => {}): CallObserver {
  const push = (event: ObservedEvent) => {
    events.push(event);
    onEvent();
  };
  return {
    transition: (t) => push({ type: 'transition', ...t }),
    refusal: (r) => push({ type: 'refusal', code: r.code, ...(r.to ? { to: r.to } : {}) }),
    agent: (agent) => push({ type: 'agent', agent }),
    say: (agent, text) => push({ type: 'say', agent, text }),
    caller: (text) => push({ type: 'caller', text }),
    dispatch: (agent, bytes) => push({ type: 'dispatch', agent, bytes }),
    end: (reason) => push({ type: 'end', reason }),
  };
}

export interface TestCallOptions {
  /** The call flow; default: reception, billing, support, sales. */
  flow?: Flow;
  script?: Record<string, ScriptEntry>;
  /** Use this model instead of the scripted one (e.g. the real OpenAI plugin). */
  llm?: llm.LLM;
  maxHandoffs?: number;
  caller?: CallerInfo;
  extraTools?: (agent: AgentName) => AnyFunctionTool[];
  observer?: CallObserver;
  speech?: 'say' | 'generate';
  telephony?: CallTelephony;
  humanNumbers?: Partial<Record<AgentName, string>>;
  keypad?: KeypadMap;
  handover?: HandoverTransport;
  restore?: RestorePoint;
  snapshotStore?: SnapshotStore;
  /** Deadlines and failure policy; tests default to the production values. */
  reply?: Partial<Config['reply']>;
  wire?: WireObserver;
  bridgeLine?: boolean;
  opening?: HandoffOpening;
}

/** A room-less, text-only call with the production bridge, greeted and ready for the caller. */
export async function startTestCall(options: TestCallOptions = {}) {
  const model = options.llm ?? new ScriptedLLM(scriptedBrain(options.script));
  const reply: Config['reply'] = {
    deadlines: { ...DEFAULT_REPLY_DEADLINES, ...options.reply?.deadlines },
    policy: { ...DEFAULT_REPLY_POLICY, ...options.reply?.policy },
  };
  const session = new voice.AgentSession({ llm: model, ...callSessionOptions({ reply }) });
  const events: ObservedEvent[] = [];
  const waiters = new Set<() => void>();
  const recorder = recordingObserver(events, () => waiters.forEach((check) => check()));
  const bridge = new CallBridge({
    session,
    ...(options.flow ? { flow: options.flow } : {}),
    companyName: 'Acme',
    maxHandoffs: options.maxHandoffs ?? 4,
    observer: mergeObservers(recorder, options.observer),
    reply,
    ...(options.wire ? { wire: options.wire } : {}),
    ...(options.bridgeLine !== undefined ? { bridgeLine: options.bridgeLine } : {}),
    ...(options.opening ? { opening: options.opening } : {}),
    ...(options.extraTools ? { extraTools: options.extraTools } : {}),
    ...(options.speech ? { speech: options.speech } : {}),
    ...(options.telephony ? { telephony: options.telephony } : {}),
    ...(options.humanNumbers ? { humanNumbers: options.humanNumbers } : {}),
    ...(options.keypad ? { keypad: options.keypad } : {}),
    ...(options.handover ? { handover: options.handover } : {}),
    ...(options.restore ? { restore: options.restore } : {}),
    ...(options.snapshotStore ? { snapshotStore: options.snapshotStore } : {}),
  });
  await bridge.start(options.caller ? { caller: options.caller } : {});
  await bridge.settled();
  return {
    session,
    bridge,
    model,
    events,
    /** The caller says `text`; resolves when the agents have finished answering. */
    say: (text: string) => session.run({ userInput: text }).wait(),
    agents: () => events.filter((e) => e.type === 'agent').map((e) => e.agent),
    /** Resolve when `ready()` holds, re-checked on every observed call event. */
    until: (ready: () => boolean, what = 'condition', boundMs = 5_000) =>
      new Promise<void>((resolve, reject) => {
        if (ready()) return resolve();
        const check = () => {
          if (!ready()) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`never saw ${what}`));
        }, boundMs);
        waiters.add(check);
      }),
    said: (agent: AgentName) =>
      events
        .filter((e) => e.type === 'say' && e.agent === agent)
        .map((e) => (e as { text: string }).text),
  };
}

/** Both observers hear every kind either of them listens to. */
export function mergeObservers(a: CallObserver, b: CallObserver | undefined): CallObserver {
  if (!b) return a;
  const merged: CallObserver = {};
  const kinds = new Set([...Object.keys(a), ...Object.keys(b)] as (keyof CallObserver)[]);
  for (const key of kinds) {
    merged[key] = ((...args: unknown[]) => {
      (a[key] as ((...x: unknown[]) => void) | undefined)?.(...args);
      (b[key] as ((...x: unknown[]) => void) | undefined)?.(...args);
    }) as never;
  }
  return merged;
}
