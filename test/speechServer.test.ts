/**
 * The local speech server against the production OpenAI plugin: TTS per voice, the realtime
 * transcription websocket (openai.STT's default), the batch transcription endpoint, and chat
 * completions forwarded to a model server, all on one base URL.
 */
import { concat } from '../src/voice/line.js';
import { stt } from '@livekit/agents';
import * as openai from '@livekit/agents-plugin-openai';
import type { AudioFrame } from '@livekit/rtc-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type SpeechServer, startSpeechServer } from '../src/speech/server.js';
import { synthesize } from '../src/speech/flite.js';
import { bytesToSamples } from '../src/speech/wav.js';
import { type OpenAICompatibleServer, startOpenAICompatibleServer } from './fakes/openaiServer.js';
import { scriptedBrain } from './fakes/model.js';
import { describeWithSpeech, frames20ms } from './speech.js';

const CALLER_LINES = [
  'Hi, I was charged twice for my subscription this month',
  'Also the app keeps crashing when I open it',
  'Thanks, that fixed it. Bye!',
];

async function collect(stream: AsyncIterable<{ frame: AudioFrame }>): Promise<Int16Array> {
  const parts: Int16Array[] = [];
  for await (const { frame } of stream) parts.push(frame.data.slice());
  return concat(parts);
}

describeWithSpeech('local speech server', () => {
  let server: SpeechServer;
  let model: OpenAICompatibleServer;

  beforeAll(async () => {
    model = await startOpenAICompatibleServer(
      scriptedBrain({ hello: { text: 'Hi from the model' } }),
    );
    server = await startSpeechServer({ phrases: CALLER_LINES, chat: { baseURL: model.url } });
  });
  afterAll(async () => {
    await server.close();
    await model.close();
  });

  it('speaks each OpenAI voice in its own flite voice and knows which voice made the audio', async () => {
    const alloy = new openai.TTS({ baseURL: server.url, apiKey: 'k', voice: 'alloy' });
    const sage = new openai.TTS({ baseURL: server.url, apiKey: 'k', voice: 'sage' });
    const a = await collect(alloy.synthesize('Thank you for calling Acme.'));
    const b = await collect(sage.synthesize('Thank you for calling Acme.'));
    expect(a.length).toBeGreaterThan(24_000 * 0.8); // about a second of 24 kHz audio
    expect(server.voiceOf(a)).toMatchObject({ voice: 'alloy', fliteVoice: 'slt' });
    expect(server.voiceOf(b)).toMatchObject({ voice: 'sage', fliteVoice: 'rms' });
    expect(server.voiceOf(a.subarray(12_000))?.voice).toBe('alloy'); // from the middle too
  });

  it('transcribes over the realtime websocket with speech_started/stopped, as openai.STT uses it', async () => {
    const recogniser = new openai.STT({
      baseURL: server.url,
      apiKey: 'k',
      model: 'gpt-4o-transcribe',
    });
    const stream = recogniser.stream();
    const events: stt.SpeechEvent[] = [];
    const finals: string[] = [];
    const done = (async () => {
      for await (const event of stream) {
        events.push(event);
        if (event.type === stt.SpeechEventType.FINAL_TRANSCRIPT) {
          finals.push(event.alternatives![0].text);
          if (finals.length === 2) return;
        }
      }
    })();
    const silence = new Int16Array(24_000); // one second
    for (const line of [CALLER_LINES[0]!, CALLER_LINES[2]!]) {
      const speech = bytesToSamples(await synthesize(line, 'awb'));
      for (const frame of frames20ms(speech)) stream.pushFrame(frame);
      for (const frame of frames20ms(silence)) stream.pushFrame(frame);
    }
    await done;
    stream.close();
    expect(finals).toEqual([
      'hi i was charged twice for my subscription this month',
      'thanks that fixed it bye',
    ]);
    const kinds = events
      .map((e) => e.type)
      .filter((t) => t !== stt.SpeechEventType.RECOGNITION_USAGE);
    // Frames are pushed faster than real time, so the second utterance may start before the
    // first transcript: only the order within an utterance is fixed.
    expect(kinds.slice(0, 2)).toEqual([
      stt.SpeechEventType.START_OF_SPEECH,
      stt.SpeechEventType.END_OF_SPEECH,
    ]);
    expect(kinds.indexOf(stt.SpeechEventType.FINAL_TRANSCRIPT)).toBeGreaterThan(1);
    expect(server.heard.filter((h) => h.via === 'realtime').map((h) => h.text)).toEqual(finals);
  });

  it('transcribes a WAV posted to /v1/audio/transcriptions', async () => {
    const recogniser = new openai.STT({
      baseURL: server.url,
      apiKey: 'k',
      useRealtime: false,
      model: 'whisper-1',
    });
    const speech = bytesToSamples(await synthesize(CALLER_LINES[1]!, 'slt'));
    const event = await recogniser.recognize(frames20ms(speech));
    expect(event.alternatives![0].text).toBe('also the app keeps crashing when i open it');
  });

  it('forwards chat completions to the model server on the same base URL', async () => {
    const response = await fetch(`${server.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }] }),
    });
    const body = (await response.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]!.message.content).toBe('Hi from the model');
  });

  it('lets a hook answer a request before it is served (the seam for fault scripts)', async () => {
    const faulty = await startSpeechServer({
      hooks: {
        beforeRequest: ({ route, index, res }) => {
          if (route !== 'speech' || index !== 1) return false;
          res!.writeHead(500).end();
          return true;
        },
      },
    });
    try {
      const post = () =>
        fetch(`${faulty.url}/audio/speech`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ input: 'Hello', voice: 'echo', response_format: 'pcm' }),
        });
      expect((await post()).status).toBe(500);
      expect((await post()).status).toBe(200);
      expect(faulty.spoken.map((s) => s.fliteVoice)).toEqual(['awb']);
    } finally {
      await faulty.close();
    }
  });
});
