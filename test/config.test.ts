import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, requireWorkerCredentials } from '../src/config.js';
import { maskPhoneNumber } from '../src/logging.js';

const LIVE = {
  LIVEKIT_URL: 'wss://example.livekit.cloud',
  LIVEKIT_API_KEY: 'key',
  LIVEKIT_API_SECRET: 'secret',
  OPENAI_API_KEY: 'sk-test',
};

describe('config', () => {
  it('has working defaults with an empty environment', () => {
    const config = loadConfig({});
    expect(config.maxHandoffs).toBe(4);
    expect(config.agentName).toBe('vobiz-call-agent');
    expect(config.models.mode).toBe('pipeline');
    expect(new Set(Object.values(config.models.voices)).size).toBe(4);
  });

  it('reads overrides', () => {
    const config = loadConfig({
      MAX_HANDOFFS: '2',
      MODEL_MODE: 'realtime',
      VOICE_BILLING: 'coral',
    });
    expect(config.maxHandoffs).toBe(2);
    expect(config.models.mode).toBe('realtime');
    expect(config.models.voices.billing).toBe('coral');
  });

  it('names a bad value in one line', () => {
    expect(() => loadConfig({ MAX_HANDOFFS: 'many' })).toThrow(ConfigError);
    expect(() => loadConfig({ MAX_HANDOFFS: 'many' })).toThrow(/^Invalid MAX_HANDOFFS: .*\.env/);
    expect(() => loadConfig({ MODEL_MODE: 'both' })).toThrow(/^Invalid MODEL_MODE/);
    expect(() => loadConfig({ MAX_HANDOFFS: 'many' })).toThrow(
      'Invalid MAX_HANDOFFS: "many" is not a whole number. Fix it in .env (see .env.example).',
    );
  });

  it('reads on/off settings, and refuses what is neither rather than reading it as off', () => {
    for (const on of ['1', 'true', 'TRUE', 'yes', 'on']) {
      expect(loadConfig({ INSPECT_PII: on }).inspect.pii, on).toBe(true);
    }
    for (const off of ['', '0', 'false', 'no', 'off']) {
      expect(loadConfig({ LOG_PII: off }).logPii, off).toBe(false);
    }
    expect(() => loadConfig({ INSPECT_PII: 'maybe' })).toThrow(
      'Invalid INSPECT_PII: use 1 (on) or 0 (off). Fix it in .env (see .env.example).',
    );
  });

  it('reads the fault settings, and names a bad one in one line', () => {
    const config = loadConfig({
      HOLD_LINE_MS: '800',
      DEAD_AIR_MS: '6000',
      FIRST_TOKEN_TIMEOUT_MS: '2500',
      CHUNK_GAP_TIMEOUT_MS: '1500',
      MODEL_RETRIES: '1',
      RETRY_AFTER_CAP_MS: '3000',
      MAX_FAILED_TURNS: '3',
      OPENAI_FALLBACK_MODEL: 'gpt-4.1-nano',
      HANDOFF_BRIDGE_LINE: 'off',
    });
    expect(config.reply).toEqual({
      deadlines: { holdLineMs: 800, firstTokenMs: 2500, chunkGapMs: 1500, deadAirMs: 6000 },
      policy: { maxRetries: 1, maxFailedTurns: 3, retryAfterCapMs: 3000, backoffMs: 250 },
    });
    expect(config.models.fallback).toEqual({ llm: 'gpt-4.1-nano', baseURL: undefined });
    expect(config.handoff.bridgeLine).toBe(false);
    expect(loadConfig({}).handoff.bridgeLine).toBe(true);
    for (const [name, value] of [
      ['HOLD_LINE_MS', 'soon'],
      ['DEAD_AIR_MS', '10'],
      ['FIRST_TOKEN_TIMEOUT_MS', '5'],
      ['MAX_FAILED_TURNS', '0'],
      ['HANDOFF_BRIDGE_LINE', 'maybe'],
      ['SNAPSHOT_KEY', 'short'],
      ['HEALTH_PORT', '70000'],
    ]) {
      expect(() => loadConfig({ [name!]: value })).toThrow(
        new RegExp(`^Invalid ${name}: .*\\.env`),
      );
    }
    expect(() => loadConfig({ OPENAI_FALLBACK_BASE_URL: 'http://127.0.0.1:1/v1' })).toThrow(
      /^OPENAI_FALLBACK_BASE_URL is set without OPENAI_FALLBACK_MODEL/,
    );
  });

  it('reads the speech fault settings, with one-line errors', () => {
    const config = loadConfig({
      OPENAI_STT_FALLBACK_MODEL: 'whisper-1',
      OPENAI_STT_FALLBACK_BASE_URL: 'http://127.0.0.1:2/v1',
      OPENAI_TTS_FALLBACK_VOICE: 'nova',
      SPEECH_TIMEOUT_MS: '2000',
      SPEECH_GAP_TIMEOUT_MS: '500',
      SPEECH_OUTAGE_MS: '8000',
    });
    expect(config.speech).toEqual({
      sttFallback: { model: 'whisper-1', baseURL: 'http://127.0.0.1:2/v1' },
      ttsFallback: { voice: 'nova', model: undefined, baseURL: undefined },
      timeoutMs: 2000,
      gapTimeoutMs: 500,
      outageMs: 8000,
    });
    expect(loadConfig({}).speech).toMatchObject({ timeoutMs: 3000, outageMs: 15_000 });
    for (const [name, value] of [
      ['SPEECH_TIMEOUT_MS', 'fast'],
      ['SPEECH_OUTAGE_MS', '10'],
    ]) {
      expect(() => loadConfig({ [name!]: value })).toThrow(
        new RegExp(`^Invalid ${name}: .*\\.env`),
      );
    }
    expect(() => loadConfig({ OPENAI_STT_FALLBACK_BASE_URL: 'http://127.0.0.1:2/v1' })).toThrow(
      /^OPENAI_STT_FALLBACK_BASE_URL is set without OPENAI_STT_FALLBACK_MODEL/,
    );
    expect(() => loadConfig({ OPENAI_TTS_FALLBACK_BASE_URL: 'http://127.0.0.1:2/v1' })).toThrow(
      /^OPENAI_TTS_FALLBACK_BASE_URL is set without OPENAI_TTS_FALLBACK_MODEL/,
    );
  });

  it('refuses malformed URLs, phone numbers and address blocks, naming the variable and why', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [
        { LIVEKIT_URL: 'not a url' },
        /^Invalid LIVEKIT_URL: "not a url" is not a ws:\/\/, wss:\/\//,
      ],
      [
        { OPENAI_BASE_URL: 'ws://127.0.0.1/v1' },
        /^Invalid OPENAI_BASE_URL: .* http:\/\/, https:\/\/ URL/,
      ],
      [
        { VOBIZ_OUTBOUND_NUMBER: '12345' },
        /^Invalid VOBIZ_OUTBOUND_NUMBER: "12345" has no \+ and country code/,
      ],
      [
        { VOBIZ_INBOUND_NUMBERS: '+919876543210,+91 98' },
        /^Invalid VOBIZ_INBOUND_NUMBERS: "\+91 98"/,
      ],
      [
        { VOBIZ_ALLOWED_ADDRESSES: 'notacidr' },
        /^Invalid VOBIZ_ALLOWED_ADDRESSES: "notacidr" is not an IP/,
      ],
      [
        { VOBIZ_ALLOWED_ADDRESSES: '10.0.0.0/33' },
        /^Invalid VOBIZ_ALLOWED_ADDRESSES: "10.0.0.0\/33"/,
      ],
      [{ TRANSFER_BILLING: '555-0100' }, /^Invalid TRANSFER_BILLING: .*or a sip: URI/],
    ];
    for (const [env, message] of cases) expect(() => loadConfig(env)).toThrow(message);
    expect(() =>
      loadConfig({
        LIVEKIT_URL: 'wss://acme.livekit.cloud',
        OPENAI_BASE_URL: 'http://127.0.0.1:8080/v1',
        VOBIZ_OUTBOUND_NUMBER: '+918041234567',
        VOBIZ_ALLOWED_ADDRESSES: '13.233.44.61/32, 2001:db8::/32',
        TRANSFER_BILLING: 'sip:billing@pbx.example.com',
        DEFAULT_TRANSFER_NUMBER: '+15550100000',
      }),
    ).not.toThrow();
  });

  it('accepts a complete worker environment', () => {
    expect(() => requireWorkerCredentials(loadConfig(LIVE))).not.toThrow();
    const { OPENAI_API_KEY: _, ...withBaseUrl } = LIVE;
    expect(() =>
      requireWorkerCredentials(
        loadConfig({ ...withBaseUrl, OPENAI_BASE_URL: 'http://127.0.0.1:1/v1' }),
      ),
    ).not.toThrow();
  });

  it('names every missing worker variable in one line and suggests the console', () => {
    const { LIVEKIT_API_SECRET: _, OPENAI_API_KEY: __, ...partial } = LIVE;
    let message = '';
    try {
      requireWorkerCredentials(loadConfig(partial));
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toBe(
      'Missing LIVEKIT_API_SECRET, OPENAI_API_KEY: set them in .env (see .env.example), ' +
        'or run "npm run console" for an offline call.',
    );
    expect(message).not.toContain('\n');
  });

  it('treats empty values as missing', () => {
    expect(() => requireWorkerCredentials(loadConfig({ ...LIVE, LIVEKIT_URL: '  ' }))).toThrow(
      /^Missing LIVEKIT_URL:/,
    );
  });
});

describe('masking', () => {
  it('keeps the country code and the last two digits', () => {
    expect(maskPhoneNumber('+919876543210')).toBe('+91********10');
    expect(maskPhoneNumber('1234')).toBe('****');
  });
});
