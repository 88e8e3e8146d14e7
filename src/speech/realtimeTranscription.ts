/**
 * One realtime transcription websocket (`GET /v1/realtime?intent=transcription`), as
 * `openai.STT` uses it by default:
 *
 *   client: session.update, then input_audio_buffer.append {audio: base64 pcm16 24 kHz mono}
 *           (and input_audio_buffer.commit when it does its own endpointing)
 *   server: session.created / session.updated;
 *           with server VAD (turn_detection set): input_audio_buffer.speech_started {item_id,
 *           audio_start_ms}, input_audio_buffer.speech_stopped {item_id, audio_end_ms};
 *           then input_audio_buffer.committed and
 *           conversation.item.input_audio_transcription.completed {item_id, transcript}.
 */
import type { WebSocket } from 'ws';
import { Endpointer } from './endpointer.js';
import { bytesToSamples } from './wav.js';

export const REALTIME_SAMPLE_RATE = 24_000;

export interface RealtimeTranscriptionHost {
  /** Words in one utterance. */
  transcribe(audio: Int16Array, sampleRate: number): Promise<string>;
  /** Utterance boundaries and results, for the server's observations. */
  speechStarted(itemId: string): void;
  speechStopped(itemId: string): void;
  transcribed(itemId: string, text: string): void;
  nextItemId(): string;
  /** The server ends utterances after at least this much quiet, whatever the client asks. */
  minSilenceMs: number;
  threshold: number;
  log(message: string, detail?: Record<string, unknown>): void;
}

interface SessionUpdate {
  session?: {
    audio?: { input?: { turn_detection?: { silence_duration_ms?: number } | null } };
  };
}

export function serveRealtimeTranscription(ws: WebSocket, host: RealtimeTranscriptionHost): void {
  let endpointer: Endpointer | null = null;
  /** Audio since the last commit, when the client does the endpointing. */
  let buffered: Int16Array[] = [];
  let itemId = host.nextItemId();
  /** Transcripts are sent in utterance order even when recognition finishes out of order. */
  let results: Promise<void> = Promise.resolve();

  const send = (event: Record<string, unknown>) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(event));
  };
  const transcribeInOrder = (id: string, audio: Int16Array) => {
    const text = host.transcribe(audio, REALTIME_SAMPLE_RATE).catch((error: unknown) => {
      host.log('recognition failed', { err: error });
      return '';
    });
    results = results.then(async () => {
      const transcript = await text;
      host.transcribed(id, transcript);
      send({ type: 'input_audio_buffer.committed', item_id: id, previous_item_id: null });
      send({
        type: 'conversation.item.input_audio_transcription.completed',
        item_id: id,
        content_index: 0,
        transcript,
      });
    });
  };

  send({ type: 'session.created', session: { type: 'transcription' } });

  ws.on('message', (data) => {
    let event: { type?: string; audio?: string } & SessionUpdate;
    try {
      event = JSON.parse(data.toString()) as typeof event;
    } catch {
      send({ type: 'error', error: { type: 'invalid_request_error', message: 'not JSON' } });
      return;
    }
    switch (event.type) {
      case 'session.update': {
        const turnDetection = event.session?.audio?.input?.turn_detection;
        // Server VAD when the client asks for turn detection; else it commits by itself.
        endpointer = turnDetection
          ? new Endpointer({
              sampleRate: REALTIME_SAMPLE_RATE,
              threshold: host.threshold,
              silenceMs: Math.max(turnDetection.silence_duration_ms ?? 0, host.minSilenceMs),
            })
          : null;
        send({ type: 'session.updated', session: event.session ?? {} });
        return;
      }
      case 'input_audio_buffer.append': {
        const samples = bytesToSamples(Buffer.from(event.audio ?? '', 'base64'));
        if (!endpointer) {
          buffered.push(samples);
          return;
        }
        for (const boundary of endpointer.push(samples)) {
          if (boundary.type === 'started') {
            host.speechStarted(itemId);
            send({
              type: 'input_audio_buffer.speech_started',
              item_id: itemId,
              audio_start_ms: boundary.audioStartMs,
            });
          } else {
            host.speechStopped(itemId);
            send({
              type: 'input_audio_buffer.speech_stopped',
              item_id: itemId,
              audio_end_ms: boundary.audioEndMs,
            });
            transcribeInOrder(itemId, boundary.audio);
            itemId = host.nextItemId();
          }
        }
        return;
      }
      case 'input_audio_buffer.commit': {
        const audio = concat(buffered);
        buffered = [];
        if (audio.length === 0) return;
        transcribeInOrder(itemId, audio);
        itemId = host.nextItemId();
        return;
      }
      case 'input_audio_buffer.clear':
        buffered = [];
        return;
      default:
        return; // other client events are accepted and ignored
    }
  });
}

function concat(chunks: Int16Array[]): Int16Array {
  const out = new Int16Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
