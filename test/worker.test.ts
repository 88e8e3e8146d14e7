/**
 * What of the live worker runs without a LiveKit server: the entry point's configuration check,
 * Silero VAD loading offline, caller identity from SIP participants, and the realtime-model way
 * of speaking fixed lines.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ParticipantKind } from '@livekit/rtc-node';
import { describe, expect, it } from 'vitest';
import type { ScriptedLLM } from '../src/models/scriptedLlm.js';
import { callerFromParticipant } from '../src/livekit/telephony.js';
import { prewarm } from '../src/livekit/worker.js';
import { call } from './fakes/model.js';
import { startTestCall } from './fakes/session.js';

const ROOT = join(import.meta.dirname, '..');

describe('worker entry point', () => {
  it('refuses to start without credentials, naming them in one line', async () => {
    const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'src', 'main.ts'), 'start'],
        {
          cwd: ROOT,
          env: {
            PATH: process.env.PATH ?? '',
            LIVEKIT_URL: 'wss://example.livekit.cloud',
            LIVEKIT_API_KEY: '',
            LIVEKIT_API_SECRET: '',
            OPENAI_API_KEY: '',
            OPENAI_BASE_URL: '',
          },
          timeout: 30_000,
        },
        (error, _stdout, stderr) =>
          resolve({ code: (error as { code?: number } | null)?.code ?? 0, stderr }),
      );
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'Missing LIVEKIT_API_KEY, LIVEKIT_API_SECRET, OPENAI_API_KEY: set them in .env ' +
        '(see .env.example), or run "npm run console" for an offline call.\n',
    );
  });

  it('prewarms Silero VAD offline', async () => {
    const proc = { userData: {} as Record<string, unknown> };
    await prewarm(proc as never);
    expect(proc.userData.vad).toBeDefined();
    expect((proc.userData.vad as { label: string }).label).toMatch(/silero/i);
  });
});

describe('caller identity', () => {
  it('reads the number and call id of a SIP participant', () => {
    expect(
      callerFromParticipant({
        kind: ParticipantKind.SIP,
        name: 'Asha',
        attributes: { 'sip.phoneNumber': '+919812345678', 'sip.callID': 'SCL_abc' },
      }),
    ).toEqual({ number: '+919812345678', callId: 'SCL_abc', name: 'Asha' });
  });

  it('knows nothing about a web participant', () => {
    expect(
      callerFromParticipant({
        kind: ParticipantKind.STANDARD,
        attributes: { 'sip.phoneNumber': '+1' },
      }),
    ).toEqual({});
  });
});

describe('fixed lines with a realtime model (no TTS)', () => {
  it('has the model speak the greeting and goodbye instead of synthesising them', async () => {
    const c = await startTestCall({
      speech: 'generate',
      script: { bye: { toolCalls: [call('end_call', {})] } },
    });
    expect(c.said('reception')[0]).toMatch(/^Thank you for calling Acme/);
    expect(c.bridge.state).toBe('intent');
    await c.say('bye');
    await c.bridge.done;
    expect(c.said('reception').at(-1)).toBe('Thank you for calling Acme. Goodbye!');
    const model = c.model as ScriptedLLM;
    expect(model.requests.filter((r) => r.instructions.includes('Say exactly this'))).toHaveLength(
      2,
    );
  });
});
