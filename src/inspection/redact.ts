/**
 * What an inspection message may carry, applied before anything leaves the call process and
 * again when the viewer receives it (both are idempotent, so a value redacted twice is unchanged).
 *
 * - Secrets never leave: values under keys that look like credentials become "[secret]", the
 *   `xstate.init` event's `input` is dropped, and the machine definition is reduced to its shape
 *   (states, transitions, guard and action names), without the static context or action params.
 * - Unless `pii` is set: phone numbers are masked wherever they appear (maskPhoneNumber), and what
 *   the caller said (summaries, transcripts, the caller's display name) becomes "[redacted]"; so
 *   does every line of the call's transcript (`@call.transcript`), the agents' too, since they
 *   repeat what they heard.
 *   Handoff reasons and end reasons stay readable: they are why the call went where it did.
 */
import { maskPhoneNumber } from '../logging.js';

export interface RedactionOptions {
  /** Keep phone numbers and caller text. Secrets are removed regardless. */
  pii: boolean;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const SECRET_KEY = /secret|token|password|passwd|api[-_]?key|authorization|credential/i;
/** Keys whose string values are what the caller said, or a summary of it. */
const CALLER_TEXT_KEYS = new Set(['summary', 'text', 'transcript', 'callerName', 'displayName']);
const PHONE_KEYS = new Set(['number', 'phoneNumber', 'callerNumber', 'phone']);
/** A phone number inside free text: digits with optional +, spaces, dashes, dots, parens. */
const PHONE_IN_TEXT = /\+?\d[\d\s().-]{5,}\d/g;
const MAX_DEPTH = 12;

export const REDACTED = '[redacted]';

/** Mask "+91 98765 43210" or "9876543210", but not a date like "2026-11-24". */
function maskNumbersIn(text: string): string {
  return text.replace(PHONE_IN_TEXT, (match) => {
    const digits = match.replace(/\D/g, '').length;
    return digits >= 10 || (match.startsWith('+') && digits >= 8) ? maskPhoneNumber(match) : match;
  });
}

/** Redact any JSON-like value: payloads, context, output. */
export function redactValue(value: unknown, options: RedactionOptions, depth = 0): Json {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return options.pii ? value : maskNumbersIn(value);
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value !== 'object' || depth > MAX_DEPTH) return null;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, options, depth + 1));
  const out: Record<string, Json> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    if (typeof item === 'function' || item === undefined) continue;
    if (SECRET_KEY.test(key)) out[key] = '[secret]';
    else if (!options.pii && typeof item === 'string' && CALLER_TEXT_KEYS.has(key)) {
      out[key] = item === '' ? '' : REDACTED;
    } else if (!options.pii && typeof item === 'string' && PHONE_KEYS.has(key)) {
      out[key] = item.includes('*') ? item : maskPhoneNumber(item);
    } else if (!options.pii && key === 'caller' && item && typeof item === 'object') {
      const { name, ...rest } = item as Record<string, unknown>;
      out[key] = redactValue(
        typeof name === 'string' ? { ...rest, name: REDACTED } : rest,
        options,
        depth + 1,
      );
    } else out[key] = redactValue(item, options, depth + 1);
  }
  return out;
}

/** An event as the inspector may show it. */
export function redactEvent(
  event: { type: string } & Record<string, unknown>,
  options: RedactionOptions,
): { type: string } & Record<string, Json> {
  // `input` is whatever the actor was created with: configuration, possibly credentials.
  const { input, ...rest } = event;
  const redacted = redactValue(rest, options) as Record<string, Json>;
  return { ...redacted, type: event.type, ...(input !== undefined ? { input: '[omitted]' } : {}) };
}

type ConfigNode = Record<string, unknown>;

function nameOf(item: unknown): string | undefined {
  if (typeof item === 'string') return item;
  if (item && typeof item === 'object' && typeof (item as ConfigNode).type === 'string') {
    return (item as ConfigNode).type as string;
  }
  return undefined;
}

function namesOf(items: unknown): string[] | undefined {
  if (items === undefined) return undefined;
  const names = (Array.isArray(items) ? items : [items]).map(nameOf).filter((n) => n !== undefined);
  return names.length > 0 ? names : undefined;
}

function outlineTransitions(value: unknown): ConfigNode[] {
  return (Array.isArray(value) ? value : [value]).map((t) => {
    const transition = (typeof t === 'string' ? { target: t } : (t ?? {})) as ConfigNode;
    const target = transition.target;
    return {
      ...(typeof target === 'string' || Array.isArray(target) ? { target } : {}),
      ...(nameOf(transition.guard) ? { guard: nameOf(transition.guard) } : {}),
      ...(namesOf(transition.actions) ? { actions: namesOf(transition.actions) } : {}),
    };
  });
}

function outlineState(node: ConfigNode, depth: number): ConfigNode {
  const out: ConfigNode = {};
  for (const key of ['id', 'type', 'initial', 'description'] as const) {
    if (typeof node[key] === 'string') out[key] = node[key];
  }
  for (const key of ['entry', 'exit'] as const) {
    const names = namesOf(node[key]);
    if (names) out[key] = names;
  }
  if (node.on && typeof node.on === 'object') {
    out.on = Object.fromEntries(
      Object.entries(node.on as ConfigNode).map(([event, t]) => [event, outlineTransitions(t)]),
    );
  }
  if (node.always !== undefined) out.always = outlineTransitions(node.always);
  if (node.states && typeof node.states === 'object' && depth < MAX_DEPTH) {
    out.states = Object.fromEntries(
      Object.entries(node.states as ConfigNode).map(([key, child]) => [
        key,
        outlineState((child ?? {}) as ConfigNode, depth + 1),
      ]),
    );
  }
  return out;
}

/**
 * The machine definition reduced to its shape: still a valid machine config (so Stately's viewer
 * can draw it), but without `context`, action or guard params, delays, invoke inputs or meta.
 */
export function outlineDefinition(definition: string | undefined): string | undefined {
  if (definition === undefined) return undefined;
  try {
    return JSON.stringify(outlineState(JSON.parse(definition) as ConfigNode, 0));
  } catch {
    return undefined;
  }
}

/** A message from an inspector (Stately's format), as this project sends and keeps it. */
export interface InspectionMessage {
  /** `@call.transcript` is this project's own: a line of the call's transcript. */
  type: '@xstate.actor' | '@xstate.event' | '@xstate.snapshot' | '@call.transcript';
  sessionId: string;
  rootId?: string;
  parentId?: string;
  sourceId?: string;
  createdAt: string;
  id: string | null;
  _version?: string;
  /** @xstate.actor: the machine id and its outlined definition. */
  name?: string;
  definition?: string;
  /** @xstate.event and @xstate.snapshot: the event (for a snapshot, the one that caused it). */
  event?: { type: string } & Record<string, Json>;
  snapshot?: InspectedSnapshot;
  /** @call.transcript: who spoke (`caller` or an agent) and what was said. */
  line?: TranscriptLine;
}

export interface TranscriptLine {
  speaker: string;
  text: string;
}

export interface InspectedSnapshot {
  status?: string;
  value?: Json;
  context?: Json;
  output?: Json;
  error?: string;
}

const MESSAGE_TYPES = new Set([
  '@xstate.actor',
  '@xstate.event',
  '@xstate.snapshot',
  '@call.transcript',
]);

/** A transcript line: what was said is caller text (the agents repeat what they heard). */
function redactLine(line: unknown, options: RedactionOptions): TranscriptLine | undefined {
  const l = (line ?? {}) as Record<string, unknown>;
  if (typeof l.speaker !== 'string' || typeof l.text !== 'string') return undefined;
  const { text } = redactValue({ text: l.text }, options) as { text: string };
  return { speaker: l.speaker.replace(/[^\w-]/g, '').slice(0, 20), text };
}

function redactSnapshot(snapshot: unknown, options: RedactionOptions): InspectedSnapshot {
  const s = (snapshot ?? {}) as Record<string, unknown>;
  return {
    ...(typeof s.status === 'string' ? { status: s.status } : {}),
    // State names are the machine's own, not data: kept as they are.
    ...(s.value !== undefined ? { value: JSON.parse(JSON.stringify(s.value)) as Json } : {}),
    ...(s.context !== undefined ? { context: redactValue(s.context, options) } : {}),
    ...(s.output !== undefined ? { output: redactValue(s.output, options) } : {}),
    ...(s.error !== undefined && s.error !== null
      ? { error: redactValue(String((s.error as Error).message ?? s.error), options) as string }
      : {}),
  };
}

/**
 * Keep only the fields a viewer needs, redacted. Anything else an inspector adds (the actor's
 * children, history, a machine reference) is dropped. Returns null for what is not a message.
 */
export function redactMessage(raw: unknown, options: RedactionOptions): InspectionMessage | null {
  if (!raw || typeof raw !== 'object') return null;
  const m = raw as Record<string, unknown>;
  if (typeof m.type !== 'string' || !MESSAGE_TYPES.has(m.type)) return null;
  if (typeof m.sessionId !== 'string') return null;
  const optionalId = (key: 'rootId' | 'parentId' | 'sourceId') =>
    typeof m[key] === 'string' ? { [key]: m[key] } : {};
  const event = m.event as ({ type?: unknown } & Record<string, unknown>) | undefined;
  const definition = typeof m.definition === 'string' ? outlineDefinition(m.definition) : undefined;
  const line = m.type === '@call.transcript' ? redactLine(m.line, options) : undefined;
  if (m.type === '@call.transcript' && !line) return null;
  return {
    type: m.type as InspectionMessage['type'],
    sessionId: m.sessionId,
    ...optionalId('rootId'),
    ...optionalId('parentId'),
    ...optionalId('sourceId'),
    createdAt: typeof m.createdAt === 'string' ? m.createdAt : String(Date.now()),
    id: typeof m.id === 'string' ? m.id : null,
    ...(typeof m._version === 'string' ? { _version: m._version } : {}),
    ...(typeof m.name === 'string' ? { name: m.name } : {}),
    ...(definition !== undefined ? { definition } : {}),
    ...(event && typeof event.type === 'string'
      ? { event: redactEvent(event as { type: string } & Record<string, unknown>, options) }
      : {}),
    ...(m.snapshot !== undefined ? { snapshot: redactSnapshot(m.snapshot, options) } : {}),
    ...(line ? { line } : {}),
  };
}
