/**
 * Inspection without a browser: what leaves a call process (captured by a websocket server
 * standing in for the viewer), the reconnecting socket, the diagram, and the viewer's call store.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { type IncomingMessage, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { StatelyInspectionEvent } from '@statelyai/inspect';
import { WebSocket, WebSocketServer } from 'ws';
import { createActor, createMachine } from 'xstate';
import { freePort } from './support.js';
import { describe, expect, it } from 'vitest';
import { callMachine } from '../machines/callMachine.js';
import { loadConfig } from '../src/config.js';
import { CallStore } from '../src/inspection/calls.js';
import { diagramOf } from '../src/inspection/diagram.js';
import { type InspectMode, createCallInspection } from '../src/inspection/inspect.js';
import { outlineDefinition, redactMessage, redactValue } from '../src/inspection/redact.js';
import { startInspectorServer } from '../src/inspection/server.js';
import { InspectionSocket } from '../src/inspection/socket.js';

const NUMBER = '+919876543210';
const MASKED = '+91********10';
const SUMMARY = 'Caller said: I was charged twice for my subscription';
const CALLER_LINE = 'I was charged twice, call me back on 98765 43210';
const AGENT_LINE = 'I see two charges of 499 rupees on your account';

/** A viewer stand-in: resolves with every message of the first connection once it closes. */
async function captureServer(port = 0) {
  const server = new WebSocketServer({ port, host: '127.0.0.1' });
  await once(server, 'listening');
  const connected = once(server, 'connection');
  const received = connected.then(
    ([ws]) =>
      new Promise<string[]>((resolve) => {
        const messages: string[] = [];
        (ws as WebSocket).on('message', (data) => messages.push(data.toString()));
        (ws as WebSocket).on('close', () => resolve(messages));
      }),
  );
  return { port: (server.address() as AddressInfo).port, connected, received, server };
}

/** Run one call (and a machine with secrets in its definition) through an inspection. */
async function inspectCall(mode: InspectMode, pii: boolean): Promise<string> {
  const viewer = await captureServer();
  const inspection = createCallInspection({ mode, pii, host: '127.0.0.1', port: viewer.port });
  const inspect = inspection.inspect!;
  const call = createActor(callMachine, { input: { maxHandoffs: 4 }, inspect });
  call.start();
  call.send({ type: 'call.started', caller: { number: NUMBER, name: 'Asha Rao' } });
  call.send({ type: 'greeting.spoken' });
  call.send({
    type: 'handoff.requested',
    department: 'billing',
    reason: 'double charge',
    summary: SUMMARY,
  });
  inspection.transcript!.caller!(CALLER_LINE);
  inspection.transcript!.say!('billing', AGENT_LINE);
  const secretive = createMachine({
    id: 'secretive',
    context: { apiKey: 'sk-live-SECRET', note: `call ${NUMBER}` },
    initial: 'idle',
    states: {
      idle: { on: { go: { target: 'idle', actions: { type: 'x', params: { p: 'P-SECRET' } } } } },
    },
  });
  createActor(secretive, { input: { token: 'tok-SECRET' }, inspect }).start();
  await inspection.dispose();
  const messages = await viewer.received;
  viewer.server.close();
  return messages.join('\n');
}

describe('what leaves the call process', () => {
  it('masks phone numbers, hides caller text and never sends secrets', async () => {
    const sent = await inspectCall('local', false);
    expect(sent).toContain(MASKED);
    expect(sent).toContain('double charge'); // reasons stay readable
    expect(sent).toContain('"summary":"[redacted]"');
    // The transcript goes with the call (its root actor), each line redacted.
    const lines = sent
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; sessionId: string; line?: unknown })
      .filter((m) => m.type === '@call.transcript');
    expect(lines.map((m) => m.line)).toEqual([
      { speaker: 'caller', text: '[redacted]' },
      { speaker: 'billing', text: '[redacted]' },
    ]);
    expect(new Set(lines.map((m) => m.sessionId))).toEqual(
      new Set([(JSON.parse(sent.split('\n')[0]!) as { sessionId: string }).sessionId]),
    );
    for (const secret of [
      NUMBER,
      'Asha Rao',
      SUMMARY,
      CALLER_LINE,
      AGENT_LINE,
      'sk-live-SECRET',
      'tok-SECRET',
      'P-SECRET',
    ]) {
      expect(sent).not.toContain(secret);
    }
    // Actor ids carry a per-process tag, so calls from several processes stay apart.
    const ids = sent
      .split('\n')
      .map((line) => (JSON.parse(line) as { sessionId: string }).sessionId);
    expect(ids.every((id) => /^[0-9a-f]{8}\.x:\d+$/.test(id))).toBe(true);
  });

  it('with INSPECT_PII sends numbers and caller text, still no secrets', async () => {
    const sent = await inspectCall('local', true);
    expect(sent).toContain(NUMBER);
    expect(sent).toContain(SUMMARY);
    expect(sent).toContain(CALLER_LINE);
    expect(sent).toContain(AGENT_LINE);
    for (const secret of ['sk-live-SECRET', 'tok-SECRET', 'P-SECRET']) {
      expect(sent).not.toContain(secret);
    }
  });

  it('in stately mode never sends PII, even with INSPECT_PII', async () => {
    const sent = await inspectCall('stately', true);
    expect(sent).toContain(MASKED);
    expect(sent).not.toContain(NUMBER);
    expect(sent).not.toContain(SUMMARY);
    expect(sent).not.toContain(CALLER_LINE);
    expect(sent).not.toContain(AGENT_LINE);
  });

  it('never keeps a process alive, even without dispose, when nothing listens', async () => {
    const url = (path: string) => pathToFileURL(join(import.meta.dirname, '..', path)).href;
    const program = `
      import { createActor } from 'xstate';
      import { callMachine } from '${url('machines/callMachine.ts')}';
      import { createCallInspection } from '${url('src/inspection/inspect.ts')}';
      const inspection = createCallInspection(
        { mode: 'local', pii: false, host: '127.0.0.1', port: ${await freePort()} });
      const call = createActor(callMachine, { input: {}, inspect: inspection.inspect }).start();
      call.send({ type: 'call.started' });`;
    // A retry loop that held the event loop would run into the timeout (code null).
    const code = await new Promise((resolve) =>
      execFile(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', program],
        { timeout: 20_000 },
        (error) => resolve(error ? (error.code ?? null) : 0),
      ),
    );
    expect(code).toBe(0);
  });

  it('sends nothing and creates nothing when off', async () => {
    const inspection = createCallInspection({
      mode: 'off',
      pii: false,
      host: '127.0.0.1',
      port: 1,
    });
    expect(inspection.inspect).toBeUndefined();
    await inspection.dispose();
  });
});

describe('redaction', () => {
  it('masks numbers inside text but not dates, and is idempotent', () => {
    const once = redactValue(
      { endReason: `transfer to +91 98765 43210 failed on 2026-11-24` },
      {
        pii: false,
      },
    );
    expect(once).toEqual({ endReason: `transfer to ${MASKED} failed on 2026-11-24` });
    expect(redactValue(once, { pii: false })).toEqual(once);
  });

  it('keeps a definition drawable but without context or params', () => {
    const outline = JSON.parse(outlineDefinition(JSON.stringify(callMachine.config))!);
    expect(outline.context).toBeUndefined();
    expect(outline.states.reception.initial).toBe('greeting');
    expect(JSON.stringify(outline)).not.toContain('params');
  });

  it('drops what is not an inspection message', () => {
    expect(redactMessage({ type: '@xstate.microstep', sessionId: 'x:0' }, { pii: false })).toBe(
      null,
    );
    expect(redactMessage('hello', { pii: false })).toBe(null);
  });
});

describe('the diagram', () => {
  const definition = outlineDefinition(JSON.stringify(callMachine.config))!;

  it('draws every state, reception with its children, and the end as final', () => {
    const diagram = diagramOf(definition)!;
    const id = (path: string) =>
      Object.entries(diagram.states).find(([, p]) => p === path)?.[0] ?? 'missing';
    for (const path of ['reception', 'reception.greeting', 'reception.intent', 'billing']) {
      expect(id(path)).not.toBe('missing');
    }
    expect(diagram.text).toContain(`state "reception" as ${id('reception')} {`);
    expect(diagram.text).toContain(`${id('reception.greeting')} --> ${id('reception.intent')}`);
    // One arrow per pair of states, with no label; its events are listed beside the diagram.
    expect(diagram.text).toContain(`${id('billing')} --> ${id('support')}`);
    expect(diagram.text).not.toMatch(/-->.*:/);
    expect(diagram.transitions).toContainEqual({
      from: 'billing',
      to: 'support',
      events: ['handoff.requested'],
    });
    const pairs = diagram.transitions.map((t) => `${t.from}>${t.to}`);
    expect(new Set(pairs).size).toBe(pairs.length);
    expect(diagram.text).toContain(`${id('ended')} --> [*]`);
    // Refusals do not change the state: no arrow from a state to itself.
    expect(diagram.text).not.toMatch(/(s\d+) --> \1\b/);
  });

  it('returns null for a definition it cannot read', () => {
    expect(diagramOf('{not json')).toBe(null);
  });
});

const message = (type: string, n: number) =>
  ({ type, sessionId: 'x:0', n }) as unknown as StatelyInspectionEvent;

describe('the inspection socket', () => {
  it('buffers a bounded number of messages until a viewer comes up, then sends them once', async () => {
    const port = await freePort();
    const socket = new InspectionSocket({
      url: `ws://127.0.0.1:${port}`,
      maxBuffered: 3,
      retryMs: 10,
    });
    socket.start();
    socket.send(message('@xstate.actor', 0));
    for (let n = 1; n <= 4; n++) socket.send(message('@xstate.event', n));
    expect(socket.dropped).toBe(2);

    const viewer = await captureServer(port);
    await viewer.connected; // the socket's next retry
    const closed = socket.close();
    const received = (await viewer.received).map((m) => (JSON.parse(m) as { n: number }).n);
    await closed;
    viewer.server.close();
    // The actor first (its message was dropped from the buffer), then the newest three.
    expect(received).toEqual([0, 2, 3, 4]);
  });

  it('closes at once when nothing listens', async () => {
    const socket = new InspectionSocket({ url: `ws://127.0.0.1:${await freePort()}` });
    socket.start();
    socket.send(message('@xstate.event', 1));
    await socket.close();
    socket.send(message('@xstate.event', 2)); // ignored after close
  });
});

describe('the call store', () => {
  const source = { id: 1, app: 'test', pid: 1 };
  const snapshot = (value: unknown, context: object, status = 'active') => ({
    type: '@xstate.snapshot' as const,
    sessionId: 'a.x:0',
    rootId: 'a.x:0',
    createdAt: '1',
    id: null,
    event: { type: 'e' },
    snapshot: { status, value: value as string, context: context as never },
  });

  it('logs transitions, handoffs, refusals and the end reason from the context', () => {
    const store = new CallStore();
    const handoff = { from: 'reception', to: 'billing', reason: 'r1', summary: '[redacted]' };
    const refusal = { code: 'same-department', request: 'handoff', from: 'billing', to: 'billing' };
    store.ingest(source, snapshot({ reception: 'intent' }, { handoffs: [], refusals: [] }));
    store.ingest(source, snapshot('billing', { handoffs: [handoff], refusals: [] }));
    store.ingest(source, snapshot('billing', { handoffs: [handoff], refusals: [refusal] }));
    store.ingest(
      source,
      snapshot('ended', { handoffs: [handoff], refusals: [refusal], endReason: 'bye' }, 'done'),
    );
    store.disconnected(source);
    const [call] = store.list();
    expect(call!.log.map((e) => [e.kind, e.title, e.fields])).toEqual([
      ['transition', 'reception.intent → billing', { event: 'e' }],
      ['handoff', 'reception → billing', { reason: 'r1', summary: '[redacted]' }],
      ['refusal', 'refused handoff to billing', { code: 'same-department', from: 'billing' }],
      ['transition', 'billing → ended', { event: 'e' }],
      ['end', 'call ended', { reason: 'bye' }],
    ]);
    expect(call).toMatchObject({ status: 'done', connected: false, states: ['ended'] });
  });

  it('keeps the transcript in order, beside the log', () => {
    const store = new CallStore();
    const line = (speaker: string, text: string, createdAt: string) => ({
      type: '@call.transcript' as const,
      sessionId: 'a.x:0',
      createdAt,
      id: null,
      line: { speaker, text },
    });
    store.ingest(source, line('reception', 'Hello', '1'));
    store.ingest(source, snapshot({ reception: 'intent' }, {}));
    store.ingest(source, line('caller', '[redacted]', '2'));
    const [call] = store.list();
    expect(call!.transcript.map((l) => [l.speaker, l.text, l.at])).toEqual([
      ['reception', 'Hello', 1],
      ['caller', '[redacted]', 2],
    ]);
    expect(call!.log).toEqual([]);
  });

  it('keeps at most maxCalls calls, forgetting the oldest ended first', () => {
    const store = new CallStore({ maxCalls: 2 });
    for (const [i, id] of ['a', 'b', 'c'].entries()) {
      const message = {
        ...snapshot('billing', {}),
        sessionId: id,
        rootId: id,
        createdAt: `${i + 1}`,
      };
      store.ingest({ ...source, id: i }, message);
      if (id === 'b') store.disconnected({ ...source, id: i });
    }
    expect(store.list().map((call) => call.id)).toEqual(['c', 'a']);
  });
});

describe('the viewer server', () => {
  /** The first message a websocket client receives, or the HTTP status it was refused with. */
  async function firstMessage(url: string, origin?: string): Promise<unknown> {
    const ws = new WebSocket(url, origin ? { origin } : {});
    try {
      const [data] = await once(ws, 'message');
      return JSON.parse(String(data));
    } catch (error) {
      return Number(/\d{3}/.exec((error as Error).message)?.[0]);
    } finally {
      ws.close();
    }
  }

  it('redacts again on arrival, relays no PII to /stately, and keeps foreign pages out', async () => {
    const server = await startInspectorServer({ port: 0, host: '127.0.0.1', pii: false });
    const origin = server.url.slice(0, -1);
    const ws = server.url.replace('http', 'ws');
    try {
      const viewer = new WebSocket(`${ws}viewer`, { origin });
      await once(viewer, 'message'); // the (empty) call list
      const inBilling = new Promise<void>((resolve) =>
        viewer.on('message', (data) => {
          if (String(data).includes('"states":["billing"]')) resolve();
        }),
      );
      // A sender with INSPECT_PII on: this server, with it off, masks anyway.
      const inspection = createCallInspection({
        mode: 'local',
        pii: true,
        host: '127.0.0.1',
        port: server.port,
      });
      const call = createActor(callMachine, { input: {}, inspect: inspection.inspect! }).start();
      call.send({ type: 'call.started', caller: { number: NUMBER } });
      call.send({
        type: 'handoff.requested',
        department: 'billing',
        reason: 'r',
        summary: SUMMARY,
      });
      await inBilling;
      await inspection.dispose();
      viewer.close();

      const calls = await (await fetch(`${server.url}api/calls`)).text();
      const relayed = JSON.stringify(await firstMessage(`${ws}viewer?raw=1`, origin));
      for (const shown of [calls, relayed]) {
        expect(shown).toContain(MASKED);
        expect(shown).not.toContain(NUMBER);
        expect(shown).not.toContain(SUMMARY);
      }
      expect(await firstMessage(`${ws}viewer`, 'http://evil.example')).toBe(403);
      expect(await firstMessage(`${ws}viewer`)).toBe(403);
      // A web page may not pose as a call process either.
      expect(await firstMessage(ws, 'http://evil.example')).toBe(403);
      // DNS rebinding: a page of evil.example resolved to 127.0.0.1 sends its own Host.
      const request = get(`${server.url}api/calls`, { headers: { host: 'evil.example' } });
      const [response] = (await once(request, 'response')) as [IncomingMessage];
      response.resume();
      expect(response.statusCode).toBe(403);
    } finally {
      await server.close();
    }
  });
});

describe('inspection configuration', () => {
  it('is off by default, local under npm run dev, and an explicit INSPECT wins', () => {
    expect(loadConfig({}).inspect).toEqual({
      mode: 'off',
      port: 4747,
      host: '127.0.0.1',
      pii: false,
    });
    expect(loadConfig({ npm_lifecycle_event: 'dev' }).inspect.mode).toBe('local');
    expect(loadConfig({ npm_lifecycle_event: 'dev', INSPECT: 'off' }).inspect.mode).toBe('off');
    expect(loadConfig({ INSPECT: 'stately', INSPECT_PII: '1' }).inspect).toMatchObject({
      mode: 'stately',
      pii: true,
    });
    expect(() => loadConfig({ INSPECT: 'on' })).toThrow(/^Invalid INSPECT:/);
  });
});

describe('npm run inspector', () => {
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, '..', 'src', 'cli', 'inspector.ts'), ...args],
        { timeout: 30_000 },
        (error, stdout, stderr) =>
          resolve({ code: (error as { code?: number } | null)?.code ?? 0, stdout, stderr }),
      );
    });

  it('prints its usage for --help, and refuses a bad flag with the usage and exit 2', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm run inspector\n/);
    const bad = await run(['--port', '5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.split('\n')[0]).toBe("inspector: Unknown option '--port'");
    expect(bad.stderr).toContain('Usage: npm run inspector');
    expect(bad.stdout).toBe('');
  });
});
