// One pino logger for the process: JSON lines on stdout. Secrets are redacted by
// path, so a header value or a proxy password can never reach a log line.
import { pino, type Logger, type Level } from 'pino';

export type { Logger };

export const REDACT_PATHS = ['headers.authorization', 'headers["proxy-authorization"]', 'headers.cookie', 'upstream.password', 'secret', '*.secret', '*.password'];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function createLogger(level: Level | 'silent' = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
