/**
 * A local speech server that speaks OpenAI's protocols, backed by offline engines, so the
 * production `openai.STT` and `openai.TTS` run unchanged against it (the voice console and the
 * audio tests start one; a live LiveKit test can point a worker at it too).
 *
 *   POST /v1/audio/speech          {input, voice, response_format: "pcm"} -> 24 kHz s16le mono,
 *                                  spoken by flite in the flite voice mapped to `voice`
 *   POST /v1/audio/transcriptions  multipart (file: 16-bit WAV) -> {"text": ...} (pocketsphinx)
 *   GET  /v1/realtime?intent=transcription
 *                                  the realtime transcription websocket (openai.STT's default):
 *                                  an energy endpointer sends speech_started / speech_stopped
 *                                  with item_id, pocketsphinx the completed transcript
 *   GET  /v1/realtime?model=...    with `realtime.brain`: the OpenAI Realtime conversation
 *                                  websocket (MODEL_MODE=realtime), speech in and speech out:
 *                                  the same endpointer and recogniser hear the caller, the brain
 *                                  decides, flite speaks in the session's voice
 *                                  (./realtimeConversation.ts)
 *   POST /v1/chat/completions      forwarded to `chat.baseURL` when given (else 404), so one base
 *                                  URL serves STT, TTS and the LLM
 *
 * API (stable; other branches build on it):
 *
 *   const server = await startSpeechServer({ phrases, voices?, chat?, hooks?, logger?, port? });
 *   server.url                      'http://127.0.0.1:PORT/v1': OPENAI_BASE_URL for STT/TTS/LLM
 *   server.spoken / server.heard    every synthesis {voice, fliteVoice, text, atMs, durationMs}, every
 *                                   transcript {itemId, text, via: realtime|transcriptions, atMs}
 *   server.on('spoken' | 'heard' | 'speechStarted' | 'speechStopped', listener)
 *   server.voiceOf(samples)         which synthesis (so which voice) produced a stretch of audio
 *   server.setPhrases(lines)        the lines callers are expected to say (recognition grammar)
 *   await server.close()
 *
 * Faults (refused websocket, HTTP 500/429, stalled streams) plug in at `hooks.beforeRequest`,
 * which sees every request first and may answer it itself.
 */
import { EventEmitter, once } from 'node:events';
import {
  type IncomingMessage,
  type ServerResponse,
  createServer,
  request as httpRequest,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import {
  DEFAULT_FLITE_VOICES,
  type FliteVoice,
  TTS_SAMPLE_RATE,
  fliteVoiceFor,
  synthesize,
} from './flite.js';
import type { Brain, ModelRequest } from '../models/scriptedLlm.js';
import {
  type RealtimeFault,
  type RealtimeResponseRecord,
  serveRealtimeConversation,
} from './realtimeConversation.js';
import { serveRealtimeTranscription } from './realtimeTranscription.js';
import { grammarFor, recognize } from './recognizer.js';
import { decodeWav, pcmBytes } from './wav.js';

export type SpeechRoute = 'speech' | 'transcriptions' | 'realtime' | 'chat';

/** A request as the hooks see it, before the server serves it. */
export interface SpeechRequest {
  route: SpeechRoute;
  /** 1 for the first request on this route, 2 for the second, ... */
  index: number;
  req: IncomingMessage;
  /** HTTP routes: the response, for a hook that answers itself. */
  res?: ServerResponse;
  /** The realtime route: the upgrading socket, for a hook that refuses it. */
  socket?: Duplex;
}

export interface SpeechServerHooks {
  /**
   * Runs before every request is served. Resolve true when the hook has answered it itself
   * (written `res`, destroyed `socket`): the server then leaves it alone.
   */
  beforeRequest?(request: SpeechRequest): boolean | Promise<boolean>;
}

export interface SpeechServerOptions {
  /** Lines callers are expected to say: recognition is constrained to them (and their clauses). */
  phrases?: readonly string[];
  /** OpenAI voice name -> flite voice; unknown names get a stable one of the four. */
  voices?: Readonly<Record<string, FliteVoice>>;
  /**
   * Serve the Realtime conversation websocket, its answers decided by `brain`; `pace` is the
   * seconds of audio sent per second (default 2: faster than it plays, as OpenAI's is).
   */
  realtime?: {
    brain: Brain;
    pace?: number;
    /** A fault for a response (tests): see `RealtimeConversationHost.fault`. */
    fault?: (request: ModelRequest) => RealtimeFault | undefined;
  };
  /** Forward `/v1/chat/completions` to this OpenAI-compatible base URL (http://host:port/v1). */
  chat?: { baseURL: string };
  hooks?: SpeechServerHooks;
  logger?: Logger;
  /** Default: any free port on 127.0.0.1. */
  port?: number;
  host?: string;
  /** The realtime endpointer's RMS threshold for speech (s16 units). Default 300. */
  speechThreshold?: number;
  /** The endpointer ends an utterance after at least this much quiet. Default 500. */
  minSilenceMs?: number;
}

export interface SpokenLine {
  /** The OpenAI voice asked for. */
  voice: string;
  fliteVoice: FliteVoice;
  text: string;
  /** When it was synthesised, ms since the server started. */
  atMs: number;
  durationMs: number;
}

export interface HeardUtterance {
  itemId: string;
  text: string;
  via: 'realtime' | 'transcriptions';
  atMs: number;
}

export interface SpeechServerEvents {
  spoken: [SpokenLine];
  heard: [HeardUtterance];
  speechStarted: [{ itemId: string; atMs: number }];
  speechStopped: [{ itemId: string; atMs: number }];
  responded: [RealtimeResponseRecord];
}

export interface SpeechServer extends EventEmitter<SpeechServerEvents> {
  url: string;
  spoken: SpokenLine[];
  heard: HeardUtterance[];
  /** Every Realtime response, once done (MODEL_MODE=realtime). */
  responses: RealtimeResponseRecord[];
  voiceOf(samples: Int16Array): SpokenLine | undefined;
  setPhrases(phrases: readonly string[]): void;
  close(): Promise<void>;
}

class LocalSpeechServer extends EventEmitter<SpeechServerEvents> implements SpeechServer {
  url = '';
  readonly spoken: SpokenLine[] = [];
  readonly heard: HeardUtterance[] = [];
  readonly responses: RealtimeResponseRecord[] = [];
  readonly #audio: { line: SpokenLine; pcm: Buffer }[] = [];
  readonly #options: SpeechServerOptions;
  readonly #log: Logger;
  readonly #startedAt = Date.now();
  readonly #counts: Record<SpeechRoute, number> = {
    speech: 0,
    transcriptions: 0,
    realtime: 0,
    chat: 0,
  };
  readonly #http = createServer((req, res) => void this.#serve(req, res));
  readonly #wss = new WebSocketServer({ noServer: true });
  #grammar: Promise<string | null> = Promise.resolve(null);
  #items = 0;

  constructor(options: SpeechServerOptions) {
    super();
    this.#options = options;
    this.#log = options.logger ?? pino({ level: 'silent' });
    this.setPhrases(options.phrases ?? []);
    this.#http.on('upgrade', (req, socket, head) => void this.#upgrade(req, socket, head));
  }

  async listen(): Promise<void> {
    this.#http.listen(this.#options.port ?? 0, this.#options.host ?? '127.0.0.1');
    await once(this.#http, 'listening');
    const { address, port } = this.#http.address() as AddressInfo;
    this.url = `http://${address}:${port}/v1`;
  }

  setPhrases(phrases: readonly string[]): void {
    const grammar = grammarFor(phrases);
    grammar.catch(() => {}); // reported when used
    this.#grammar = grammar;
  }

  voiceOf(samples: Int16Array): SpokenLine | undefined {
    // The first loud 20 ms of the stretch, found byte-exactly in what was synthesised.
    const window = TTS_SAMPLE_RATE / 50;
    let start = 0;
    while (start + window <= samples.length && isQuiet(samples.subarray(start, start + window))) {
      start += window;
    }
    if (start + window > samples.length) return undefined;
    const needle = pcmBytes(samples.subarray(start, start + window));
    for (const { line, pcm } of this.#audio) {
      for (let at = pcm.indexOf(needle); at !== -1; at = pcm.indexOf(needle, at + 1)) {
        if (at % 2 === 0) return line;
      }
    }
    return undefined;
  }

  async close(): Promise<void> {
    for (const client of this.#wss.clients) client.terminate();
    this.#wss.close();
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  #now(): number {
    return Date.now() - this.#startedAt;
  }

  async #hook(request: Omit<SpeechRequest, 'index'>): Promise<boolean> {
    const index = ++this.#counts[request.route];
    const hook = this.#options.hooks?.beforeRequest;
    return hook ? await hook({ ...request, index }) : false;
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/$/, '');
      const route: SpeechRoute | undefined =
        req.method !== 'POST'
          ? undefined
          : path.endsWith('/audio/speech')
            ? 'speech'
            : path.endsWith('/audio/transcriptions')
              ? 'transcriptions'
              : path.endsWith('/chat/completions') && this.#options.chat
                ? 'chat'
                : undefined;
      if (!route) return sendError(res, 404, `no route ${req.method} ${path}`);
      if (await this.#hook({ route, req, res })) return;
      if (route === 'speech') await this.#speech(req, res);
      else if (route === 'transcriptions') await this.#transcriptions(req, res);
      else this.#forwardChat(req, res);
    } catch (error) {
      this.#log.warn({ err: error }, 'speech server request failed');
      if (!res.headersSent) sendError(res, 500, (error as Error).message);
      else res.destroy();
    }
  }

  async #speech(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = JSON.parse((await readBody(req)).toString('utf8')) as {
      input?: string;
      voice?: string;
      response_format?: string;
    };
    const text = body.input?.trim() ?? '';
    if (text === '') return sendError(res, 400, 'input is required');
    const format = body.response_format ?? 'pcm';
    if (format !== 'pcm') return sendError(res, 400, 'only response_format "pcm" is supported');
    const pcm = await this.#synthesize(text, body.voice ?? 'alloy');
    res.writeHead(200, { 'content-type': 'audio/pcm', 'content-length': pcm.length });
    res.end(pcm);
  }

  /** Speak `text` in the flite voice mapped to `voice`, and remember it (see voiceOf). */
  async #synthesize(text: string, voice: string): Promise<Buffer> {
    const fliteVoice = fliteVoiceFor(voice, this.#options.voices ?? DEFAULT_FLITE_VOICES);
    const pcm = await synthesize(text, fliteVoice);
    const line: SpokenLine = {
      voice,
      fliteVoice,
      text,
      atMs: this.#now(),
      durationMs: Math.round((pcm.length / 2 / TTS_SAMPLE_RATE) * 1000),
    };
    this.#audio.push({ line, pcm });
    this.spoken.push(line);
    this.emit('spoken', line);
    return pcm;
  }

  async #transcriptions(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const fields = parseMultipart(req.headers['content-type'] ?? '', await readBody(req));
    const file = fields.get('file');
    if (!file) return sendError(res, 400, 'file is required');
    const wav = decodeWav(file);
    const mono =
      wav.channels === 1 ? wav.samples : wav.samples.filter((_, i) => i % wav.channels === 0);
    const text = await recognize(mono, wav.sampleRate, await this.#grammar);
    this.#heard(`transcription_${++this.#items}`, text, 'transcriptions');
    const format = fields.get('response_format')?.toString('utf8') ?? 'json';
    if (format === 'text') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(text);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ text }));
  }

  #forwardChat(req: IncomingMessage, res: ServerResponse): void {
    const target = new URL(`${this.#options.chat!.baseURL.replace(/\/$/, '')}/chat/completions`);
    const upstream = httpRequest(
      target,
      {
        method: 'POST',
        headers: {
          'content-type': req.headers['content-type'] ?? 'application/json',
          ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
        },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      if (!res.headersSent) sendError(res, 502, `chat upstream: ${error.message}`);
      else res.destroy();
    });
    req.pipe(upstream);
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const transcription = url.searchParams.get('intent') === 'transcription';
    if (
      !url.pathname.replace(/\/$/, '').endsWith('/realtime') ||
      (!transcription && !this.#options.realtime)
    ) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    try {
      if (await this.#hook({ route: 'realtime', req, socket })) return;
    } catch (error) {
      this.#log.warn({ err: error }, 'speech server hook failed');
      socket.destroy();
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      if (!transcription) return this.#serveConversation(ws);
      serveRealtimeTranscription(ws, {
        transcribe: async (audio, sampleRate) => recognize(audio, sampleRate, await this.#grammar),
        speechStarted: (itemId) => this.emit('speechStarted', { itemId, atMs: this.#now() }),
        speechStopped: (itemId) => this.emit('speechStopped', { itemId, atMs: this.#now() }),
        transcribed: (itemId, text) => this.#heard(itemId, text, 'realtime'),
        nextItemId: () => `item_${++this.#items}`,
        minSilenceMs: this.#options.minSilenceMs ?? 500,
        threshold: this.#options.speechThreshold ?? 300,
        log: (message, detail) => this.#log.warn(detail ?? {}, message),
      });
    });
  }

  #serveConversation(ws: WebSocket): void {
    const { brain, pace = 2, fault } = this.#options.realtime!;
    serveRealtimeConversation(ws, {
      brain,
      ...(fault ? { fault } : {}),
      transcribe: async (audio, sampleRate) => recognize(audio, sampleRate, await this.#grammar),
      speak: (text, voice) => this.#synthesize(text, voice),
      speechStarted: (itemId) => this.emit('speechStarted', { itemId, atMs: this.#now() }),
      speechStopped: (itemId) => this.emit('speechStopped', { itemId, atMs: this.#now() }),
      transcribed: (itemId, text) => this.#heard(itemId, text, 'realtime'),
      nextId: (prefix) => `${prefix}_${++this.#items}`,
      minSilenceMs: this.#options.minSilenceMs ?? 500,
      threshold: this.#options.speechThreshold ?? 300,
      pace,
      responded: (response) => {
        this.responses.push(response);
        this.emit('responded', response);
      },
      log: (message, detail) => this.#log.warn(detail ?? {}, message),
    });
  }

  #heard(itemId: string, text: string, via: HeardUtterance['via']): void {
    const utterance: HeardUtterance = { itemId, text, via, atMs: this.#now() };
    this.heard.push(utterance);
    this.emit('heard', utterance);
  }
}

/** Start a speech server on loopback; see the module comment for the API. */
export async function startSpeechServer(options: SpeechServerOptions = {}): Promise<SpeechServer> {
  const server = new LocalSpeechServer(options);
  await server.listen();
  return server;
}

function isQuiet(samples: Int16Array): boolean {
  for (const sample of samples) if (Math.abs(sample) > 64) return false;
  return true;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sendError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message, type: 'invalid_request_error' } }));
}

/** The fields of a multipart/form-data body, by name. */
function parseMultipart(contentType: string, body: Buffer): Map<string, Buffer> {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  const fields = new Map<string, Buffer>();
  if (!boundary) return fields;
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`);
  let at = body.indexOf(delimiter);
  while (at !== -1) {
    const next = body.indexOf(delimiter, at + delimiter.length);
    if (next === -1) break;
    const part = body.subarray(at + delimiter.length + 2, next - 2); // CRLF after / before
    const split = part.indexOf('\r\n\r\n');
    if (split !== -1) {
      const headers = part.subarray(0, split).toString('utf8');
      const name = /name="([^"]+)"/.exec(headers)?.[1];
      if (name) fields.set(name, part.subarray(split + 4));
    }
    at = next;
  }
  return fields;
}
