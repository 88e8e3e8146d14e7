/**
 * The local viewer: one HTTP port serves the page and two websocket paths.
 *
 *   GET  /                 the viewer page (call list, diagram, event log, context)
 *   GET  /stately          the same calls in Stately's hosted inspector (loaded by your browser)
 *   GET  /api/calls        the calls as JSON
 *   WS   /                 inspectors in call processes send their messages here
 *   WS   /viewer           pages receive the calls, live (`?raw=1`: the raw messages, for /stately)
 *
 * Everything is redacted again on arrival (a sender may have INSPECT_PII on; this server shows
 * PII only if it has it on too), and the /stately relay never carries PII. Mermaid is served from
 * node_modules: the page needs no network. Only loopback Host headers are accepted when listening
 * on loopback (no DNS rebinding), only same-origin pages may read calls, and browsers may not
 * pose as inspectors.
 */
import { createReadStream } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { type CallView, CallStore, type Source } from './calls.js';
import { type InspectionMessage, redactMessage } from './redact.js';

export interface InspectorServerOptions {
  /** 0 picks a free port. */
  port: number;
  host: string;
  /** Show phone numbers and caller text (when the senders sent them). */
  pii: boolean;
  maxCalls?: number;
}

export interface InspectorServer {
  /** The page, e.g. http://127.0.0.1:4747/ */
  url: string;
  port: number;
  close(): Promise<void>;
}

const PAGE = join(import.meta.dirname, 'page');
const MERMAID = createRequire(import.meta.url).resolve('mermaid/dist/mermaid.min.js');
const CSP =
  "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; frame-ancestors 'none'";
const STATELY_CSP = `${CSP}; frame-src https://stately.ai`;

const ROUTES: Record<string, { file: string; type: string; csp?: string }> = {
  '/': { file: join(PAGE, 'index.html'), type: 'text/html', csp: CSP },
  '/viewer.js': { file: join(PAGE, 'viewer.js'), type: 'text/javascript' },
  '/viewer.css': { file: join(PAGE, 'viewer.css'), type: 'text/css' },
  '/stately': { file: join(PAGE, 'stately.html'), type: 'text/html', csp: STATELY_CSP },
  '/stately.js': { file: join(PAGE, 'stately.js'), type: 'text/javascript' },
  '/vendor/mermaid.min.js': { file: MERMAID, type: 'text/javascript' },
};

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
const MAX_RELAYED = 1_000;

export async function startInspectorServer(
  options: InspectorServerOptions,
): Promise<InspectorServer> {
  const viewers = new WebSocketServer({ noServer: true });
  const senders = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  /** Pages of /stately, which get the raw (redacted) messages instead of call views. */
  const rawViewers = new WeakSet<WebSocket>();
  const relayed: InspectionMessage[] = [];
  let pending = new Map<string, CallView>();
  let sourceCount = 0;

  const broadcast = (message: unknown, raw: boolean) => {
    const text = JSON.stringify(message);
    for (const client of viewers.clients) {
      if (rawViewers.has(client) === raw) client.send(text);
    }
  };
  // Changes are sent once per tick: one burst of messages from a call is one update.
  const store = new CallStore({
    ...(options.maxCalls !== undefined ? { maxCalls: options.maxCalls } : {}),
    onChange: (call) => {
      if (pending.size === 0) {
        setImmediate(() => {
          const calls = [...pending.values()];
          pending = new Map();
          for (const call of calls) broadcast({ type: 'call', call }, false);
        });
      }
      pending.set(call.id, call);
    },
  });

  const loopbackOnly = LOOPBACK.has(options.host);
  const hostAllowed = (req: IncomingMessage) => {
    if (!loopbackOnly) return true;
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    return LOOPBACK.has(host);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://viewer').pathname;
    if (!hostAllowed(req)) return end(res, 403, 'forbidden host');
    if (req.method !== 'GET') return end(res, 405, 'method not allowed');
    if (path === '/favicon.ico') return void res.writeHead(204).end();
    if (path === '/api/calls') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      return void res.end(JSON.stringify(store.list()));
    }
    const route = ROUTES[path];
    if (!route) return end(res, 404, 'not found');
    res.writeHead(200, {
      'content-type': `${route.type}; charset=utf-8`,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      ...(route.csp ? { 'content-security-policy': route.csp } : {}),
    });
    createReadStream(route.file)
      .on('error', () => res.destroy())
      .pipe(res);
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://viewer');
    const origin = req.headers.origin;
    if (!hostAllowed(req)) return refuse(socket, 403);
    if (url.pathname === '/viewer') {
      // Any web page may open a websocket to localhost: only this server's own pages may read.
      if (origin !== `http://${req.headers.host}`) return refuse(socket, 403);
      viewers.handleUpgrade(req, socket, head, (ws) => {
        const raw = url.searchParams.get('raw') === '1';
        if (raw) rawViewers.add(ws);
        ws.send(
          JSON.stringify(
            raw ? { type: 'raw', messages: relayed } : { type: 'calls', calls: store.list() },
          ),
        );
      });
    } else if (url.pathname === '/') {
      // Inspectors run in Node and send no Origin; a browser always does and may not post calls.
      if (origin !== undefined) return refuse(socket, 403);
      senders.handleUpgrade(req, socket, head, (ws) => {
        const pid = Number(url.searchParams.get('pid'));
        const source: Source = {
          id: ++sourceCount,
          app: (url.searchParams.get('app') ?? 'unknown').replace(/[^\w-]/g, '').slice(0, 20),
          pid: Number.isInteger(pid) && pid > 0 ? pid : null,
        };
        ws.on('message', (data, isBinary) => {
          if (isBinary) return;
          let raw: unknown;
          try {
            raw = JSON.parse(data.toString());
          } catch {
            return;
          }
          const shown = redactMessage(raw, { pii: options.pii });
          if (!shown) return;
          store.ingest(source, shown);
          // Stately's inspector knows XState's messages only; the transcript is this viewer's.
          if (shown.type === '@call.transcript') return;
          const forStately = options.pii ? redactMessage(raw, { pii: false })! : shown;
          relayed.push(forStately);
          if (relayed.length > MAX_RELAYED) relayed.shift();
          broadcast({ type: 'raw', messages: [forStately] }, true);
        });
        ws.on('close', () => store.disconnected(source));
      });
    } else refuse(socket, 404);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(`port ${options.port} on ${options.host} is in use (set INSPECT_PORT)`)
          : error,
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}/`,
    port,
    close: async () => {
      for (const client of [...viewers.clients, ...senders.clients]) client.terminate();
      viewers.close();
      senders.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function end(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${message}\n`);
}

function refuse(socket: Duplex, status: number): void {
  socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Forbidden'}\r\n\r\n`);
}
