import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Field paths that never reach a log line, wherever they appear one or two levels deep.
 * Logs carry one fixed message and data in fields; secrets, tokens and audio stay out.
 */
const REDACT = [
  'authorization',
  'token',
  'apiKey',
  'password',
  'secret',
  'audio',
  'payload',
  '*.authorization',
  '*.token',
  '*.apiKey',
  '*.password',
  '*.secret',
  '*.audio',
  '*.payload',
  'headers.authorization',
  'headers.cookie',
];

/** The process's JSON logger (pino): `service` names which plane wrote the line. */
export function createLogger(opts: { level: string; service: string }): Logger {
  return pino({
    level: opts.level,
    base: { service: opts.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  });
}
