/**
 * One pino configuration for the gateway: secrets are redacted wherever they could appear.
 */
import { createRequire } from 'node:module'
import type { LoggerOptions } from 'pino'

/** pino-pretty is for development only: loaded when pretty logs are asked for, never in production */
const load = createRequire(import.meta.url)
const pinoPretty = (): typeof import('pino-pretty') => load('pino-pretty') as typeof import('pino-pretty')

type LogFn = (obj: object, msg?: string) => void
/**
 * The one logger type of the gateway: the slice of pino its modules log through (object first, then message).
 * A pino logger, Fastify's `app.log` and their children fit as they are; tests pass a collecting one.
 */
export interface Log {
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
}
const noop: LogFn = () => {}
export const silentLog: Log = { debug: noop, info: noop, warn: noop, error: noop }

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
  'headers["set-cookie"]',
  'headers["lnm-access-key"]',
  'headers["lnm-access-passphrase"]',
  'headers["lnm-access-signature"]',
  // headers hanging off any logged object (an error's request, an upstream response, …)
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["set-cookie"]',
  '*.headers["lnm-access-key"]',
  '*.headers["lnm-access-passphrase"]',
  '*.headers["lnm-access-signature"]',
  '*.authorization',
  '*.cookie',
  '*.cookies',
  '*.password',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.apiKey',
  '*.apiSecret',
  '*.secret',
  '*.passphrase',
  '*.key',
  '*.jwtSecret',
  '*.credentialsKey',
  '*.body.password',
  '*.body.apiSecret',
  '*.body.passphrase',
  'authorization',
  'cookie',
  'password',
  'token',
  'accessToken',
  'refreshToken',
  'secret',
  'passphrase',
  'apiSecret',
  'jwtSecret',
  'credentialsKey',
]

/** query parameters whose values are never logged (a client may put a token in a URL even though it is refused) */
const SENSITIVE_PARAM = /token|secret|pass|key|auth|session|sess|jwt|sig|code|cookie|credential/i

/** the request URL with the values of sensitive query parameters replaced by [redacted] */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  if (q === -1) return url
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      const rawName = eq === -1 ? pair : pair.slice(0, eq)
      let name = rawName
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '))
      } catch {
        /* keep the raw name */
      }
      return eq !== -1 && SENSITIVE_PARAM.test(name) ? `${rawName}=[redacted]` : pair
    })
    .join('&')
  return `${url.slice(0, q)}?${query}`
}

/** fastify's own request serializer, with the URL's secrets redacted */
function reqSerializer(req: {
  method?: string
  url?: string
  headers?: Record<string, unknown>
  host?: string
  ip?: string
  socket?: { remotePort?: number }
}) {
  return {
    method: req.method,
    url: typeof req.url === 'string' ? redactUrl(req.url) : req.url,
    version: req.headers?.['accept-version'],
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  }
}

/**
 * Human-readable logs (pino-pretty, in-process) for development: when NODE_ENV is not production and stdout is a
 * terminal, or LOG_PRETTY=true. Production always writes JSON lines, for the log pipeline.
 */
export function prettyLogs(o: { nodeEnv: string; logPretty?: boolean | undefined; isTTY: boolean }): boolean {
  if (o.nodeEnv === 'production') return false
  return o.logPretty ?? o.isTTY
}

export function loggerOptions(
  level: string,
  stream?: NodeJS.WritableStream,
  pretty = false,
): LoggerOptions & { stream?: NodeJS.WritableStream } {
  // redaction happens before the line reaches either stream
  const out =
    stream ??
    (pretty
      ? pinoPretty()({ colorize: Boolean(process.stdout.isTTY), translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
      : undefined)
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { req: reqSerializer },
    ...(out ? { stream: out } : {}),
  }
}
