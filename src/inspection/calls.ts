/**
 * The viewer's memory: one entry per inspected root actor (a call), live or ended, built from the
 * (already redacted) inspection messages. Ended calls stay until `maxCalls` newer ones push them
 * out. Each call keeps its diagram, current state, context, an event log with the handoffs
 * (reason, summary), refusals (code) and the end reason read from the machine's context, and its
 * transcript (the lines its process sends beside the machine's messages).
 */
import { type Diagram, diagramOf } from './diagram.js';
import type { InspectionMessage, TranscriptLine } from './redact.js';

export interface LogEntry {
  seq: number;
  /** Epoch milliseconds. */
  at: number;
  kind: 'event' | 'transition' | 'handoff' | 'refusal' | 'end' | 'process';
  title: string;
  fields?: Record<string, string>;
}

/** Where messages come from: one connected inspector, usually one process. */
export interface Source {
  id: number;
  app: string;
  pid: number | null;
}

export interface CallView {
  /** The root actor's sessionId, tagged per process. */
  id: string;
  machine: string | null;
  app: string;
  pid: number | null;
  startedAt: number;
  updatedAt: number;
  /** The actor's status: active, done, error or stopped. */
  status: string;
  /** Whether the process that runs the call is still connected. */
  connected: boolean;
  /** Active leaf states, as paths (`reception.intent`). */
  states: string[];
  context: unknown;
  diagram: Diagram | null;
  log: LogEntry[];
  /** What was said, in order (redacted unless the viewer and the sender both allow PII). */
  transcript: TranscriptEntry[];
}

export interface TranscriptEntry extends TranscriptLine {
  seq: number;
  /** Epoch milliseconds. */
  at: number;
}

interface CallRecord extends CallView {
  sourceId: number;
  seq: number;
}

export interface CallStoreOptions {
  maxCalls?: number;
  maxLogEntries?: number;
  onChange?: (call: CallView) => void;
}

type Context = { handoffs?: unknown; refusals?: unknown; endReason?: unknown } | null;

export function leafStates(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, child]) => leafStates(child, `${prefix}${key}.`));
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function fieldsOf(record: Record<string, unknown>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => record[k] != null).map((k) => [k, text(record[k])]));
}

function newItems(before: Context, after: Context, key: 'handoffs' | 'refusals') {
  const old = Array.isArray(before?.[key]) ? (before[key] as unknown[]).length : 0;
  const now = after?.[key];
  return Array.isArray(now) ? (now.slice(old) as Record<string, unknown>[]) : [];
}

export class CallStore {
  readonly #calls = new Map<string, CallRecord>();
  readonly #diagrams = new Map<string, Diagram | null>();
  readonly #maxCalls: number;
  readonly #maxLog: number;
  readonly #onChange: (call: CallView) => void;

  constructor(options: CallStoreOptions = {}) {
    this.#maxCalls = options.maxCalls ?? 200;
    this.#maxLog = options.maxLogEntries ?? 500;
    this.#onChange = options.onChange ?? (() => {});
  }

  /** Newest first. */
  list(): CallView[] {
    return [...this.#calls.values()].sort((a, b) => b.startedAt - a.startedAt).map(view);
  }

  ingest(source: Source, message: InspectionMessage): void {
    // Only root actors are calls; spawned children would belong to theirs.
    if (message.rootId !== undefined && message.rootId !== message.sessionId) return;
    const call = this.#callFor(source, message);
    const at = Number(message.createdAt) || Date.now();
    call.updatedAt = at;
    // A process that reconnected (the viewer restarted) sends through a new source.
    call.sourceId = source.id;
    call.connected = true;
    if (message.type === '@xstate.actor') {
      call.machine = message.name ?? call.machine;
      if (message.definition) call.diagram = this.#diagram(message.definition);
    } else if (message.type === '@xstate.event' && message.event) {
      const { type, ...payload } = message.event;
      this.#log(call, at, 'event', type, fieldsOf(payload, Object.keys(payload)));
    } else if (message.type === '@xstate.snapshot' && message.snapshot) {
      this.#applySnapshot(call, at, message);
    } else if (message.type === '@call.transcript' && message.line) {
      call.transcript.push({ seq: ++call.seq, at, ...message.line });
      if (call.transcript.length > this.#maxLog) call.transcript.shift();
    }
    this.#onChange(view(call));
  }

  /** The process behind `source` went away: its calls are no longer live. */
  disconnected(source: Source): void {
    for (const call of this.#calls.values()) {
      if (call.sourceId !== source.id || !call.connected) continue;
      call.connected = false;
      if (call.status === 'active') {
        this.#log(call, Date.now(), 'process', 'process disconnected during the call');
      }
      this.#onChange(view(call));
    }
  }

  #callFor(source: Source, message: InspectionMessage): CallRecord {
    const existing = this.#calls.get(message.sessionId);
    if (existing) return existing;
    const now = Number(message.createdAt) || Date.now();
    const call: CallRecord = {
      id: message.sessionId,
      machine: null,
      app: source.app,
      pid: source.pid,
      startedAt: now,
      updatedAt: now,
      status: 'active',
      connected: true,
      states: [],
      context: null,
      diagram: null,
      log: [],
      transcript: [],
      sourceId: source.id,
      seq: 0,
    };
    this.#calls.set(call.id, call);
    this.#evict();
    return call;
  }

  #applySnapshot(call: CallRecord, at: number, message: InspectionMessage): void {
    const snapshot = message.snapshot!;
    const before = call.context as Context;
    const after = (snapshot.context ?? null) as Context;
    const states = leafStates(snapshot.value);
    if (states.length > 0 && call.states.join() !== states.join()) {
      if (call.states.length > 0) {
        const event = message.event?.type;
        const title = `${call.states.join(', ')} → ${states.join(', ')}`;
        this.#log(call, at, 'transition', title, event ? { event } : undefined);
      }
      call.states = states;
    }
    for (const h of newItems(before, after, 'handoffs')) {
      const title = `${text(h.from)} → ${text(h.to)}`;
      this.#log(call, at, 'handoff', title, fieldsOf(h, ['reason', 'summary']));
    }
    for (const r of newItems(before, after, 'refusals')) {
      const title = `refused ${text(r.request)}${r.to ? ` to ${text(r.to)}` : ''}`;
      this.#log(call, at, 'refusal', title, fieldsOf(r, ['code', 'from']));
    }
    if (snapshot.status && snapshot.status !== call.status && snapshot.status !== 'active') {
      const reason = snapshot.error ?? after?.endReason;
      const title = `call ${snapshot.status === 'done' ? 'ended' : snapshot.status}`;
      this.#log(call, at, 'end', title, reason != null ? { reason: text(reason) } : undefined);
    }
    call.status = snapshot.status ?? call.status;
    call.context = after;
  }

  #log(
    call: CallRecord,
    at: number,
    kind: LogEntry['kind'],
    title: string,
    fields?: Record<string, string>,
  ): void {
    call.log.push({ seq: ++call.seq, at, kind, title, ...(fields ? { fields } : {}) });
    if (call.log.length > this.#maxLog) call.log.shift();
  }

  #diagram(definition: string): Diagram | null {
    if (!this.#diagrams.has(definition)) {
      if (this.#diagrams.size >= 20) this.#diagrams.clear();
      this.#diagrams.set(definition, diagramOf(definition));
    }
    return this.#diagrams.get(definition)!;
  }

  /** Past `maxCalls`, forget the oldest disconnected call (or the oldest of all). */
  #evict(): void {
    if (this.#calls.size <= this.#maxCalls) return;
    const byAge = [...this.#calls.values()].sort((a, b) => a.startedAt - b.startedAt);
    const victim = byAge.find((call) => !call.connected) ?? byAge[0]!;
    this.#calls.delete(victim.id);
  }
}

function view(call: CallRecord): CallView {
  const { sourceId: _, seq: __, ...rest } = call;
  return rest;
}
