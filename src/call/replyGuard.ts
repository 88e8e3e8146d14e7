/**
 * The reply guard: every model request an agent makes goes through it (`CallAgent.llmNode`).
 * It measures, the machine decides:
 *
 * - deadlines the project enforces (the OpenAI client's timeout covers only the headers): the
 *   first words or tool call within `firstTokenMs`, then no gap over `chunkGapMs`; a request
 *   past either is cancelled and reported as `timeout` or `stall` (`cut` once words were heard);
 * - a hold line when nothing has been heard `holdLineMs` after the request started (the caller
 *   has just finished): `reply.late`, and the machine says whether to speak it;
 * - failures, classified from the SDK's error and what the wire said (status, Retry-After,
 *   content filter): `reply.failed {kind, attempt}`, and the machine answers retry (after a
 *   delay it computed), apologise (a line spoken in this same turn) or stop (it moved on to a
 *   person or the end);
 * - a reply that reached the caller: `reply.recovered`.
 *
 * It also keeps a promise honest: a reply that says it is transferring the caller without
 * calling any tool gets one more request, with a tool call required, in the same turn. That
 * choice over telling the caller "sorry, I couldn't": the words were already heard, the caller
 * wants what was promised, and only a tool call can make it happen (the machine still decides).
 * If that request brings no tool call either, the caller is told plainly.
 */
import type { llm } from '@livekit/agents';
import { APIStatusError, APITimeoutError, FlushSentinel } from '@livekit/agents';
import type { Logger } from 'pino';
import type { AgentName, ReplyFailureKind } from '../../machines/callMachine.js';
import { LINES } from './lines.js';
import type { WireObserver } from '../models/openaiWire.js';

export interface ReplyDeadlines {
  /** No words or tool call this long after a request starts: cancelled (default 3000). */
  firstTokenMs: number;
  /** No chunk this long once the reply has started: cancelled (default 2000). */
  chunkGapMs: number;
  /** Nothing heard this long after the caller finished: the machine may hold (default 1500). */
  holdLineMs: number;
  /**
   * The agent owes words and nothing is said or in progress this long: `reply.failed {kind:
   * 'missing'}` (src/call/deadAir.ts; default 4000).
   */
  deadAirMs: number;
}

export const DEFAULT_REPLY_DEADLINES: ReplyDeadlines = {
  firstTokenMs: 3_000,
  chunkGapMs: 2_000,
  holdLineMs: 1_500,
  deadAirMs: 4_000,
};

export interface ReplyFailure {
  replyId: string;
  agent: AgentName;
  kind: ReplyFailureKind;
  attempt: number;
  retryAfterMs?: number;
  /** For the log: the provider's host and HTTP status, when known. */
  host?: string;
  status?: number;
  error?: string;
}

/** What the machine decided about a failure. */
export type ReplyDecision =
  | { retryInMs: number }
  /** Speak this line in the turn (an apology), or nothing when the machine moved on. */
  | { say: string | null; interrupt?: boolean };

/** The bridge's side: reports go to the machine, decisions come back synchronously. */
export interface ReplyReporter {
  late(replyId: string, agent: AgentName): string | null;
  failed(failure: ReplyFailure): ReplyDecision;
  recovered(agent: AgentName): void;
  /** Speak a line as its own speech, after the current one (used after a cut reply). */
  speakNext(line: string): void;
  /** Aborts when the call ends: nothing more is spoken or retried. */
  readonly endSignal: AbortSignal;
  readonly deadlines: ReplyDeadlines;
  readonly wire: WireObserver | undefined;
  readonly log: Logger;
}

type Chunk = llm.ChatChunk | string | typeof FlushSentinel;
type ModelSettings = { toolChoice?: llm.ToolChoice };

export interface GuardedRequest {
  agent: AgentName;
  /** The model the session uses: its `error` events carry what the stream swallows. */
  model: {
    on(event: 'error', listener: (e: { error: Error }) => void): unknown;
    off(event: 'error', listener: (e: { error: Error }) => void): unknown;
  } | null;
  chatCtx: llm.ChatContext;
  modelSettings: ModelSettings;
  open(chatCtx: llm.ChatContext, settings: ModelSettings): Promise<ReadableStream<Chunk> | null>;
  /** Mark the current speech as interrupted (a cut reply); false when it cannot be. */
  interrupt(): boolean;
}

class Deadline extends Error {}

let replies = 0;

/** Words that announce a transfer or handoff, in a sentence that is not a question or refusal. */
const PROMISE =
  /\b(transferr?ing|connecting|put(ting)? you through|hand(ing)? you (over|off)|passing you)\b[^.?!]*\b(billing|support|sales|team|department|colleague|person|someone|specialist|human|reception)\b[^?]*(?:[.!]|$)/i;
const NEGATED = /\b(can'?t|cannot|unable|not able|won'?t|couldn'?t)\b/i;

export function promisesTransfer(text: string): boolean {
  return text
    .split(/(?<=[.!?])\s+/)
    .some((sentence) => PROMISE.test(sentence) && !NEGATED.test(sentence));
}

const PROMISE_NUDGE =
  'You just told the caller you are transferring them, but you called no tool. Call the ' +
  'matching tool now. Say nothing else.';

export function guardReply(
  reporter: ReplyReporter,
  request: GuardedRequest,
): ReadableStream<Chunk> {
  let run: ReplyRun | undefined;
  return new ReadableStream<Chunk>({
    start: (controller) => {
      run = new ReplyRun(reporter, request, controller);
      // Not awaited: the session reads the stream while the run fills it.
      void run.run();
    },
    cancel: () => run?.cancel(),
  });
}

/** One turn's reply: its model requests (first try and retries), hold line and apology. */
class ReplyRun {
  readonly #replyId = `reply-${++replies}`;
  /** Words or a tool call reached the session in this turn. */
  #heard = false;
  #cancelled = false;

  constructor(
    private readonly reporter: ReplyReporter,
    private readonly request: GuardedRequest,
    private readonly controller: ReadableStreamDefaultController<Chunk>,
  ) {}

  cancel(): void {
    this.#cancelled = true;
  }

  get #stopped(): boolean {
    return this.#cancelled || this.reporter.endSignal.aborted;
  }

  #push(chunk: Chunk): void {
    if (!this.#stopped) this.controller.enqueue(chunk);
  }

  #speak(line: string): void {
    this.#push(`${line} `);
    this.#push(FlushSentinel);
  }

  async run(): Promise<void> {
    const { reporter, request } = this;
    const hold = setTimeout(() => {
      if (this.#heard || this.#stopped) return;
      const line = reporter.late(this.#replyId, request.agent);
      if (line) this.#speak(line);
    }, reporter.deadlines.holdLineMs);
    try {
      for (let attempt = 0; !this.#stopped; attempt++) {
        const outcome = await this.#attempt(attempt, request.chatCtx, request.modelSettings);
        if (outcome === 'done') {
          if (this.#heard) reporter.recovered(request.agent);
          break;
        }
        const decision = reporter.failed(outcome);
        logFailure(reporter.log, outcome, decision, this.#heard);
        if ('retryInMs' in decision) {
          await delay(decision.retryInMs, reporter.endSignal);
          continue;
        }
        // A cut reply is recorded as interrupted; the apology then follows as its own line.
        if (decision.interrupt && decision.say && request.interrupt()) {
          reporter.speakNext(decision.say);
          break;
        }
        if (decision.say) this.#speak(decision.say);
        break;
      }
    } catch (error) {
      reporter.log.warn({ err: error, agent: request.agent }, 'reply guard failed');
    } finally {
      clearTimeout(hold);
      if (!this.#cancelled) {
        try {
          this.controller.close();
        } catch {
          // already closed by the reader
        }
      }
    }
  }

  /**
   * One model request, forwarded as it streams. Resolves 'done' when it worked (or the call
   * ended), or with the failure to report.
   */
  async #attempt(
    attempt: number,
    chatCtx: llm.ChatContext,
    settings: ModelSettings,
    only: 'all' | 'tools' = 'all',
  ): Promise<'done' | ReplyFailure> {
    const { request, reporter } = this;
    const { deadlines } = reporter;
    let modelError: Error | undefined;
    const onError = (e: { error: Error }) => (modelError = e.error);
    request.model?.on('error', onError);
    let text = '';
    let tools = 0;
    let chunks = 0;
    try {
      const stream = await request.open(chatCtx, settings);
      if (!stream) return 'done';
      const reader = stream.getReader();
      try {
        for (;;) {
          const wait = text || tools ? deadlines.chunkGapMs : deadlines.firstTokenMs;
          const result = await readWithin(reader, wait, reporter.endSignal);
          if (result.done || this.#stopped) break;
          const chunk = result.value;
          chunks++;
          const words =
            typeof chunk === 'string'
              ? chunk
              : typeof chunk === 'object'
                ? (chunk.delta?.content ?? '')
                : '';
          const calls = typeof chunk === 'object' ? (chunk.delta?.toolCalls?.length ?? 0) : 0;
          text += words;
          tools += calls;
          if (only === 'tools') {
            if (calls > 0 && typeof chunk === 'object') {
              this.#heard = true;
              this.#push({
                id: chunk.id,
                delta: { role: 'assistant', toolCalls: chunk.delta!.toolCalls! },
              });
            }
            continue;
          }
          if (words || calls) this.#heard = true;
          this.#push(chunk);
        }
      } catch (error) {
        await reader.cancel().catch(() => {});
        if (!(error instanceof Deadline)) throw error;
        // Headers and chunks arrived but no words: a stall; nothing at all: a timeout.
        const answered = chunks > 0 || reporter.wire?.last?.status === 200;
        const kind = text || tools ? 'cut' : answered ? 'stall' : 'timeout';
        return this.#failure(attempt, kind);
      }
    } finally {
      request.model?.off('error', onError);
    }
    if (this.#stopped) return 'done';
    if (modelError) return this.#failure(attempt, classify(modelError, this.#heard), modelError);
    if (only === 'tools') return tools > 0 ? 'done' : this.#failure(attempt, 'empty');
    if (text.trim() === '' && tools === 0) {
      return this.#failure(attempt, reporter.wire?.last?.filtered ? 'filtered' : 'empty');
    }
    if (tools === 0 && promisesTransfer(text)) await this.#keepPromise(text);
    return 'done';
  }

  /** The reply announced a transfer and called no tool: ask once more, a tool call required. */
  async #keepPromise(said: string): Promise<void> {
    const { request, reporter } = this;
    reporter.log.info({ agent: request.agent }, 'reply promised a transfer without a tool call');
    const chatCtx = request.chatCtx.copy();
    chatCtx.addMessage({ role: 'assistant', content: said });
    chatCtx.addMessage({ role: 'system', content: PROMISE_NUDGE });
    const outcome = await this.#attempt(
      0,
      chatCtx,
      { ...request.modelSettings, toolChoice: 'required' },
      'tools',
    );
    if (outcome !== 'done') this.#speak(LINES.promiseBroken);
  }

  #failure(attempt: number, kind: ReplyFailureKind, error?: Error): ReplyFailure {
    const wire = this.reporter.wire?.last;
    const report: ReplyFailure = {
      replyId: this.#replyId,
      agent: this.request.agent,
      kind,
      attempt,
    };
    if (wire?.retryAfterMs !== undefined) report.retryAfterMs = wire.retryAfterMs;
    if (wire?.host) report.host = wire.host;
    const status = error instanceof APIStatusError ? error.statusCode : wire?.status;
    if (status !== undefined && status > 0) report.status = status;
    if (error) report.error = error.message;
    return report;
  }
}

function classify(error: Error, spoke: boolean): ReplyFailureKind {
  if (spoke) return 'cut';
  if (error instanceof APIStatusError) {
    // The plugin wraps every OpenAI client error as a status error; a lost connection has none.
    if (error.statusCode === 429) return 'rate-limited';
    if (error.statusCode >= 500) return 'http';
    if (error.statusCode >= 400) return 'rejected';
    return 'network';
  }
  if (error instanceof APITimeoutError) return 'timeout';
  return 'network';
}

function readWithin<T>(
  reader: ReadableStreamDefaultReader<T>,
  ms: number,
  signal: AbortSignal,
): Promise<{ done: true; value?: undefined } | { done: false; value: T }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Deadline()), ms);
    const onAbort = () => resolve({ done: true, value: undefined });
    signal.addEventListener('abort', onAbort, { once: true });
    reader.read().then(
      (result) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(result as { done: false; value: T });
      },
      (error: unknown) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

function logFailure(log: Logger, f: ReplyFailure, decision: ReplyDecision, heard: boolean): void {
  const outcome =
    'retryInMs' in decision
      ? `retry in ${decision.retryInMs} ms`
      : decision.say
        ? 'apology spoken'
        : 'machine moved on';
  log.warn(
    {
      agent: f.agent,
      kind: f.kind,
      attempt: f.attempt,
      host: f.host,
      status: f.status,
      retryAfterMs: f.retryAfterMs,
      error: f.error,
      decision: outcome,
      callerHeard: heard ? 'words of this reply' : 'nothing yet',
    },
    'model request failed',
  );
}
