/**
 * Logging. Messages are static strings; phone numbers and transcripts go under keys that are
 * redacted unless LOG_PII is set.
 */
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
  return pino(
    { level: options.level, ...(redact ? { redact } : {}) },
    typeof options.destination === 'string'
      ? pino.destination({ fd: options.destination === 'stdout' ? 1 : 2, sync: true })
      : options.destination,
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
