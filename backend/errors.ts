/**
 * The error shape of CONTRACT §4 everywhere: `{ error: { code, message } }`.
 * 4xx messages pass through; 5xx details are logged and hidden.
 */
import type { FastifyError, FastifyInstance } from 'fastify'
import { describeValidation } from './validation-messages.ts'

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'HttpError'
  }
}

export const httpError = (status: number, code: string, message: string, headers?: Record<string, string>) =>
  new HttpError(status, code, message, headers)

/** fastify's own error codes mapped to stable API codes */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'bad_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'bad_json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_VALIDATION: 'validation_failed',
  FST_JWT_NO_AUTHORIZATION_IN_HEADER: 'unauthorized',
  FST_JWT_AUTHORIZATION_TOKEN_EXPIRED: 'token_expired',
  FST_JWT_AUTHORIZATION_TOKEN_INVALID: 'invalid_token',
  FST_JWT_BAD_REQUEST: 'invalid_token',
}

export function errorBody(code: string, message: string) {
  return { error: { code, message } }
}

const DB_UNREACHABLE_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024'])
const DB_UNREACHABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections'])
/** PostgreSQL SQLSTATEs of a server going away or not accepting connections (class 08, 57P01–57P03) */
const PG_UNAVAILABLE_STATE = /^(08...|57P0[123])$/

/**
 * Is this error the database not answering (stopped, restarting, unreachable), rather than a bug? Prisma wraps the
 * driver adapter's error: `code` P1001/P1017…, or `meta.driverAdapterError.cause` with a `kind` (and a SQLSTATE).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as
    { code?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: unknown; code?: unknown } } }; cause?: unknown } | null | undefined
  if (typeof e?.code === 'string' && DB_UNREACHABLE_CODES.has(e.code)) return true
  const cause = e?.meta?.driverAdapterError?.cause
  if (cause && typeof cause.kind === 'string' && DB_UNREACHABLE_KINDS.has(cause.kind)) return true
  if (cause && typeof cause.code === 'string' && PG_UNAVAILABLE_STATE.test(cause.code)) return true
  if (typeof e?.code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE)$/.test(e.code)) return true
  return false
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | HttpError, request, reply) => {
    const raw = (err as { statusCode?: unknown }).statusCode
    // an error carrying no status, or one that is not an error status (2xx/3xx, junk), is a server error
    const status = typeof raw === 'number' && Number.isInteger(raw) && raw >= 400 && raw <= 599 ? raw : 500
    // deliberate errors carry a message written for the client, whatever their status
    if (err instanceof HttpError) {
      for (const [k, v] of Object.entries(err.headers)) reply.header(k, v)
      return reply.status(status).send(errorBody(err.code, err.message))
    }
    if (status >= 500 && isDatabaseUnavailable(err)) {
      // an outage, not a bug: say so, and when to come back (streaming goes on from the cache meanwhile)
      request.log.warn({ code: (err as { code?: unknown }).code }, 'database unavailable')
      reply.header('retry-after', '5')
      return reply.status(503).send(errorBody('database_unavailable', 'The database is not answering; try again in a few seconds'))
    }
    if (status >= 500) {
      request.log.error({ err }, 'request failed')
      return reply
        .status(status === 503 ? 503 : 500)
        .send(
          errorBody(
            status === 503 ? 'unavailable' : 'internal',
            status === 503 ? 'Service temporarily unavailable' : 'Internal Server Error',
          ),
        )
    }
    const fe = err
    if (fe.validation) {
      // the field named in words, never the validator's own text (CONTRACT §4 shape unchanged)
      return reply.status(400).send(errorBody('validation_failed', describeValidation(fe.validation, fe.validationContext)))
    }
    const code =
      (fe.code && FASTIFY_CODES[fe.code]) ??
      (status === 429 ? 'rate_limited' : status === 401 ? 'unauthorized' : status === 404 ? 'not_found' : 'bad_request')
    // a JSON parse error message can echo request bytes: keep it generic
    const message = code === 'bad_json' ? 'Body is not valid JSON' : fe.message
    return reply.status(status).send(errorBody(code, message))
  })
}
