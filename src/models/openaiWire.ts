/**
 * What the OpenAI wire says that the SDK drops on the way up: the `Retry-After` of a refused
 * request, a `content_filter` finish, a plain JSON body where a stream was asked for. The
 * OpenAI client is given a `fetch` that notes these per request; the reply guard reads them
 * when it classifies a failure.
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
    // Watch the stream go by for a content-filter finish; the chunks pass through unchanged.
    const decoder = new TextDecoder();
    let tail = '';
    const watch = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        const text = tail + decoder.decode(chunk, { stream: true });
        if (/"finish_reason"\s*:\s*"content_filter"/.test(text)) note.filtered = true;
        tail = text.slice(-64);
        controller.enqueue(chunk);
      },
    });
    return new Response(response.body.pipeThrough(watch), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
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
