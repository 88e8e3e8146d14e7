/**
 * Fault scripts for the local speech server, per request, through its `beforeRequest` hook:
 * the realtime transcription websocket refused or closed after N utterances, HTTP errors on
 * transcription, and on speech requests an HTTP 500 or 429 or a stream that stalls. Speech
 * faults are armed by the test for the next request(s), so they hit the sentence the test means.
 *
 * `startFaultySpeechServer` starts a server with one script (the voice console tests);
 * `speechFaults` gives the hooks alone, with a script that can change between calls, for a
 * server started elsewhere (the live rig, where one worker takes several calls).
 */
import type { Duplex } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type SpeechRequest,
  type SpeechServer,
  type SpeechServerHooks,
  startSpeechServer,
} from '../src/speech/server.js';

export type SpeechFault = 'http-500' | 'http-429' | 'stall';

export interface SpeechFaultScript {
  /** Refuse every realtime transcription websocket (as a provider that is down or blocked). */
  refuseRealtime?: boolean;
  /** Close the first realtime websocket once this many utterances were transcribed on it. */
  closeRealtimeAfter?: number;
  /** Answer every HTTP transcription with this status. */
  transcriptionStatus?: number;
}

export interface ServedFault {
  route: string;
  fault: string;
  /** Speech faults: the text whose synthesis was refused. */
  text?: string | undefined;
}

export interface SpeechFaults {
  hooks: SpeechServerHooks;
  /** Faults that were served, in order. */
  served: ServedFault[];
  /** The next `count` speech requests get `fault` (count Infinity: all from now on). */
  arm(fault: SpeechFault, count?: number): void;
  /** From now on (a new call): this script; "the first realtime websocket" is the next one. */
  setScript(script: SpeechFaultScript): void;
  /** Follow `server`'s transcripts, for `closeRealtimeAfter`. */
  watch(server: SpeechServer): void;
}

export interface FaultyServer extends Pick<SpeechFaults, 'arm' | 'served'> {
  server: SpeechServer;
}

export function speechFaults(initial: SpeechFaultScript = {}): SpeechFaults {
  let script = initial;
  let armed: { fault: SpeechFault; left: number } | null = null;
  const served: ServedFault[] = [];
  let firstRealtime: Duplex | undefined;
  let realtimeSeen = false;
  let realtimeHeard = 0;
  const hooks: SpeechServerHooks = {
    beforeRequest: async (request: SpeechRequest) => {
      if (request.route === 'realtime') {
        if (script.refuseRealtime) {
          served.push({ route: 'realtime', fault: 'refused' });
          request.socket!.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
          return true;
        }
        if (!realtimeSeen) firstRealtime = request.socket;
        realtimeSeen = true;
        return false;
      }
      if (request.route === 'transcriptions' && script.transcriptionStatus) {
        served.push({ route: 'transcriptions', fault: `http-${script.transcriptionStatus}` });
        sendError(request.res!, script.transcriptionStatus);
        return true;
      }
      if (request.route === 'speech' && armed && armed.left > 0) {
        const { fault } = armed;
        armed.left -= 1;
        const entry: ServedFault = { route: 'speech', fault };
        served.push(entry);
        entry.text = await inputOf(request.req);
        if (fault === 'stall') stall(request.res!);
        else sendError(request.res!, fault === 'http-429' ? 429 : 500);
        return true;
      }
      return false;
    },
  };
  return {
    hooks,
    served,
    arm: (fault, count = 1) => {
      armed = { fault, left: count };
    },
    setScript: (next) => {
      script = next;
      armed = null;
      firstRealtime = undefined;
      realtimeSeen = false;
      realtimeHeard = 0;
    },
    watch: (server) => {
      server.on('heard', ({ via }) => {
        if (via !== 'realtime' || script.closeRealtimeAfter === undefined) return;
        if (++realtimeHeard !== script.closeRealtimeAfter || !firstRealtime) return;
        const socket = firstRealtime;
        // After the transcript just sent has been written: the provider hangs up mid-call.
        setImmediate(() => {
          served.push({ route: 'realtime', fault: 'closed' });
          socket.end();
        });
      });
    },
  };
}

export async function startFaultySpeechServer(
  phrases: readonly string[],
  script: SpeechFaultScript = {},
): Promise<FaultyServer> {
  const faults = speechFaults(script);
  const server = await startSpeechServer({ phrases, hooks: faults.hooks });
  faults.watch(server);
  return { server, served: faults.served, arm: faults.arm };
}

/** The text a speech request asks for (its body is read; the hook answers it). */
async function inputOf(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { input?: string }).input;
  } catch {
    return undefined;
  }
}

function sendError(res: ServerResponse, status: number): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    ...(status === 429 ? { 'retry-after': '1' } : {}),
  });
  res.end(JSON.stringify({ error: { message: `scripted ${status}`, type: 'server_error' } }));
}

/** Headers and a little audio, then nothing: the stream stalls until the client gives up. */
function stall(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'audio/pcm' });
  res.write(Buffer.alloc(480));
}
