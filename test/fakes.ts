/**
 * The one module of shared fakes. Doubles stand in only for what cannot run here:
 * - a scripted model (a "brain"), used in-process as an `llm.LLM` or served over HTTP by
 *   `startOpenAICompatibleServer`, which speaks OpenAI's chat-completions protocol (SSE streaming
 *   and tool calls) so the real `@livekit/agents-plugin-openai` LLM can be pointed at it.
 * Everything else (AgentSession, machine, tools, bridge) is the production code.
 */
import type { Flow } from '../machines/flow.js';
import { once } from 'node:events';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type llm, voice } from '@livekit/agents';
import type { AgentName, CallerInfo } from '../machines/callMachine.js';
import { CallBridge, type CallObserver } from '../src/call/bridge.js';
import type { HandoverTransport, RestorePoint, SnapshotStore } from '../src/call/handover.js';
import type { KeypadMap } from '../src/call/keypad.js';
import type { CallTelephony } from '../src/livekit/telephony.js';
import type { AnyFunctionTool } from '../src/call/tools.js';
import type { HandoffOpening } from '../src/call/fastHandoff.js';
import { createLogger, installAgentsLogger } from '../src/logging.js';
import type { Config } from '../src/config.js';
import { DEFAULT_REPLY_POLICY } from '../machines/callMachine.js';
import { callSessionOptions } from '../src/models/index.js';
import type { WireObserver } from '../src/models/openaiWire.js';
import { DEFAULT_REPLY_DEADLINES } from '../src/call/replyGuard.js';
import {
  type Brain,
  type ModelMessage,
  type ModelReply,
  type ModelRequest,
  ScriptedLLM,
} from '../src/models/scriptedLlm.js';
import { agentOf } from '../src/models/offlineBrain.js';

installAgentsLogger(
  createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', pii: true, destination: 'stderr' }),
);

export type ScriptEntry = ModelReply | ((request: ModelRequest) => ModelReply);

/** Call a tool the way an LLM would. */
export const call = (name: string, args: Record<string, unknown> = {}) => ({ name, args });

export const handoffTo = (department: string, reason = `${department} question`) =>
  call(`pass_control_to_${department}`, {
    reason,
    summary: `Summary for ${department}: ${reason}.`,
  });

/**
 * The shared scripted model. Caller lines are looked up in `script`; an agent's first turn after
 * a handoff acknowledges the reason; a tool error is read back to the caller.
 */
export function scriptedBrain(script: Record<string, ScriptEntry> = {}): Brain {
  return (request) => {
    const self = agentOf(request);
    const fixedLine = /Say exactly this, and nothing else: "(.*)"$/m.exec(request.instructions);
    if (fixedLine) return { text: fixedLine[1]! };
    const reason = /^Reason to acknowledge: (.*)$/m.exec(request.instructions);
    if (request.instructions.includes('Opening:') && reason) {
      return { text: `${self} here, about ${reason[1]}.` };
    }
    if (request.instructions.includes('Resuming:')) {
      const lastCaller = request.messages.filter((m) => m.role === 'user').at(-1);
      return {
        text: `${self} again, sorry about that. You were saying: ${lastCaller?.role === 'user' ? lastCaller.text : ''}`,
      };
    }
    if (request.instructions.includes('did not go through')) {
      return { text: 'Sorry, the transfer did not go through. I will keep helping you.' };
    }
    const last = request.messages.at(-1);
    if (last?.role === 'tool_result') return { text: `Sorry: ${last.output}` };
    if (last?.role !== 'user') return {};
    const entry = script[last.text];
    if (entry === undefined) return { text: `${self} heard: ${last.text}` };
    return typeof entry === 'function' ? entry(request) : entry;
  };
}

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

/** Collect unhandled rejections for the duration of a test file. */
export function trackUnhandledRejections(): { errors: unknown[]; stop: () => void } {
  const errors: unknown[] = [];
  const onRejection = (reason: unknown) => errors.push(reason);
  process.on('unhandledRejection', onRejection);
  return { errors, stop: () => process.off('unhandledRejection', onRejection) };
}

// ---------------------------------------------------------------------------------------------
// An OpenAI-compatible chat-completions server driven by a brain.

interface OpenAIMessage {
  role: string;
  content?: string | { type: string; text?: string }[] | null;
  tool_calls?: { id: string; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

interface OpenAIRequestBody {
  model: string;
  stream?: boolean;
  messages: OpenAIMessage[];
  tools?: { type: string; function: { name: string } }[];
  tool_choice?: unknown;
}

export function requestFromOpenAI(body: OpenAIRequestBody): ModelRequest {
  const instructions: string[] = [];
  const messages: ModelMessage[] = [];
  const toolNames = new Map<string, string>();
  for (const message of body.messages) {
    const text =
      typeof message.content === 'string'
        ? message.content
        : (message.content ?? []).map((part) => part.text ?? '').join('');
    if (message.role === 'system' || message.role === 'developer') instructions.push(text);
    else if (message.role === 'user') messages.push({ role: 'user', text });
    else if (message.role === 'assistant') {
      if (text) messages.push({ role: 'assistant', text });
      for (const toolCall of message.tool_calls ?? []) {
        toolNames.set(toolCall.id, toolCall.function.name);
        messages.push({
          role: 'tool_call',
          name: toolCall.function.name,
          args: toolCall.function.arguments,
        });
      }
    } else if (message.role === 'tool') {
      const name = toolNames.get(message.tool_call_id ?? '') ?? 'unknown';
      messages.push({ role: 'tool_result', name, output: text });
    }
  }
  return {
    instructions: instructions.join('\n'),
    messages,
    tools: (body.tools ?? []).map((tool) => tool.function.name),
  };
}

/**
 * What one completion request meets instead of a normal answer. Faults are taken in order, one
 * per request; requests with none left are answered normally.
 */
export type Fault =
  /** An HTTP error with an OpenAI error body, optionally with Retry-After (seconds). */
  | { status: number; retryAfter?: string }
  /** The request is accepted and never answered. */
  | { noAnswer: true }
  /** The reply's first `chunks` SSE chunks are sent, then nothing more. */
  | { stallAfterChunks: number }
  /** The reply's first `chunks` SSE chunks are sent, then the socket is destroyed. */
  | { destroyAfterChunks: number }
  /** A stream that finishes with neither words nor tool calls. */
  | { empty: true }
  /** A stream stopped by the provider's content filter, before any words. */
  | { contentFilter: true }
  /** A plain JSON completion although a stream was asked for. */
  | { plainJson: true }
  /** The normal answer, after holding the first chunk this long. */
  | { delayMs: number }
  /** Every tool call streamed with `index: 0`, each with its own id (seen from some providers). */
  | { sharedToolIndex: true }
  /** The tool calls are streamed, then the content filter stops the reply. */
  | { toolThenContentFilter: true };

export interface OpenAICompatibleServer {
  /** Base URL to give the OpenAI client, e.g. http://127.0.0.1:PORT/v1 */
  url: string;
  /** Raw request bodies, oldest first. */
  requests: OpenAIRequestBody[];
  /** Queue faults for the next requests, in order. */
  fault(...faults: Fault[]): void;
  /** Faults not yet met. */
  readonly pendingFaults: number;
  /** Forget the faults not yet met. */
  clearFaults(): void;
  close(): Promise<void>;
}

export async function startOpenAICompatibleServer(brain: Brain): Promise<OpenAICompatibleServer> {
  const requests: OpenAIRequestBody[] = [];
  const faults: Fault[] = [];
  let counter = 0;
  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return res.destroy();
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: String(error) } }));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OpenAIRequestBody;
    requests.push(body);
    const fault = faults.shift();
    if (fault && 'status' in fault) {
      res.writeHead(fault.status, {
        'content-type': 'application/json',
        ...(fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {}),
      });
      res.end(
        JSON.stringify({ error: { message: `injected ${fault.status}`, type: 'server_error' } }),
      );
      return;
    }
    if (fault && 'noAnswer' in fault) return; // held until the client gives up or the server closes
    const reply = await brain(requestFromOpenAI(body));
    const id = `chatcmpl-${++counter}`;
    const created = Math.floor(Date.now() / 1000);
    const toolCalls = (reply.toolCalls ?? []).map((toolCall, index) => ({
      index,
      id: `call_${counter}_${index}`,
      name: toolCall.name,
      arguments: JSON.stringify(toolCall.args),
    }));
    const finishReason = toolCalls.length > 0 ? 'tool_calls' : 'stop';

    if (!body.stream || (fault && 'plainJson' in fault)) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model: body.model,
          choices: [
            {
              index: 0,
              finish_reason: finishReason,
              message: {
                role: 'assistant',
                content: reply.text ?? null,
                ...(toolCalls.length
                  ? {
                      tool_calls: toolCalls.map((t) => ({
                        id: t.id,
                        type: 'function',
                        function: { name: t.name, arguments: t.arguments },
                      })),
                    }
                  : {}),
              },
            },
          ],
        }),
      );
      return;
    }

    // The reply as SSE frames, as a real server streams it: text in small pieces, tool
    // arguments in two halves.
    const frame = (extra: Record<string, unknown>) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, ...extra })}\n\n`;
    const delta = (d: Record<string, unknown>, finish: string | null = null) =>
      frame({ choices: [{ index: 0, delta: d, finish_reason: finish }] });
    const frames = [delta({ role: 'assistant', content: '' })];
    const filtered =
      fault !== undefined && ('contentFilter' in fault || 'toolThenContentFilter' in fault);
    const shared = fault !== undefined && 'sharedToolIndex' in fault;
    const empty = fault !== undefined && 'empty' in fault;
    if (shared) toolCalls.forEach((t) => (t.index = 0));
    const blank = empty || (fault !== undefined && 'contentFilter' in fault);
    if (!blank) {
      for (const piece of (reply.text ?? '').match(/.{1,12}/gs) ?? []) {
        frames.push(delta({ content: piece }));
      }
      for (const t of toolCalls) {
        const half = Math.ceil(t.arguments.length / 2);
        frames.push(
          delta({
            tool_calls: [
              {
                index: t.index,
                id: t.id,
                type: 'function',
                function: { name: t.name, arguments: t.arguments.slice(0, half) },
              },
            ],
          }),
          delta({
            tool_calls: [{ index: t.index, function: { arguments: t.arguments.slice(half) } }],
          }),
        );
      }
    }
    frames.push(delta({}, filtered ? 'content_filter' : empty ? 'stop' : finishReason));
    frames.push(
      frame({ choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } }),
    );
    frames.push('data: [DONE]\n\n');

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    if (fault && 'delayMs' in fault)
      await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    const cutAt =
      fault && 'stallAfterChunks' in fault
        ? fault.stallAfterChunks
        : fault && 'destroyAfterChunks' in fault
          ? fault.destroyAfterChunks
          : frames.length;
    for (const f of frames.slice(0, cutAt)) res.write(f);
    if (cutAt >= frames.length) return void res.end();
    // A dropped connection: once the chunks sent have been read, the socket goes away. A
    // stall keeps the socket open with nothing more on it.
    if (fault && 'destroyAfterChunks' in fault) {
      res.write(':\n\n', () => setTimeout(() => res.destroy(), 100));
    }
  }

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    fault: (...more) => void faults.push(...more),
    get pendingFaults() {
      return faults.length;
    },
    clearFaults: () => void faults.splice(0),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// A stand-in for LiveKit's server API. livekit-server-sdk speaks Twirp: JSON over
// `POST /twirp/livekit.<Service>/<Method>` with a bearer token. This keeps SIP trunks and
// dispatch rules in memory, records every request, and lets a test decide how dialling and
// transfers turn out (or hold them until it says so).

export interface TwirpRequest {
  service: string;
  method: string;
  body: Record<string, unknown>;
  authorized: boolean;
}

/** How a held or scripted call answers: success, or a Twirp error with SIP metadata. */
export type TwirpOutcome =
  | { ok: true; body?: Record<string, unknown> }
  | { ok: false; status: number; code: string; msg: string; meta?: Record<string, string> };

export const sipFailure = (sipStatusCode: number, sipStatus: string): TwirpOutcome => ({
  ok: false,
  status: sipStatusCode === 408 || sipStatusCode === 480 ? 504 : 400,
  code:
    sipStatusCode === 408 || sipStatusCode === 480 ? 'deadline_exceeded' : 'failed_precondition',
  msg: `sip status: ${sipStatusCode}: ${sipStatus}`,
  meta: { sip_status_code: String(sipStatusCode), sip_status: sipStatus },
});

export interface HeldCall {
  arrived: Promise<void>;
  answer(outcome: TwirpOutcome): void;
}

export interface LiveKitApiStandIn {
  url: string;
  apiKey: string;
  apiSecret: string;
  requests: TwirpRequest[];
  /** Stored SIP objects, as the server would list them. */
  inboundTrunks: Record<string, unknown>[];
  outboundTrunks: Record<string, unknown>[];
  dispatchRules: Record<string, unknown>[];
  /** Room metadata as last written (UpdateRoomMetadata). */
  roomMetadata: Map<string, string>;
  /** Answer the next call of `method` with `outcome` (FIFO); unscripted calls succeed. */
  script(method: string, outcome: TwirpOutcome): void;
  /**
   * Hold the next call of `method` until answered. `arrived` resolves when the request comes
   * in; `answer` may be called before or after that.
   */
  hold(method: string): HeldCall;
  close(): Promise<void>;
}

export async function startLiveKitApiStandIn(): Promise<LiveKitApiStandIn> {
  const requests: TwirpRequest[] = [];
  const scripted = new Map<string, TwirpOutcome[]>();
  const held = new Map<string, ((reply: (o: TwirpOutcome) => void) => void)[]>();
  const inboundTrunks: Record<string, unknown>[] = [];
  const outboundTrunks: Record<string, unknown>[] = [];
  const dispatchRules: Record<string, unknown>[] = [];
  const roomMetadata = new Map<string, string>();
  let ids = 0;
  const id = (prefix: string) => `${prefix}_${(++ids).toString().padStart(4, '0')}`;

  const applyUpdate = (list: unknown, update: unknown): unknown => {
    const u = update as { set?: string[]; add?: string[]; remove?: string[] } | undefined;
    if (!u) return list;
    if (u.set) return u.set;
    const current = new Set((list as string[] | undefined) ?? []);
    for (const v of u.add ?? []) current.add(v);
    for (const v of u.remove ?? []) current.delete(v);
    return [...current];
  };

  const handlers: Record<string, (body: Record<string, unknown>) => Record<string, unknown>> = {
    'SIP/ListSIPInboundTrunk': () => ({ items: inboundTrunks }),
    'SIP/ListSIPOutboundTrunk': () => ({ items: outboundTrunks }),
    'SIP/ListSIPDispatchRule': () => ({ items: dispatchRules }),
    'SIP/CreateSIPInboundTrunk': (body) => {
      const trunk = { ...(body.trunk as object), sipTrunkId: id('ST') };
      inboundTrunks.push(trunk);
      return trunk;
    },
    'SIP/CreateSIPOutboundTrunk': (body) => {
      const trunk = { ...(body.trunk as object), sipTrunkId: id('ST') };
      outboundTrunks.push(trunk);
      return trunk;
    },
    'SIP/CreateSIPDispatchRule': (body) => {
      const rule = { ...((body.dispatchRule ?? body) as object), sipDispatchRuleId: id('SDR') };
      dispatchRules.push(rule);
      return rule;
    },
    'SIP/UpdateSIPInboundTrunk': (body) => updateTrunk(inboundTrunks, body),
    'SIP/UpdateSIPOutboundTrunk': (body) => updateTrunk(outboundTrunks, body),
    'SIP/UpdateSIPDispatchRule': (body) => {
      const rule = dispatchRules.find((r) => r.sipDispatchRuleId === body.sipDispatchRuleId);
      if (!rule) throw new Error('no such dispatch rule');
      if (body.replace) return Object.assign(rule, body.replace);
      const fields = (body.update ?? {}) as Record<string, unknown>;
      for (const [key, value] of Object.entries(fields)) {
        rule[key] = key === 'trunkIds' ? applyUpdate(rule[key], value) : value;
      }
      return rule;
    },
    'SIP/CreateSIPParticipant': (body) => ({
      participantId: id('PA'),
      participantIdentity: body.participantIdentity,
      roomName: body.roomName,
      sipCallId: id('SCL'),
    }),
    'SIP/TransferSIPParticipant': () => ({}),
    'AgentDispatchService/DeleteDispatch': () => ({}),
    'RoomService/UpdateRoomMetadata': (body) => {
      roomMetadata.set(body.room as string, body.metadata as string);
      return { name: body.room, metadata: body.metadata };
    },
    'AgentDispatchService/CreateDispatch': (body) => ({
      id: id('AD'),
      agentName: body.agentName,
      room: body.room,
      metadata: body.metadata,
    }),
  };

  function updateTrunk(list: Record<string, unknown>[], body: Record<string, unknown>) {
    const trunk = list.find((t) => t.sipTrunkId === body.sipTrunkId);
    if (!trunk) throw new Error('no such trunk');
    if (body.replace) return Object.assign(trunk, body.replace);
    const fields = (body.update ?? {}) as Record<string, unknown>;
    for (const [key, value] of Object.entries(fields)) {
      trunk[key] = ['numbers', 'allowedAddresses', 'allowedNumbers'].includes(key)
        ? applyUpdate(trunk[key], value)
        : value;
    }
    return trunk;
  }

  const server = createServer((req, res) => {
    void (async () => {
      const match = /^\/twirp\/livekit\.(\w+)\/(\w+)$/.exec(req.url ?? '');
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      const reply = (o: TwirpOutcome) => {
        if (o.ok) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(o.body ?? {}));
        } else {
          res.writeHead(o.status, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({ code: o.code, msg: o.msg, ...(o.meta ? { meta: o.meta } : {}) }),
          );
        }
      };
      if (req.method !== 'POST' || !match) {
        return reply({ ok: false, status: 404, code: 'bad_route', msg: `no route ${req.url}` });
      }
      const [, service, method] = match;
      const key = `${service}/${method}`;
      requests.push({
        service: service!,
        method: method!,
        body,
        authorized: /^Bearer \S+\.\S+\.\S+$/.test(req.headers.authorization ?? ''),
      });
      const handler = handlers[key];
      if (!handler) return reply({ ok: false, status: 404, code: 'bad_route', msg: key });
      const run = (o: TwirpOutcome | undefined) => {
        if (o && !o.ok) return reply(o);
        try {
          reply({ ok: true, body: o?.body ?? handler(body) });
        } catch (error) {
          reply({ ok: false, status: 404, code: 'not_found', msg: (error as Error).message });
        }
      };
      const waiting = held.get(method!)?.shift();
      if (waiting) return waiting(run);
      run(scripted.get(method!)?.shift());
    })();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    apiKey: 'APIstandin',
    apiSecret: 'stand-in-secret-that-is-long-enough-for-hs256',
    requests,
    inboundTrunks,
    outboundTrunks,
    dispatchRules,
    roomMetadata,
    script: (method, outcome) => {
      scripted.set(method, [...(scripted.get(method) ?? []), outcome]);
    },
    hold: (method) => {
      let arrive!: () => void;
      const arrived = new Promise<void>((resolve) => (arrive = resolve));
      let decided: TwirpOutcome | undefined;
      let reply: ((o: TwirpOutcome) => void) | undefined;
      held.set(method, [
        ...(held.get(method) ?? []),
        (r) => {
          reply = r;
          arrive();
          if (decided) r(decided);
        },
      ]);
      return {
        arrived,
        answer: (outcome) => {
          if (decided) return;
          decided = outcome;
          reply?.(outcome);
        },
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port with nothing listening on it. */
export async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
