/**
 * What the OpenAI wire says that the SDK drops on the way up: the `Retry-After` of a refused
 * request, a `content_filter` finish, a plain JSON body where a stream was asked for. The
 * OpenAI client is given a `fetch` that notes these per request; the reply guard reads them
 * when it classifies a failure. The same `fetch` mends one stream shape the SDK mis-parses
 * (see `mendStream`).
 */

export interface WireNote {
  host: string;
  status: number;
  /** From `retry-after-ms` or `retry-after` (seconds or an HTTP date). */
  retryAfterMs?: number;
  /** The stream finished with `content_filter`. */
  filtered: boolean;
  /** A 200 that was not an event stream although one was asked for. */
  notAStream: boolean;
}

export class WireObserver {
  #last: WireNote | null = null;

  /** The latest response's note (reset when a new request starts). */
  get last(): WireNote | null {
    return this.#last;
  }

  /** A `fetch` for `new OpenAI({ fetch })`. */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    this.#last = null;
    const response = await fetch(input, init);
    const note: WireNote = {
      host: url.host,
      status: response.status,
      filtered: false,
      notAStream: false,
    };
    const retryAfterMs = parseRetryAfter(response.headers);
    if (retryAfterMs !== undefined) note.retryAfterMs = retryAfterMs;
    this.#last = note;
    const asked = typeof init?.body === 'string' && init.body.includes('"stream":true');
    const type = response.headers.get('content-type') ?? '';
    if (!response.ok || !asked || !response.body) return response;
    if (!type.includes('text/event-stream')) {
      note.notAStream = true;
      return response;
    }
    return new Response(response.body.pipeThrough(mendStream(note)), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

/**
 * The event stream on its way to the SDK, one `data:` line at a time:
 * - a `content_filter` finish is noted (the SDK ignores finish reasons);
 * - a tool call that reuses the `index` of an earlier one with a new `id` gets an index of its
 *   own. The SDK (agents 1.9, `inference/llm.ts` parseChoice) starts a new call only when the
 *   index changes, so without this the first call is silently replaced by the second.
 * Everything else passes through byte for byte.
 */
function mendStream(note: WireNote): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let pending = '';
  /** Provider index -> [id, the index the SDK sees]. */
  const calls = new Map<number, { id: string; index: number }>();
  let nextIndex = 0;
  const mend = (line: string): string => {
    if (!line.startsWith('data:') || line.includes('[DONE]')) return line;
    let chunk: { choices?: { delta?: { tool_calls?: ToolCallDelta[] }; finish_reason?: string }[] };
    try {
      chunk = JSON.parse(line.slice(5));
    } catch {
      return line;
    }
    let changed = false;
    for (const choice of chunk.choices ?? []) {
      if (choice.finish_reason === 'content_filter') note.filtered = true;
      for (const call of choice.delta?.tool_calls ?? []) {
        const known = calls.get(call.index);
        if (call.id && known?.id !== call.id) {
          calls.set(call.index, { id: call.id, index: nextIndex++ });
        }
        const seen = calls.get(call.index);
        if (seen && seen.index !== call.index) {
          call.index = seen.index;
          changed = true;
        }
      }
    }
    return changed ? `data: ${JSON.stringify(chunk)}` : line;
  };
  return new TransformStream({
    transform(bytes, controller) {
      pending += decoder.decode(bytes, { stream: true });
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      if (lines.length > 0) controller.enqueue(encoder.encode(lines.map(mend).join('\n') + '\n'));
    },
    flush(controller) {
      if (pending) controller.enqueue(encoder.encode(mend(pending)));
    },
  });
}

interface ToolCallDelta {
  index: number;
  id?: string;
}

export function parseRetryAfter(headers: Headers): number | undefined {
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.has('retry-after-ms') && Number.isFinite(ms)) return ms;
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
