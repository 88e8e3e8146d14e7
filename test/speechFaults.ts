/**
 * Fault scripts for the local speech server, per request, through its `beforeRequest` hook:
 * the realtime transcription websocket refused or closed after N utterances, HTTP errors on
 * transcription, and on speech requests an HTTP 500 or 429 or a stream that stalls. Speech
 * faults are armed by the test for the next request(s), so they hit the sentence the test means.
 */
import type { Duplex } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { type SpeechRequest, type SpeechServer, startSpeechServer } from '../src/speech/server.js';

export type SpeechFault = 'http-500' | 'http-429' | 'stall';

export interface SpeechFaultScript {
  /** Refuse every realtime transcription websocket (as a provider that is down or blocked). */
  refuseRealtime?: boolean;
  /** Close the first realtime websocket once this many utterances were transcribed on it. */
  closeRealtimeAfter?: number;
  /** Answer every HTTP transcription with this status. */
  transcriptionStatus?: number;
}

export interface FaultyServer {
  server: SpeechServer;
  /** The next `count` speech requests get `fault` (count Infinity: all from now on). */
  arm(fault: SpeechFault, count?: number): void;
  /** Faults that were served: which route, which fault, when (ms since the server started). */
  served: { route: string; fault: string }[];
}

export async function startFaultySpeechServer(
  phrases: readonly string[],
  script: SpeechFaultScript = {},
): Promise<FaultyServer> {
  let armed: { fault: SpeechFault; left: number } | null = null;
  const served: FaultyServer['served'] = [];
  let firstRealtime: Duplex | undefined;
  let realtimeHeard = 0;
  const server = await startSpeechServer({
    phrases,
    hooks: {
      beforeRequest: (request: SpeechRequest) => {
        if (request.route === 'realtime') {
          if (script.refuseRealtime) {
            served.push({ route: 'realtime', fault: 'refused' });
            request.socket!.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
            return true;
          }
          if (request.index === 1) firstRealtime = request.socket;
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
          served.push({ route: 'speech', fault });
          if (fault === 'stall') stall(request.res!);
          else sendError(request.res!, fault === 'http-429' ? 429 : 500);
          return true;
        }
        return false;
      },
    },
  });
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
  return {
    server,
    served,
    arm: (fault, count = 1) => {
      armed = { fault, left: count };
    },
  };
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
