/**
 * One pino configuration for the gateway: secrets are redacted wherever they could appear.
 */
import type { LoggerOptions } from 'pino'

/** paths that may carry a secret in a logged object; censored, not removed, so a leak shows up as [redacted] */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["lnm-access-key"]',
  'req.headers["lnm-access-passphrase"]',
  'req.headers["lnm-access-signature"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.apiKey',
  '*.apiSecret',
  '*.secret',
  '*.passphrase',
  '*.key',
  'password',
  'token',
  'secret',
  'passphrase',
  'apiSecret',
]

export function loggerOptions(level: string, stream?: NodeJS.WritableStream): LoggerOptions & { stream?: NodeJS.WritableStream } {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(stream ? { stream } : {}),
  }
}
