import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Paths pino blanks before a line is written. Secrets must never reach the journal: CHAP secrets,
 * API and K3s tokens, and the Authorization header. Redaction is by key, so any object logged with
 * one of these keys at these depths is covered.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'token',
  'apiToken',
  'password',
  'secret',
  'chapSecret',
  'mutualSecret',
  'reversePassword',
  '*.token',
  '*.apiToken',
  '*.password',
  '*.secret',
  '*.chapSecret',
  '*.mutualSecret',
  '*.reversePassword',
  '*.*.chapSecret',
  '*.*.mutualSecret',
  '*.*.password',
  '*.*.token',
];

/** JSON lines on stdout (journald keeps them); one logger for the whole daemon. */
export function createLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'hiveboot' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
