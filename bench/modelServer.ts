/**
 * The benchmark's model: an OpenAI-compatible streaming chat-completions server that holds every
 * completion `latencyMs` before its first chunk (a model's time to first token), then streams
 * the reply of a brain (the console's offline keyword model) as a real server does: text in
 * small pieces, tool arguments in two halves. Both the project and the native agents talk to it
 * through the real OpenAI plugin, so both pay the same L per model request.
 */
import { once } from 'node:events';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Brain,
  type ChatCompletionsRequest,
  type ModelRequest,
  requestFromOpenAI,
} from '../src/models/scriptedLlm.js';

/** One completion as the server saw it: when it arrived and what it was asked. */
export interface ServedRequest {
  /** On the server's clock (see {@link ModelServer.clock}). */
  atMs: number;
  request: ModelRequest;
}

export interface ModelServer {
  /** Base URL for the OpenAI client, e.g. http://127.0.0.1:PORT/v1 */
  url: string;
  latencyMs: number;
  /** Requests in arrival order. */
  served: ServedRequest[];
  /** What arrival times are read from (a call's line clock); `performance.now()` by default. */
  clock: () => number;
  close(): Promise<void>;
}

export async function startModelServer(brain: Brain, latencyMs: number): Promise<ModelServer> {
  const served: ServedRequest[] = [];
  let counter = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'not found' } }));
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatCompletionsRequest;
    const request = requestFromOpenAI(body);
    served.push({ atMs: model.clock(), request });
    const reply = await brain(request);
    const id = `chatcmpl-${++counter}`;
    const created = Math.floor(Date.now() / 1000);
    const frame = (choices: unknown[]) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices })}\n\n`;
    const delta = (d: Record<string, unknown>, finish: string | null = null) =>
      frame([{ index: 0, delta: d, finish_reason: finish }]);
    const frames = [delta({ role: 'assistant', content: '' })];
    for (const piece of (reply.text ?? '').match(/.{1,12}/gs) ?? []) {
      frames.push(delta({ content: piece }));
    }
    const toolCalls = reply.toolCalls ?? [];
    toolCalls.forEach((call, index) => {
      const args = JSON.stringify(call.args);
      const half = Math.ceil(args.length / 2);
      frames.push(
        delta({
          tool_calls: [
            {
              index,
              id: `call_${counter}_${index}`,
              type: 'function',
              function: { name: call.name, arguments: args.slice(0, half) },
            },
          ],
        }),
        delta({ tool_calls: [{ index, function: { arguments: args.slice(half) } }] }),
      );
    });
    frames.push(delta({}, toolCalls.length > 0 ? 'tool_calls' : 'stop'), 'data: [DONE]\n\n');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    // The model's time to first token: nothing is sent before it.
    await new Promise((resolve) => setTimeout(resolve, latencyMs));
    for (const f of frames) res.write(f);
    res.end();
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return void res.destroy();
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: String(error) } }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const model: ModelServer = {
    url: `http://127.0.0.1:${port}/v1`,
    latencyMs,
    served,
    clock: () => performance.now(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return model;
}
