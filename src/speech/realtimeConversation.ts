/**
 * One OpenAI Realtime conversation websocket (`GET /v1/realtime?model=...`), as
 * `openai.realtime.RealtimeModel` uses it: speech in, speech out, with the model's decisions
 * made by a brain (the offline keyword model, or a test's script) on what it heard.
 *
 *   client: session.update {instructions, tools, tool_choice, audio.output.voice,
 *             audio.input.turn_detection}; input_audio_buffer.append / commit / clear;
 *           conversation.item.create / delete / truncate; response.create; response.cancel
 *   server: session.created / updated; with turn detection (server_vad or semantic_vad, the
 *             plugin's default): input_audio_buffer.speech_started / speech_stopped from an
 *             energy endpointer, the caller's item (committed, conversation.item.added), its
 *             transcript (pocketsphinx), then a response of its own (create_response), and the
 *             response in progress cancelled when the caller starts speaking (interrupt_response);
 *           a response: response.created, per item output_item.added, conversation.item.added,
 *             then a message's transcript and its audio (flite, in the session's voice) as
 *             response.output_audio.delta chunks paced faster than real time, or a function
 *             call's arguments; output_item.done; response.done (completed or cancelled).
 *
 * What it does not model: the model hearing audio directly (it answers the transcript, so a
 * response starts only once recognition is done), semantic end-of-turn (semantic_vad is the
 * energy endpointer too), partial transcripts, token usage, and any reasoning: the brain decides.
 * As OpenAI does, it refuses a second response while one is in progress and a change of voice
 * once the session has spoken.
 */
import type { WebSocket } from 'ws';
import type { Brain, ModelMessage, ModelRequest } from '../models/scriptedLlm.js';
import { Endpointer } from './endpointer.js';
import { REALTIME_SAMPLE_RATE } from './realtimeTranscription.js';
import { bytesToSamples } from './wav.js';

export interface RealtimeConversationHost {
  brain: Brain;
  /** Words in one utterance. */
  transcribe(audio: Int16Array, sampleRate: number): Promise<string>;
  /** `text` spoken in `voice` (an OpenAI voice name): 24 kHz s16le mono. */
  speak(text: string, voice: string): Promise<Buffer>;
  speechStarted(itemId: string): void;
  speechStopped(itemId: string): void;
  transcribed(itemId: string, text: string): void;
  /** Ids unique across the server's sessions (a new session receives the old one's items). */
  nextId(prefix: 'item' | 'resp' | 'call' | 'sess'): string;
  minSilenceMs: number;
  threshold: number;
  /** Seconds of audio sent per second: OpenAI generates speech faster than it plays. */
  pace: number;
  /**
   * A fault for this response, if any: `fail` ends it `failed` (a server error) once it has
   * started; `never-start` sends nothing at all for it, as a server that never answers.
   */
  fault?(request: ModelRequest): RealtimeFault | undefined;
  /** Every response, once it is done, for tests and logs. */
  responded(response: RealtimeResponseRecord): void;
  log(message: string, detail?: Record<string, unknown>): void;
}

export type RealtimeFault = 'fail' | 'never-start';

export interface RealtimeResponseRecord {
  responseId: string;
  voice: string;
  request: ModelRequest;
  text: string | undefined;
  toolCalls: string[];
  status: 'completed' | 'cancelled' | 'failed' | 'never-started';
}

interface Item {
  id: string;
  type: 'message' | 'function_call' | 'function_call_output';
  role?: 'user' | 'assistant' | 'system';
  /** A message's words; null while the caller's audio is still being recognised. */
  text?: string | null;
  call_id?: string;
  name?: string;
  arguments?: string;
  output?: string;
  /** An assistant message's audio length, to truncate its words to what was heard. */
  durationMs?: number;
}

interface TurnDetection {
  type?: string;
  silence_duration_ms?: number;
  create_response?: boolean;
  interrupt_response?: boolean;
}

interface ActiveResponse {
  id: string;
  metadata: unknown;
  voice: string;
  request: ModelRequest;
  /** Items sent so far, for the done events. */
  output: Record<string, unknown>[];
  openMessage: string | null;
  cancelled: boolean;
  text?: string;
  toolCalls: string[];
}

type ClientEvent = Record<string, unknown> & { type?: string; event_id?: string };

const AUDIO_CHUNK_MS = 100;
/** Audio sent at once before pacing starts, so playback never waits on the socket. */
const AUDIO_LEAD_MS = 300;

export function serveRealtimeConversation(ws: WebSocket, host: RealtimeConversationHost): void {
  new RealtimeConversation(ws, host);
}

class RealtimeConversation {
  readonly #ws: WebSocket;
  readonly #host: RealtimeConversationHost;
  readonly #sessionId: string;
  #instructions = '';
  #voice = 'alloy';
  #tools: string[] = [];
  #toolChoice = 'auto';
  #turnDetection: TurnDetection | null = {
    type: 'server_vad',
    create_response: true,
    interrupt_response: true,
  };
  #endpointer: Endpointer;
  readonly #items: Item[] = [];
  #buffered: Int16Array[] = [];
  #itemId: string;
  #spoke = false;
  #active: ActiveResponse | null = null;
  /** Transcripts (and the responses they start) in utterance order. */
  #turns: Promise<void> = Promise.resolve();
  #closed = false;
  #events = 0;

  constructor(ws: WebSocket, host: RealtimeConversationHost) {
    this.#ws = ws;
    this.#host = host;
    this.#sessionId = host.nextId('sess');
    this.#itemId = host.nextId('item');
    this.#endpointer = this.#newEndpointer();
    ws.on('close', () => {
      this.#closed = true;
      if (this.#active) this.#active.cancelled = true;
    });
    ws.on('message', (data) => this.#onMessage(data.toString()));
    this.#send({ type: 'session.created', session: this.#session() });
  }

  #send(event: Record<string, unknown>): void {
    if (!this.#closed && this.#ws.readyState === this.#ws.OPEN) {
      this.#ws.send(JSON.stringify({ event_id: `event_${++this.#events}`, ...event }));
    }
  }

  #error(code: string, message: string, eventId?: string): void {
    this.#send({
      type: 'error',
      error: { type: 'invalid_request_error', code, message, event_id: eventId ?? null },
    });
  }

  #session(): Record<string, unknown> {
    return {
      id: this.#sessionId,
      type: 'realtime',
      object: 'realtime.session',
      instructions: this.#instructions,
      tool_choice: this.#toolChoice,
      tools: this.#tools.map((name) => ({ type: 'function', name })),
      audio: {
        input: {
          format: { type: 'audio/pcm', rate: REALTIME_SAMPLE_RATE },
          turn_detection: this.#turnDetection,
        },
        output: { format: { type: 'audio/pcm', rate: REALTIME_SAMPLE_RATE }, voice: this.#voice },
      },
    };
  }

  #newEndpointer(): Endpointer {
    return new Endpointer({
      sampleRate: REALTIME_SAMPLE_RATE,
      threshold: this.#host.threshold,
      silenceMs: Math.max(this.#turnDetection?.silence_duration_ms ?? 0, this.#host.minSilenceMs),
    });
  }

  #onMessage(data: string): void {
    let event: ClientEvent;
    try {
      event = JSON.parse(data) as ClientEvent;
    } catch {
      return this.#error('invalid_json', 'not JSON');
    }
    try {
      switch (event.type) {
        case 'session.update':
          return this.#updateSession(event);
        case 'input_audio_buffer.append':
          return this.#append(bytesToSamples(Buffer.from(String(event.audio ?? ''), 'base64')));
        case 'input_audio_buffer.commit':
          return this.#commitBuffer();
        case 'input_audio_buffer.clear':
          this.#buffered = [];
          this.#endpointer = this.#newEndpointer();
          return this.#send({ type: 'input_audio_buffer.cleared' });
        case 'conversation.item.create':
          return this.#createItem(event);
        case 'conversation.item.delete':
          return this.#deleteItem(event);
        case 'conversation.item.truncate':
          return this.#truncateItem(event);
        case 'response.create':
          return this.#createResponse(event);
        case 'response.cancel':
          return this.#cancelRequested(event);
        default:
          return; // other client events are accepted and ignored
      }
    } catch (error) {
      this.#host.log('realtime client event failed', { err: error, type: event.type });
      this.#error('server_error', (error as Error).message, event.event_id);
    }
  }

  #updateSession(event: ClientEvent): void {
    const session = (event.session ?? {}) as Record<string, unknown>;
    const audio = session.audio as
      { input?: Record<string, unknown>; output?: Record<string, unknown> } | undefined;
    const voice = (audio?.output?.voice ?? session.voice) as string | undefined;
    if (voice !== undefined && voice !== this.#voice) {
      if (this.#spoke) {
        return this.#error(
          'cannot_update_voice',
          "Cannot update a conversation's voice if assistant audio is present.",
          event.event_id,
        );
      }
      this.#voice = voice;
    }
    if (typeof session.instructions === 'string') this.#instructions = session.instructions;
    if (Array.isArray(session.tools)) {
      this.#tools = (session.tools as { name?: string }[]).flatMap((t) => (t.name ? [t.name] : []));
    }
    if (typeof session.tool_choice === 'string') this.#toolChoice = session.tool_choice;
    const input = audio?.input ?? {};
    const turnDetection = 'turn_detection' in input ? input.turn_detection : session.turn_detection;
    if (turnDetection !== undefined) {
      this.#turnDetection = turnDetection
        ? {
            create_response: true,
            interrupt_response: true,
            ...(turnDetection as TurnDetection),
          }
        : null;
      this.#endpointer = this.#newEndpointer();
    }
    this.#send({ type: 'session.updated', session: this.#session() });
  }

  #append(samples: Int16Array): void {
    if (!this.#turnDetection) {
      this.#buffered.push(samples);
      return;
    }
    for (const boundary of this.#endpointer.push(samples)) {
      if (boundary.type === 'started') {
        this.#host.speechStarted(this.#itemId);
        this.#send({
          type: 'input_audio_buffer.speech_started',
          item_id: this.#itemId,
          audio_start_ms: boundary.audioStartMs,
        });
        if (this.#turnDetection.interrupt_response && this.#active) {
          this.#cancel(this.#active, 'turn_detected');
        }
      } else {
        this.#host.speechStopped(this.#itemId);
        this.#send({
          type: 'input_audio_buffer.speech_stopped',
          item_id: this.#itemId,
          audio_end_ms: boundary.audioEndMs,
        });
        this.#commit(boundary.audio, this.#turnDetection.create_response !== false);
      }
    }
  }

  #commitBuffer(): void {
    const audio = concat(this.#buffered);
    this.#buffered = [];
    if (audio.length === 0) return this.#error('input_audio_buffer_commit_empty', 'buffer empty');
    this.#commit(audio, false);
  }

  /** The caller's utterance becomes an item; its transcript follows, then maybe a response. */
  #commit(audio: Int16Array, respond: boolean): void {
    const id = this.#itemId;
    this.#itemId = this.#host.nextId('item');
    const previous = this.#items.at(-1)?.id ?? null;
    const item: Item = { id, type: 'message', role: 'user', text: null };
    this.#items.push(item);
    this.#send({ type: 'input_audio_buffer.committed', item_id: id, previous_item_id: previous });
    this.#send({
      type: 'conversation.item.added',
      previous_item_id: previous,
      item: {
        id,
        object: 'realtime.item',
        type: 'message',
        role: 'user',
        status: 'completed',
        content: [{ type: 'input_audio', transcript: null }],
      },
    });
    const heard = this.#host.transcribe(audio, REALTIME_SAMPLE_RATE).catch((error: unknown) => {
      this.#host.log('recognition failed', { err: error });
      return '';
    });
    this.#turns = this.#turns.then(async () => {
      const transcript = await heard;
      // A session the client closed says nothing more, as OpenAI's does not.
      if (this.#closed) return;
      item.text = transcript;
      this.#host.transcribed(id, transcript);
      this.#send({
        type: 'conversation.item.input_audio_transcription.completed',
        item_id: id,
        content_index: 0,
        transcript,
      });
      // Nothing recognised (a cough, line noise): no answer, as a model would not answer either.
      if (respond && transcript !== '') {
        if (this.#active) this.#cancel(this.#active, 'turn_detected');
        void this.#respond({});
      }
    });
    this.#turns = this.#turns.catch((error: unknown) => {
      this.#host.log('realtime turn failed', { err: error });
    });
  }

  #createItem(event: ClientEvent): void {
    const raw = (event.item ?? {}) as Record<string, unknown>;
    const id = typeof raw.id === 'string' ? raw.id : this.#host.nextId('item');
    if (this.#items.some((i) => i.id === id)) {
      return this.#error('item_already_exists', `Item ${id} already exists`, event.event_id);
    }
    const item: Item = { id, type: raw.type as Item['type'] };
    if (item.type === 'message') {
      item.role = raw.role as NonNullable<Item['role']>;
      item.text = textOf(raw.content);
    } else if (item.type === 'function_call') {
      item.call_id = String(raw.call_id);
      item.name = String(raw.name);
      item.arguments = String(raw.arguments ?? '{}');
    } else if (item.type === 'function_call_output') {
      item.call_id = String(raw.call_id);
      item.output = String(raw.output ?? '');
    } else {
      return this.#error('invalid_item', `unknown item type ${String(raw.type)}`, event.event_id);
    }
    const after = event.previous_item_id as string | undefined | null;
    const at =
      after === 'root'
        ? 0
        : after
          ? this.#items.findIndex((i) => i.id === after) + 1
          : this.#items.length;
    if (after && after !== 'root' && at === 0) {
      return this.#error('previous_item_not_found', `no item ${after}`, event.event_id);
    }
    this.#items.splice(at, 0, item);
    const previous = at === 0 ? null : this.#items[at - 1]!.id;
    this.#send({
      type: 'conversation.item.added',
      previous_item_id: previous,
      item: { ...raw, id, object: 'realtime.item', status: 'completed' },
    });
  }

  #deleteItem(event: ClientEvent): void {
    const id = String(event.item_id);
    const at = this.#items.findIndex((i) => i.id === id);
    if (at === -1) return this.#error('item_not_found', `no item ${id}`, event.event_id);
    this.#items.splice(at, 1);
    this.#send({ type: 'conversation.item.deleted', item_id: id });
  }

  /** The caller heard only `audio_end_ms` of it: the words beyond are dropped, as OpenAI does. */
  #truncateItem(event: ClientEvent): void {
    const id = String(event.item_id);
    const item = this.#items.find((i) => i.id === id);
    if (!item) return this.#error('item_not_found', `no item ${id}`, event.event_id);
    const heardMs = Number(event.audio_end_ms ?? 0);
    const words = (item.text ?? '').split(' ');
    const totalMs = item.durationMs ?? 0;
    if (totalMs > 0 && heardMs < totalMs) {
      item.text = words.slice(0, Math.floor((words.length * heardMs) / totalMs)).join(' ');
    }
    this.#send({
      type: 'conversation.item.truncated',
      item_id: id,
      content_index: event.content_index ?? 0,
      audio_end_ms: heardMs,
    });
  }

  #createResponse(event: ClientEvent): void {
    if (this.#active) {
      return this.#error(
        'conversation_already_has_active_response',
        `Conversation already has an active response in progress: ${this.#active.id}. ` +
          'Wait until the response is finished before creating a new one.',
        event.event_id,
      );
    }
    void this.#respond((event.response ?? {}) as Record<string, unknown>);
  }

  #cancelRequested(event: ClientEvent): void {
    const active = this.#active;
    const wanted = event.response_id as string | undefined;
    if (!active || (wanted && wanted !== active.id)) {
      return this.#error(
        'response_cancel_not_active',
        'Cancellation failed: no active response found',
        event.event_id,
      );
    }
    this.#cancel(active, 'client_cancelled');
  }

  /** Stop the response now: nothing more of it is sent. */
  #cancel(active: ActiveResponse, reason: 'turn_detected' | 'client_cancelled'): void {
    if (active.cancelled) return;
    active.cancelled = true;
    if (active.openMessage) {
      this.#send({
        type: 'response.output_item.done',
        response_id: active.id,
        output_index: active.output.length - 1,
        item: { ...active.output.at(-1), status: 'incomplete' },
      });
    }
    this.#finish(active, 'cancelled', { type: 'cancelled', reason });
  }

  #finish(
    active: ActiveResponse,
    status: RealtimeResponseRecord['status'],
    details: unknown,
  ): void {
    if (this.#active === active) this.#active = null;
    this.#send({
      type: 'response.done',
      response: {
        id: active.id,
        object: 'realtime.response',
        status,
        status_details: details,
        output: active.output,
        metadata: active.metadata,
        usage: { total_tokens: 0, input_tokens: 0, output_tokens: 0 },
      },
    });
    this.#host.responded({
      responseId: active.id,
      voice: active.voice,
      request: active.request,
      text: active.text,
      toolCalls: active.toolCalls,
      status,
    });
  }

  async #respond(params: Record<string, unknown>): Promise<void> {
    const toolChoice = (params.tool_choice as string | undefined) ?? this.#toolChoice;
    const request: ModelRequest = {
      instructions: (params.instructions as string | undefined) ?? this.#instructions,
      messages: this.#messages(),
      tools: [...this.#tools],
    };
    const fault = this.#host.fault?.(request);
    const id = this.#host.nextId('resp');
    if (fault === 'never-start') {
      this.#host.log('realtime response never started (fault)', { responseId: id });
      return this.#host.responded({
        responseId: id,
        voice: this.#voice,
        request,
        text: undefined,
        toolCalls: [],
        status: 'never-started',
      });
    }
    const active: ActiveResponse = {
      id,
      metadata: params.metadata ?? null,
      voice: this.#voice,
      request,
      output: [],
      openMessage: null,
      cancelled: false,
      toolCalls: [],
    };
    this.#active = active;
    const response = { id: active.id, object: 'realtime.response', status: 'in_progress' };
    this.#send({ type: 'response.created', response: { ...response, metadata: active.metadata } });
    try {
      if (fault === 'fail') throw new Error('the server was told to fail this response');
      const reply = await this.#host.brain(request);
      if (active.cancelled) return;
      if (reply.text) await this.#speakMessage(active, reply.text);
      // tool_choice "none": the model answers in words only.
      for (const call of toolChoice === 'none' ? [] : (reply.toolCalls ?? [])) {
        if (active.cancelled) return;
        this.#callTool(active, call.name, JSON.stringify(call.args));
      }
      if (!active.cancelled) this.#finish(active, 'completed', null);
    } catch (error) {
      if (active.cancelled) return;
      this.#host.log('realtime response failed', { err: error });
      this.#finish(active, 'failed', {
        type: 'failed',
        error: { type: 'server_error', message: (error as Error).message },
      });
    }
  }

  #addOutputItem(active: ActiveResponse, item: Record<string, unknown>, stored: Item): void {
    const previous = this.#items.at(-1)?.id ?? null;
    this.#items.push(stored);
    active.output.push(item);
    this.#send({
      type: 'response.output_item.added',
      response_id: active.id,
      output_index: active.output.length - 1,
      item: { ...item, status: 'in_progress' },
    });
    this.#send({ type: 'conversation.item.added', previous_item_id: previous, item });
  }

  async #speakMessage(active: ActiveResponse, text: string): Promise<void> {
    const id = this.#host.nextId('item');
    const stored: Item = {
      id,
      type: 'message',
      role: 'assistant',
      text,
    };
    const item = {
      id,
      object: 'realtime.item',
      type: 'message',
      role: 'assistant',
      content: [{ type: 'output_audio', transcript: text }],
    };
    active.text = text;
    this.#addOutputItem(active, { ...item, content: [] }, stored);
    active.openMessage = id;
    active.output[active.output.length - 1] = item;
    const index = active.output.length - 1;
    const part = { response_id: active.id, item_id: id, output_index: index, content_index: 0 };
    this.#send({ type: 'response.content_part.added', ...part, part: { type: 'audio' } });
    const pcm = await this.#host.speak(text, active.voice);
    if (active.cancelled) return;
    this.#spoke = true;
    stored.durationMs = Math.round((pcm.length / 2 / REALTIME_SAMPLE_RATE) * 1000);
    this.#send({ type: 'response.output_audio_transcript.delta', ...part, delta: text });
    const chunkBytes = (REALTIME_SAMPLE_RATE * 2 * AUDIO_CHUNK_MS) / 1000;
    const startedAt = Date.now();
    for (let at = 0, sentMs = 0; at < pcm.length; at += chunkBytes, sentMs += AUDIO_CHUNK_MS) {
      // Paced: `pace` seconds of audio per second, after a short lead.
      const dueAt = startedAt + Math.max(0, sentMs - AUDIO_LEAD_MS) / this.#host.pace;
      if (dueAt > Date.now()) await new Promise((r) => setTimeout(r, dueAt - Date.now()));
      if (active.cancelled) return;
      const delta = pcm.subarray(at, Math.min(at + chunkBytes, pcm.length)).toString('base64');
      this.#send({ type: 'response.output_audio.delta', ...part, delta });
    }
    this.#send({ type: 'response.output_audio.done', ...part });
    this.#send({ type: 'response.output_audio_transcript.done', ...part, transcript: text });
    this.#send({
      type: 'response.content_part.done',
      ...part,
      part: { type: 'audio', transcript: text },
    });
    active.openMessage = null;
    this.#send({
      type: 'response.output_item.done',
      response_id: active.id,
      output_index: index,
      item: { ...item, status: 'completed' },
    });
  }

  #callTool(active: ActiveResponse, name: string, args: string): void {
    const id = this.#host.nextId('item');
    const callId = this.#host.nextId('call');
    const item = { id, object: 'realtime.item', type: 'function_call', call_id: callId, name };
    active.toolCalls.push(name);
    this.#addOutputItem(
      active,
      { ...item, arguments: '' },
      { id, type: 'function_call', call_id: callId, name, arguments: args },
    );
    const index = active.output.length - 1;
    active.output[index] = { ...item, arguments: args };
    const where = { response_id: active.id, item_id: id, output_index: index, call_id: callId };
    this.#send({ type: 'response.function_call_arguments.delta', ...where, delta: args });
    this.#send({ type: 'response.function_call_arguments.done', ...where, arguments: args });
    this.#send({
      type: 'response.output_item.done',
      response_id: active.id,
      output_index: index,
      item: { ...item, arguments: args, status: 'completed' },
    });
  }

  /** The conversation as a brain reads it (instructions come from the session, not items). */
  #messages(): ModelMessage[] {
    const names = new Map(
      this.#items.flatMap((i) => (i.type === 'function_call' ? [[i.call_id, i.name]] : [])),
    );
    return this.#items.flatMap((item): ModelMessage[] => {
      if (item.type === 'function_call') {
        return [{ role: 'tool_call', name: item.name!, args: item.arguments! }];
      }
      if (item.type === 'function_call_output') {
        return [{ role: 'tool_result', name: names.get(item.call_id) ?? '', output: item.output! }];
      }
      if (item.role === 'system' || item.text === null || item.text === undefined) return [];
      return [{ role: item.role!, text: item.text }];
    });
  }
}

/** The words of a message item's content parts (text, or an audio part's transcript). */
function textOf(content: unknown): string {
  const parts = Array.isArray(content) ? content : content ? [content] : [];
  return parts
    .map((part: { text?: unknown; transcript?: unknown }) =>
      typeof part.text === 'string'
        ? part.text
        : typeof part.transcript === 'string'
          ? part.transcript
          : '',
    )
    .filter((text) => text !== '')
    .join(' ');
}

function concat(chunks: Int16Array[]): Int16Array {
  const out = new Int16Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
