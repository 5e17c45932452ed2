// Structured JSON logs (pino) with redaction of every field that could carry a credential.
import { pino, type Logger } from 'pino';

export const REDACT_PATHS = [
  'headers["x-api-key"]',
  'headers["x-agent-token"]',
  'headers.authorization',
  'headers.cookie',
  'headers["x-forwarded-client-cert"]',
  'headers["client-cert"]',
  'token',
  'secret',
  'apiKey',
  'api_key',
  'password',
  'certificate',
  'digest',
  '*.token',
  '*.secret',
  '*.password',
  '*.certificate',
  '*.digest',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const opts = {
    level,
    base: { service: 'agent-authz' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination === undefined ? pino(opts) : pino(opts, destination as never);
}

export type { Logger };
