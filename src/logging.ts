/**
 * Logging. Messages are static strings; phone numbers and transcripts go under keys that are
 * redacted unless LOG_PII is set.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/** Keys whose values are personal data. */
const PII_KEYS = ['number', 'callerNumber', 'name', 'text', 'transcript', 'summary'];

/** Keep the country code and the last two digits: "+91********10". */
export function maskPhoneNumber(value: string): string {
  const digits = value.replace(/[^\d+]/g, '');
  if (digits.length <= 5) return '*'.repeat(digits.length);
  return digits.slice(0, 3) + '*'.repeat(digits.length - 5) + digits.slice(-2);
}

export interface LoggingOptions {
  level: string;
  pii: boolean;
  /** The console writes JSON events to stdout, so its logs go to stderr. */
  destination: 'stdout' | 'stderr' | NodeJS.WritableStream;
  /** One readable line per record instead of JSON (the console's stderr). */
  readable?: boolean;
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/**
 * `warn  model request failed  agent=reception kind=http status=503 …`: pino's JSON records as
 * one line each, for a person reading a terminal. Objects are shown as JSON, errors by message.
 */
export function readableLines(out: NodeJS.WritableStream): NodeJS.WritableStream {
  const skip = new Set(['level', 'time', 'pid', 'hostname', 'msg']);
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        let record: Record<string, unknown>;
        try {
          record = JSON.parse(line) as Record<string, unknown>;
        } catch {
          out.write(`${line}\n`);
          continue;
        }
        const fields = Object.entries(record)
          .filter(([key, value]) => !skip.has(key) && value !== undefined)
          .map(([key, value]) => `${key}=${show(value)}`);
        const level = LEVEL_NAMES[record.level as number] ?? String(record.level);
        out.write(
          `${level.padEnd(5)} ${String(record.msg ?? '')}  ${fields.join(' ')}`.trimEnd() + '\n',
        );
      }
      done();
    },
  });
}

function show(value: unknown): string {
  if (typeof value === 'string') return /\s/.test(value) ? JSON.stringify(value) : value;
  if (value && typeof value === 'object' && 'message' in value) {
    return JSON.stringify((value as { message: unknown }).message);
  }
  return JSON.stringify(value);
}

export function createLogger(options: LoggingOptions): Logger {
  const redact = options.pii
    ? undefined
    : {
        paths: PII_KEYS.flatMap((key) => [key, `*.${key}`]),
        censor: (value: unknown) =>
          typeof value === 'string' && /^\+?\d[\d\s-]{5,}$/.test(value)
            ? maskPhoneNumber(value)
            : '[redacted]',
      };
  const destination =
    typeof options.destination === 'string'
      ? pino.destination({ fd: options.destination === 'stdout' ? 1 : 2, sync: true })
      : options.destination;
  return pino(
    { level: options.level, ...(redact ? { redact } : {}) },
    options.readable ? readableLines(destination as NodeJS.WritableStream) : destination,
  );
}

const AGENTS_LOGGER_KEY = Symbol.for('@livekit/agents:logger');
const AGENTS_LOGGER_OPTIONS_KEY = Symbol.for('@livekit/agents:loggerOptions');

/**
 * Give @livekit/agents a logger outside its CLI. Its own `initializeLogger` always writes to
 * stdout, which would corrupt the console's JSON Lines, so the console installs one on stderr
 * through the process-wide slot the SDK reads (`log_core.ts`).
 */
export function installAgentsLogger(logger: Logger): void {
  const slots = globalThis as Record<symbol, unknown>;
  slots[AGENTS_LOGGER_KEY] = logger;
  slots[AGENTS_LOGGER_OPTIONS_KEY] = { pretty: false, level: logger.level };
}
