/**
 * The websocket a call process sends its inspection messages through.
 *
 * @statelyai/inspect 0.7's own WebSocketAdapter is not used because, with nothing listening, it
 * retries every 5 s forever on a timer that `stop()` does not cancel (the process never exits),
 * it resends its whole buffer on every reconnect, and it does not reconnect after the viewer
 * restarts. This adapter plugs into the same `createInspector` and instead:
 * - buffers at most `maxBuffered` messages while disconnected (the oldest are dropped);
 * - reconnects with backoff on unref'd timers, so it never keeps a process alive by itself;
 * - after a reconnect announces the actors it knows first, so a restarted viewer sees the calls;
 * - `close()` delivers what is queued if connected (bounded by a timeout) and stops for good.
 */
import { once } from 'node:events';
import type { StatelyInspectionEvent } from '@statelyai/inspect';
import WebSocket from 'ws';

export interface InspectionSocketOptions {
  url: string;
  /** Messages kept while disconnected. */
  maxBuffered?: number;
  /** First reconnect delay; it doubles up to `maxRetryMs`. */
  retryMs?: number;
  maxRetryMs?: number;
}

const MAX_ACTORS = 50;

const isOpen = (ws: WebSocket) => ws.readyState === WebSocket.OPEN;

/** Resolves after `ms` on an unref'd timer: bounds a wait without keeping the process alive. */
function deadline(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Resolves on `event`, or on 'error' (which `events.once` would turn into a rejection). */
function settled(ws: WebSocket, event: 'open' | 'close'): Promise<void> {
  return once(ws, event).then(
    () => {},
    () => {},
  );
}

export class InspectionSocket {
  readonly #url: string;
  readonly #maxBuffered: number;
  readonly #firstRetryMs: number;
  readonly #maxRetryMs: number;
  #retryMs: number;
  #ws: WebSocket | null = null;
  #buffer: string[] = [];
  /** The last @xstate.actor message of each actor, by sessionId. */
  readonly #actors = new Map<string, string>();
  #retryTimer: NodeJS.Timeout | null = null;
  #lastWrite: Promise<void> = Promise.resolve();
  #stopped = false;
  /** Messages dropped because the buffer was full. */
  dropped = 0;

  constructor(options: InspectionSocketOptions) {
    this.#url = options.url;
    this.#maxBuffered = options.maxBuffered ?? 500;
    this.#firstRetryMs = options.retryMs ?? 1_000;
    this.#maxRetryMs = options.maxRetryMs ?? 30_000;
    this.#retryMs = this.#firstRetryMs;
  }

  start(): void {
    if (!this.#stopped && this.#ws === null && this.#retryTimer === null) this.#connect();
  }

  send(event: StatelyInspectionEvent): void {
    if (this.#stopped) return;
    const text = JSON.stringify(event);
    if (event.type === '@xstate.actor') {
      this.#actors.delete(event.sessionId);
      this.#actors.set(event.sessionId, text);
      if (this.#actors.size > MAX_ACTORS) this.#actors.delete(this.#actors.keys().next().value!);
    }
    if (this.#ws && isOpen(this.#ws)) this.#write(this.#ws, text);
    else {
      this.#buffer.push(text);
      if (this.#buffer.length > this.#maxBuffered) {
        this.#buffer.shift();
        this.dropped++;
      }
    }
  }

  /** For `createInspector`: stop at once, dropping anything queued. */
  stop(): void {
    void this.close(0);
  }

  /** Deliver what is queued (if connected, within `timeoutMs`), then close for good. */
  async close(timeoutMs = 1_000): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const ws = this.#ws;
    if (!ws) return;
    if (ws.readyState === WebSocket.CONNECTING && timeoutMs > 0) {
      // A short run may end before the handshake: give it the chance to deliver the call.
      await Promise.race([settled(ws, 'open'), settled(ws, 'close'), deadline(timeoutMs)]);
      if (isOpen(ws)) this.#flush(ws);
    }
    if (isOpen(ws) && timeoutMs > 0) {
      await Promise.race([this.#lastWrite, deadline(timeoutMs)]);
      const closed = settled(ws, 'close');
      ws.close(1000, 'call process done');
      await Promise.race([closed, deadline(timeoutMs)]);
    }
    ws.terminate();
    this.#buffer = [];
  }

  #connect(): void {
    const ws = new WebSocket(this.#url, { handshakeTimeout: 5_000 });
    this.#ws = ws;
    ws.on('open', () => {
      this.#retryMs = this.#firstRetryMs;
      if (!this.#stopped) this.#flush(ws);
    });
    // Every failure is followed by 'close', which schedules the retry; nothing else to do here.
    ws.on('error', () => {});
    ws.on('close', () => {
      if (this.#ws === ws) this.#ws = null;
      if (!this.#stopped) this.#scheduleRetry();
    });
  }

  #flush(ws: WebSocket): void {
    const pending = this.#buffer;
    this.#buffer = [];
    const queued = new Set(pending);
    for (const actor of this.#actors.values()) if (!queued.has(actor)) this.#write(ws, actor);
    for (const text of pending) this.#write(ws, text);
  }

  #write(ws: WebSocket, text: string): void {
    this.#lastWrite = new Promise((resolve) => ws.send(text, () => resolve()));
  }

  #scheduleRetry(): void {
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (!this.#stopped) this.#connect();
    }, this.#retryMs);
    this.#retryTimer.unref();
    this.#retryMs = Math.min(this.#retryMs * 2, this.#maxRetryMs);
  }
}
