/** Structured JSON logs. Secrets never reach a log line: config values are redacted before logging. */
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(options: { level?: string } = {}): Logger {
  return pino({
    level: options.level ?? process.env.HUB_LOG_LEVEL ?? 'info',
    redact: { paths: ['*.password', '*.token', '*.apiKey', '*.secret', 'config', 'headers.authorization', 'headers.cookie', 'headers["x-csrf-token"]', '*.password_hash'], censor: '[redacted]' },
  });
}

/** A logger that writes nothing, for tests and one-shot CLI commands. */
export const silentLogger: Logger = pino({ level: 'silent' });
