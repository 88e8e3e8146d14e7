/**
 * The one module that reads the environment. Everything else takes a `Config`.
 * Variables are documented in `.env.example`; this file validates them once, at startup.
 */
import { isIP } from 'node:net';
import { config as loadDotenv } from 'dotenv';
import { z } from 'zod';
import {
  type AgentName,
  DEFAULT_MAX_HANDOFFS,
  DEFAULT_REPLY_POLICY,
  type ReplyPolicy,
} from '../machines/callMachine.js';
import { DEFAULT_REPLY_DEADLINES, type ReplyDeadlines } from './call/replyGuard.js';
import type { HandoffOpening } from './call/fastHandoff.js';
import { type KeypadMap, keypadFor, parseKeypadMap } from './call/keypad.js';
import { DEFAULT_FLOW, type Flow, transferSetting, voiceSetting } from '../machines/flow.js';
import {
  DEFAULT_SPEECH_GAP_TIMEOUT_MS,
  DEFAULT_SPEECH_OUTAGE_MS,
  DEFAULT_SPEECH_TIMEOUT_MS,
} from './call/speechHealth.js';

/** Thrown for bad configuration; its message is one line that says what to do. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

const milliseconds = (min: number, max: number) =>
  optionalString.pipe(z.coerce.number().int().min(min).max(max).optional());

/** A URL with one of `schemes`, e.g. LIVEKIT_URL: ws, wss, http or https. */
const url = (...schemes: string[]) =>
  optionalString.superRefine((value, ctx) => {
    if (value === undefined) return;
    let scheme: string | undefined;
    try {
      scheme = new URL(value).protocol.replace(/:$/, '');
    } catch {
      scheme = undefined;
    }
    if (scheme === undefined || !schemes.includes(scheme)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `"${value}" is not a ${schemes.map((s) => `${s}://`).join(', ')} URL`,
      });
    }
  });

/** A phone number in E.164: + then the country code and number, digits only. */
export const E164 = /^\+[1-9]\d{6,14}$/;
export const E164_HINT = 'a + then the country code and number, digits only, e.g. +919876543210';

/** Why `value` is not an E.164 number, or undefined when it is one. */
export function e164Problem(value: string): string | undefined {
  if (E164.test(value)) return undefined;
  if (!value.startsWith('+')) return `"${value}" has no + and country code (${E164_HINT})`;
  if (/[^\d+]/.test(value)) return `"${value}" has characters other than digits (${E164_HINT})`;
  return `"${value}" is not 8 to 16 characters long (${E164_HINT})`;
}

const phone = optionalString.superRefine((value, ctx) => {
  const problem = value === undefined ? undefined : e164Problem(value);
  if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
});

/** Where a transfer goes: an E.164 number, or a tel:/sip: URI. */
const transferTarget = optionalString.superRefine((value, ctx) => {
  if (value === undefined || /^(tel|sip|sips):\S+$/.test(value)) return;
  const problem = e164Problem(value);
  if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${problem}, or a sip: URI` });
});

const phoneList = optionalString.superRefine((value, ctx) => {
  for (const item of list(value)) {
    const problem = e164Problem(item);
    if (problem) return ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  }
});

const cidrList = optionalString.superRefine((value, ctx) => {
  for (const item of list(value)) {
    const [address = '', prefix, extra] = item.split('/');
    const version = isIP(address);
    const max = version === 6 ? 128 : 32;
    const okPrefix = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= max);
    if (version === 0 || !okPrefix || extra !== undefined) {
      return ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `"${item}" is not an IP address or CIDR block (e.g. 13.233.44.61/32)`,
      });
    }
  }
});

const onOff = optionalString.pipe(z.enum(['on', 'off']).optional());

/** 1/true/yes/on or 0/false/no/off; anything else is refused rather than read as off. */
const flag = optionalString
  .refine((value) => value === undefined || /^(1|0|true|false|yes|no|on|off)$/i.test(value), {
    message: 'use 1 (on) or 0 (off)',
  })
  .transform((value) => value !== undefined && /^(1|true|yes|on)$/i.test(value));

/** One line for a zod issue; "Expected number, received nan" says little to a person. */
function invalidSetting(issue: z.ZodIssue, env: NodeJS.ProcessEnv): ConfigError {
  const name = issue.path.join('.');
  const problem =
    issue.code === 'invalid_type' && issue.expected === 'number'
      ? `"${env[name] ?? ''}" is not a whole number`
      : issue.message;
  return new ConfigError(`Invalid ${name}: ${problem}. Fix it in .env (see .env.example).`);
}

const EnvSchema = z.object({
  LIVEKIT_URL: url('ws', 'wss', 'http', 'https'),
  LIVEKIT_API_KEY: optionalString,
  LIVEKIT_API_SECRET: optionalString,
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: url('http', 'https'),
  AGENT_NAME: optionalString,
  COMPANY_NAME: optionalString,
  MAX_HANDOFFS: optionalString.pipe(z.coerce.number().int().min(0).max(50).optional()),
  MODEL_MODE: optionalString.pipe(z.enum(['pipeline', 'realtime']).optional()),
  OPENAI_LLM_MODEL: optionalString,
  OPENAI_STT_MODEL: optionalString,
  OPENAI_TTS_MODEL: optionalString,
  OPENAI_REALTIME_MODEL: optionalString,
  LOG_LEVEL: optionalString.pipe(
    z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(),
  ),
  LOG_PII: flag,
  INSPECT: optionalString.pipe(z.enum(['off', 'local', 'stately']).optional()),
  INSPECT_PORT: optionalString.pipe(z.coerce.number().int().min(1).max(65535).optional()),
  INSPECT_HOST: optionalString,
  INSPECT_PII: flag,
  // Set by npm to the script being run: `npm run dev` inspects by default.
  npm_lifecycle_event: optionalString,
  VOBIZ_SIP_DOMAIN: optionalString,
  VOBIZ_USERNAME: optionalString,
  VOBIZ_PASSWORD: optionalString,
  VOBIZ_OUTBOUND_NUMBER: phone,
  VOBIZ_INBOUND_NUMBERS: phoneList,
  VOBIZ_ALLOWED_ADDRESSES: cidrList,
  OUTBOUND_TRUNK_ID: optionalString,
  RINGING_TIMEOUT_IN_S: optionalString.pipe(z.coerce.number().int().min(5).max(300).optional()),
  DEFAULT_TRANSFER_NUMBER: transferTarget,
  KEYPAD_MAP: optionalString,
  HANDOFF_MODE: optionalString.pipe(z.enum(['in-process', 'dispatch']).optional()),
  HANDOFF_JOIN_TIMEOUT_MS: optionalString.pipe(
    z.coerce.number().int().min(1000).max(60_000).optional(),
  ),
  MAX_CONCURRENT_CALLS: optionalString.pipe(z.coerce.number().int().min(1).max(100).optional()),
  DRAIN_TIMEOUT_MS: optionalString.pipe(
    z.coerce
      .number()
      .int()
      .min(1000)
      .max(24 * 3_600_000)
      .optional(),
  ),
  HANDOFF_BRIDGE_LINE: onOff,
  HANDOFF_OPENING: optionalString.pipe(z.enum(['model', 'brief']).optional()),
  SNAPSHOT_KEY: optionalString.pipe(z.string().min(16, 'use at least 16 characters').optional()),
  HEALTH_PORT: optionalString.pipe(z.coerce.number().int().min(0).max(65535).optional()),
  OPENAI_FALLBACK_MODEL: optionalString,
  OPENAI_FALLBACK_BASE_URL: url('http', 'https'),
  HOLD_LINE_MS: milliseconds(100, 30_000),
  DEAD_AIR_MS: milliseconds(500, 60_000),
  FIRST_TOKEN_TIMEOUT_MS: milliseconds(100, 120_000),
  CHUNK_GAP_TIMEOUT_MS: milliseconds(100, 120_000),
  MODEL_RETRIES: optionalString.pipe(z.coerce.number().int().min(0).max(10).optional()),
  RETRY_AFTER_CAP_MS: milliseconds(0, 60_000),
  MAX_FAILED_TURNS: optionalString.pipe(z.coerce.number().int().min(1).max(20).optional()),
  OPENAI_STT_FALLBACK_MODEL: optionalString,
  OPENAI_STT_FALLBACK_BASE_URL: optionalString,
  OPENAI_TTS_FALLBACK_VOICE: optionalString,
  OPENAI_TTS_FALLBACK_MODEL: optionalString,
  OPENAI_TTS_FALLBACK_BASE_URL: optionalString,
  SPEECH_TIMEOUT_MS: milliseconds(200, 30_000),
  SPEECH_GAP_TIMEOUT_MS: milliseconds(100, 30_000),
  SPEECH_OUTAGE_MS: milliseconds(1000, 300_000),
});

/** The settings, with each agent's `VOICE_<NAME>` and each department's `TRANSFER_<NAME>`. */
function envSchemaFor(flow: Flow) {
  const perAgent: Record<string, typeof optionalString | typeof transferTarget> = {
    [voiceSetting('reception')]: optionalString,
  };
  for (const { name } of flow.departments) {
    perAgent[voiceSetting(name)] = optionalString;
    perAgent[transferSetting(name)] = transferTarget;
  }
  return EnvSchema.extend(perAgent) as unknown as typeof EnvSchema;
}

export interface Config {
  /** The call flow: reception and its departments (machines/flow.ts). */
  flow: Flow;
  livekit: {
    url: string | undefined;
    apiKey: string | undefined;
    apiSecret: string | undefined;
  };
  openai: {
    apiKey: string | undefined;
    /** Any OpenAI-compatible server, e.g. a local one for tests. */
    baseURL: string | undefined;
  };
  /** The worker registers under this name; calls reach it only by explicit dispatch. */
  agentName: string;
  /** Spoken in the greeting and used in the agents' instructions. */
  companyName: string;
  /** Handoffs allowed per call before the machine refuses more. */
  maxHandoffs: number;
  models: {
    /** `pipeline`: STT + LLM + TTS + Silero VAD. `realtime`: one OpenAI Realtime model. */
    mode: 'pipeline' | 'realtime';
    llm: string;
    stt: string;
    tts: string;
    realtime: string;
    /** TTS voice per agent, so the caller hears who they are talking to. */
    voices: Record<AgentName, string>;
    /** A second model the SDK's FallbackAdapter switches to when the first fails. */
    fallback: { llm: string; baseURL: string | undefined } | undefined;
  };
  /** Deadlines on every model request, and what the machine does when they fail. */
  reply: { deadlines: ReplyDeadlines; policy: ReplyPolicy };
  /** Speech providers: fallbacks, the synthesis deadline, how long recognition may be down. */
  speech: SpeechConfig;
  /** LOG_LEVEL when set; each entry point picks its own default. */
  logLevel: string | undefined;
  /** Show phone numbers and transcripts in logs. Off by default. */
  logPii: boolean;
  /** Live statecharts of calls in a viewer (`npm run inspector`); see src/inspection/. */
  inspect: {
    /** `off`, `local`, or `stately` (Stately's hosted UI). Default: local under `npm run dev`. */
    mode: 'off' | 'local' | 'stately';
    /** Where the viewer listens and inspectors connect. */
    port: number;
    host: string;
    /** Send and show phone numbers and caller text. Off by default. */
    pii: boolean;
  };
  telephony: TelephonyConfig;
  /** Calls one worker takes at once; it reports its load from this, not from the host's CPU. */
  maxConcurrentCalls: number;
  /** On SIGTERM the worker takes no new calls and lets running ones go on this long, then ends them. */
  drainTimeoutMs: number;
  /**
   * The worker's health server port (LiveKit's `/` and `/worker`). Unset: 8081 for the main
   * worker, a free port for a department worker, so several workers run on one host.
   */
  healthPort: number | undefined;
  /**
   * The secret the room's crash-recovery snapshot is sealed with (SNAPSHOT_KEY); when unset, the
   * worker derives the key from LIVEKIT_API_SECRET. All workers of a deployment must agree.
   */
  snapshotSecret: string | undefined;
  handoff: {
    /** in-process: agents switch inside one session. dispatch: each department is a worker. */
    mode: 'in-process' | 'dispatch';
    /** How long to wait for the department's worker to join before switching in process. */
    joinTimeoutMs: number;
    /** The old agent says "One moment, I'm connecting you…" the moment a handoff is accepted. */
    bridgeLine: boolean;
    /**
     * The specialist's first words (HANDOFF_OPENING). `model`: its first model reply, after the
     * old agent's bridge line. `brief`: a sentence in its own voice built from the decision's
     * reason, spoken the moment it is active, while its first model reply is requested (see
     * src/call/fastHandoff.ts and BENCHMARKS.md).
     */
    opening: HandoffOpening;
  };
}

export interface SpeechConfig {
  /**
   * A second transcription provider (HTTP), tried after the realtime websocket and the HTTP
   * endpoint of the main one.
   */
  sttFallback: { model: string; baseURL: string | undefined } | undefined;
  /**
   * What speaks a line when an agent's voice fails: this voice (default: the agent's own, a
   * fresh request), on this model and server (default: the main ones).
   */
  ttsFallback: {
    voice: string | undefined;
    model: string | undefined;
    baseURL: string | undefined;
  };
  /** The longest wait for a speech response's headers before it counts as failed. */
  timeoutMs: number;
  /** The longest gap between a speech body's bytes before it counts as stalled. */
  gapTimeoutMs: number;
  /** Recognition down this long: a transfer to a person where configured, else a goodbye. */
  outageMs: number;
}

export interface TelephonyConfig {
  /** Vobiz trunk domain, e.g. abc123.sip.vobiz.ai: where outbound calls go. */
  sipDomain: string | undefined;
  username: string | undefined;
  password: string | undefined;
  /** The Vobiz number calls come from (caller id) and, by default, arrive on. */
  outboundNumber: string | undefined;
  inboundNumbers: string[];
  /** Source addresses LiveKit accepts inbound calls from (Vobiz's gateway by default). */
  allowedAddresses: string[];
  /** LiveKit outbound trunk id (printed by `npm run setup:telephony`). */
  outboundTrunkId: string | undefined;
  ringingTimeoutInS: number;
  /** Who takes a transfer to a person from each agent (reception uses the default). */
  humanNumbers: Partial<Record<AgentName, string>>;
  keypad: KeypadMap;
}

/** Vobiz's documented inbound gateway (docs.vobiz.ai, AI voice agent inbound guide). */
export const VOBIZ_GATEWAY_ADDRESS = '13.233.44.61/32';

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

/**
 * Read and validate configuration. Loads `.env` from the working directory unless `env` is given.
 * Missing LiveKit credentials are not an error here: only the worker needs them
 * (see {@link requireWorkerCredentials}).
 */
export function loadConfig(env?: NodeJS.ProcessEnv, flow: Flow = DEFAULT_FLOW): Config {
  if (env === undefined) {
    loadDotenv({ quiet: true });
    env = process.env;
  }
  const parsed = envSchemaFor(flow).safeParse(env);
  if (!parsed.success) throw invalidSetting(parsed.error.issues[0]!, env);
  const e = parsed.data as z.infer<typeof EnvSchema>;
  if (e.OPENAI_FALLBACK_BASE_URL && !e.OPENAI_FALLBACK_MODEL) {
    throw new ConfigError(
      'OPENAI_FALLBACK_BASE_URL is set without OPENAI_FALLBACK_MODEL: set the fallback model too, or remove it. Fix it in .env (see .env.example).',
    );
  }
  for (const [name, model] of [
    ['OPENAI_STT_FALLBACK_BASE_URL', e.OPENAI_STT_FALLBACK_MODEL],
    ['OPENAI_TTS_FALLBACK_BASE_URL', e.OPENAI_TTS_FALLBACK_MODEL ?? e.OPENAI_TTS_FALLBACK_VOICE],
  ] as const) {
    if (e[name] && !model) {
      const needs = name.startsWith('OPENAI_STT')
        ? 'OPENAI_STT_FALLBACK_MODEL'
        : 'OPENAI_TTS_FALLBACK_MODEL or OPENAI_TTS_FALLBACK_VOICE';
      throw new ConfigError(
        `${name} is set without ${needs}: set it too, or remove it. Fix it in .env (see .env.example).`,
      );
    }
  }
  const perAgent = e as unknown as Record<string, string | undefined>;
  const voices: Record<AgentName, string> = Object.fromEntries([
    ['reception', perAgent[voiceSetting('reception')] ?? flow.reception.voice],
    ...flow.departments.map((d) => [d.name, perAgent[voiceSetting(d.name)] ?? d.voice]),
  ]);
  return {
    flow,
    livekit: { url: e.LIVEKIT_URL, apiKey: e.LIVEKIT_API_KEY, apiSecret: e.LIVEKIT_API_SECRET },
    openai: { apiKey: e.OPENAI_API_KEY, baseURL: e.OPENAI_BASE_URL },
    agentName: e.AGENT_NAME ?? 'vobiz-call-agent',
    companyName: e.COMPANY_NAME ?? 'Acme',
    maxHandoffs: e.MAX_HANDOFFS ?? DEFAULT_MAX_HANDOFFS,
    models: {
      mode: e.MODEL_MODE ?? 'pipeline',
      llm: e.OPENAI_LLM_MODEL ?? 'gpt-4.1-mini',
      stt: e.OPENAI_STT_MODEL ?? 'gpt-4o-transcribe',
      tts: e.OPENAI_TTS_MODEL ?? 'gpt-4o-mini-tts',
      realtime: e.OPENAI_REALTIME_MODEL ?? 'gpt-realtime',
      voices,
      fallback: e.OPENAI_FALLBACK_MODEL
        ? { llm: e.OPENAI_FALLBACK_MODEL, baseURL: e.OPENAI_FALLBACK_BASE_URL }
        : undefined,
    },
    reply: {
      deadlines: {
        firstTokenMs: e.FIRST_TOKEN_TIMEOUT_MS ?? DEFAULT_REPLY_DEADLINES.firstTokenMs,
        chunkGapMs: e.CHUNK_GAP_TIMEOUT_MS ?? DEFAULT_REPLY_DEADLINES.chunkGapMs,
        holdLineMs: e.HOLD_LINE_MS ?? DEFAULT_REPLY_DEADLINES.holdLineMs,
        deadAirMs: e.DEAD_AIR_MS ?? DEFAULT_REPLY_DEADLINES.deadAirMs,
      },
      policy: {
        ...DEFAULT_REPLY_POLICY,
        maxRetries: e.MODEL_RETRIES ?? DEFAULT_REPLY_POLICY.maxRetries,
        maxFailedTurns: e.MAX_FAILED_TURNS ?? DEFAULT_REPLY_POLICY.maxFailedTurns,
        retryAfterCapMs: e.RETRY_AFTER_CAP_MS ?? DEFAULT_REPLY_POLICY.retryAfterCapMs,
      },
    },
    speech: {
      sttFallback: e.OPENAI_STT_FALLBACK_MODEL
        ? { model: e.OPENAI_STT_FALLBACK_MODEL, baseURL: e.OPENAI_STT_FALLBACK_BASE_URL }
        : undefined,
      ttsFallback: {
        voice: e.OPENAI_TTS_FALLBACK_VOICE,
        model: e.OPENAI_TTS_FALLBACK_MODEL,
        baseURL: e.OPENAI_TTS_FALLBACK_BASE_URL,
      },
      timeoutMs: e.SPEECH_TIMEOUT_MS ?? DEFAULT_SPEECH_TIMEOUT_MS,
      gapTimeoutMs: e.SPEECH_GAP_TIMEOUT_MS ?? DEFAULT_SPEECH_GAP_TIMEOUT_MS,
      outageMs: e.SPEECH_OUTAGE_MS ?? DEFAULT_SPEECH_OUTAGE_MS,
    },
    logLevel: e.LOG_LEVEL,
    logPii: e.LOG_PII,
    inspect: {
      mode: e.INSPECT ?? (e.npm_lifecycle_event === 'dev' ? 'local' : 'off'),
      port: e.INSPECT_PORT ?? 4747,
      host: e.INSPECT_HOST ?? '127.0.0.1',
      pii: e.INSPECT_PII,
    },
    telephony: telephonyConfig(e, flow),
    maxConcurrentCalls: e.MAX_CONCURRENT_CALLS ?? 4,
    drainTimeoutMs: e.DRAIN_TIMEOUT_MS ?? 30 * 60_000,
    healthPort: e.HEALTH_PORT,
    snapshotSecret: e.SNAPSHOT_KEY,
    handoff: {
      mode: e.HANDOFF_MODE ?? 'in-process',
      joinTimeoutMs: e.HANDOFF_JOIN_TIMEOUT_MS ?? 10_000,
      bridgeLine: e.HANDOFF_BRIDGE_LINE !== 'off',
      opening: e.HANDOFF_OPENING ?? 'model',
    },
  };
}

function telephonyConfig(e: z.infer<typeof EnvSchema>, flow: Flow): TelephonyConfig {
  let keypad: KeypadMap = keypadFor(flow);
  if (e.KEYPAD_MAP !== undefined) {
    try {
      keypad = parseKeypadMap(e.KEYPAD_MAP, flow);
    } catch (error) {
      throw new ConfigError(`Invalid KEYPAD_MAP: ${(error as Error).message}. Fix it in .env.`);
    }
  }
  const fallback = e.DEFAULT_TRANSFER_NUMBER;
  const humanNumbers: Partial<Record<AgentName, string>> = {};
  const numbers = e as unknown as Record<string, string | undefined>;
  const perAgent: [AgentName, string | undefined][] = [
    ['reception', fallback],
    ...flow.departments.map((d): [AgentName, string | undefined] => [
      d.name,
      numbers[transferSetting(d.name)] ?? fallback,
    ]),
  ];
  for (const [agent, number] of perAgent) if (number) humanNumbers[agent] = number;
  const inbound = list(e.VOBIZ_INBOUND_NUMBERS);
  return {
    sipDomain: e.VOBIZ_SIP_DOMAIN,
    username: e.VOBIZ_USERNAME,
    password: e.VOBIZ_PASSWORD,
    outboundNumber: e.VOBIZ_OUTBOUND_NUMBER,
    inboundNumbers:
      inbound.length > 0 ? inbound : e.VOBIZ_OUTBOUND_NUMBER ? [e.VOBIZ_OUTBOUND_NUMBER] : [],
    allowedAddresses: list(e.VOBIZ_ALLOWED_ADDRESSES ?? VOBIZ_GATEWAY_ADDRESS),
    outboundTrunkId: e.OUTBOUND_TRUNK_ID,
    ringingTimeoutInS: e.RINGING_TIMEOUT_IN_S ?? 30,
    humanNumbers,
    keypad,
  };
}

/** Name every variable in `names` that is unset, in one line, or do nothing. */
export function requireVariables(
  names: [name: string, value: string | undefined][],
  hint: string,
): void {
  const missing = names.filter(([, value]) => value === undefined).map(([name]) => name);
  if (missing.length > 0) throw new ConfigError(`Missing ${missing.join(', ')}: ${hint}`);
}

/** True when the OpenAI plugin can be used (a key, or a compatible server that may not need one). */
export function hasOpenAI(config: Config): boolean {
  return config.openai.apiKey !== undefined || config.openai.baseURL !== undefined;
}

/** The live worker needs LiveKit credentials and an OpenAI endpoint; name every missing one. */
export function requireWorkerCredentials(config: Config): void {
  const missing = [
    config.livekit.url === undefined && 'LIVEKIT_URL',
    config.livekit.apiKey === undefined && 'LIVEKIT_API_KEY',
    config.livekit.apiSecret === undefined && 'LIVEKIT_API_SECRET',
    !hasOpenAI(config) && 'OPENAI_API_KEY',
  ].filter((name): name is string => typeof name === 'string');
  if (missing.length > 0) {
    throw new ConfigError(
      `Missing ${missing.join(', ')}: set ${missing.length > 1 ? 'them' : 'it'} in .env ` +
        `(see .env.example), or run "npm run console" for an offline call.`,
    );
  }
}

/** `npm run stack` and the live tests: a local LiveKit server and Redis on this host. */
export interface StackConfig {
  /** The livekit-server binary. Default: `server` in `go env GOPATH`/bin, else on PATH. */
  serverBin: string | undefined;
  /** The address the server advertises to WebRTC clients. Default: first non-loopback IPv4. */
  nodeIp: string | undefined;
  /** The server's HTTP/WebSocket port (clients use ws://127.0.0.1:PORT). */
  livekitPort: number;
  redisPort: number;
}

const StackEnvSchema = z.object({
  LIVEKIT_SERVER_BIN: optionalString,
  LIVEKIT_NODE_IP: optionalString.pipe(z.string().ip({ version: 'v4' }).optional()),
  LIVEKIT_PORT: optionalString.pipe(z.coerce.number().int().min(1).max(65535).optional()),
  REDIS_PORT: optionalString.pipe(z.coerce.number().int().min(1).max(65535).optional()),
});

/** Read the local stack's settings (see {@link StackConfig}); `.env` is loaded as for loadConfig. */
export function loadStackConfig(env?: NodeJS.ProcessEnv): StackConfig {
  if (env === undefined) {
    loadDotenv({ quiet: true });
    env = process.env;
  }
  const parsed = StackEnvSchema.safeParse(env);
  if (!parsed.success) throw invalidSetting(parsed.error.issues[0]!, env);
  const e = parsed.data;
  return {
    serverBin: e.LIVEKIT_SERVER_BIN,
    nodeIp: e.LIVEKIT_NODE_IP,
    livekitPort: e.LIVEKIT_PORT ?? 7880,
    redisPort: e.REDIS_PORT ?? 6379,
  };
}
