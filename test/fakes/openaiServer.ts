/**
 * An OpenAI-compatible chat-completions server driven by a brain (./model.ts or the offline
 * model): it speaks OpenAI's protocol (SSE streaming and tool calls) so the real
 * `@livekit/agents-plugin-openai` LLM can be pointed at it, and injects faults on request.
 */
import { once } from 'node:events';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Brain,
  type ChatCompletionsRequest,
  requestFromOpenAI,
} from '../../src/models/scriptedLlm.js';

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
  requests: ChatCompletionsRequest[];
  /** Queue faults for the next requests, in order. */
  fault(...faults: Fault[]): void;
  /** Faults not yet met. */
  readonly pendingFaults: number;
  /** Forget the faults not yet met. */
  clearFaults(): void;
  close(): Promise<void>;
}

export async function startOpenAICompatibleServer(brain: Brain): Promise<OpenAICompatibleServer> {
  const requests: ChatCompletionsRequest[] = [];
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
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatCompletionsRequest;
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
