/**
 * One signed HTTP attempt against the exchange on an undici Pool: builds the URL, signs the exact bytes sent
 * (timestamp = Date.now() + the learned server offset), runs the headers / body phase timers and the call's
 * deadline, reads and validates the body, and maps every outcome to a typed `LnmError` with `retryable` /
 * `upstreamFailure` flags for the call policy. Retries, throttling and the breaker live in `call-policy.ts`.
 */
import { Pool, type Dispatcher } from 'undici'
import type { Metrics } from '../metrics.ts'
import { authHeaders, type Credentials } from './signing.ts'
import { LnmError, redact, type LnmErrorKind } from './errors.ts'
import { parseRetryAfter } from './resilience.ts'
import { V, type Validator } from './schemas.ts'
import type { ServerClock } from './clock.ts'

export type QueryValue = string | number | boolean | Date | undefined | null
export interface RequestSpec<T> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  /** path relative to baseUrl, e.g. '/futures/isolated/trades/running' */
  path: string
  /** metrics label: the route template (defaults to `path`); never put ids or keys here */
  endpoint?: string
  query?: Record<string, QueryValue>
  body?: unknown
  creds?: Credentials
  validator: Validator<T>
  /** filled by the last attempt: when it was sent and when the response headers arrived (ms) */
  timing?: { sentAt: number; receivedAt: number }
}

const RETRY_STATUS = new Set([429, 502, 503, 504])
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
])
const TIMESTAMP_ERROR = /timestamp|too far in the future|too old|expired/i

export interface AttemptFailure {
  error: LnmError
  retryable: boolean
  /** counts as an upstream failure for the breaker */
  upstreamFailure: boolean
  timestampRejected?: boolean
}

export interface HttpAttemptOptions {
  baseUrl: URL
  metrics?: Metrics
  timeouts: { connectMs: number; headersMs: number; bodyMs: number }
  userAgent: string
  connections: number
  maxResponseBytes: number
  clock: ServerClock
  /** aborted by the client's close() */
  closing: AbortSignal
}

export class HttpAttempt {
  readonly origin: string
  readonly pool: Pool
  /** the pool behind an interceptor that tells each attempt when undici really writes it on a socket */
  private readonly dispatcher: Dispatcher
  /** per attempt, keyed by its (unique) abort signal: called when its request is written */
  private readonly onWire = new WeakMap<object, () => void>()
  private readonly basePath: string
  private readonly metrics: Metrics | undefined
  private readonly t: { connectMs: number; headersMs: number; bodyMs: number }
  private readonly userAgent: string
  private readonly clock: ServerClock
  private readonly closing: AbortSignal

  constructor(opts: HttpAttemptOptions) {
    this.origin = opts.baseUrl.origin
    this.basePath = opts.baseUrl.pathname.replace(/\/+$/, '')
    this.metrics = opts.metrics
    this.t = opts.timeouts
    this.userAgent = opts.userAgent
    this.clock = opts.clock
    this.closing = opts.closing
    this.pool = new Pool(this.origin, {
      connections: opts.connections,
      pipelining: 1,
      connect: { timeout: this.t.connectMs },
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 30_000,
      maxResponseSize: opts.maxResponseBytes,
    })
    // a request can wait in the pool for a free connection (all held by slow answers) long after its throttle
    // slot: the throttle spaces the moments requests are written, reported from here
    this.dispatcher = this.pool.compose((dispatch) => (o, handler) => {
      // request() hands its options, signal included, to dispatch (DispatchOptions does not declare it)
      const sig = (o as { signal?: unknown }).signal
      const hook = typeof sig === 'object' && sig !== null ? this.onWire.get(sig) : undefined
      return dispatch(o, hook ? onRequestStart(handler, hook) : handler)
    })
  }

  /** One attempt: sign (fresh timestamp) → send → read → validate; never throws, the outcome says what happened. */
  async attempt<T>(
    spec: RequestSpec<T>,
    url: URL,
    body: string | undefined,
    endpoint: string,
    callSecrets: string[],
    deadline: number | undefined,
    callSignal: AbortSignal,
    userSignal: AbortSignal | undefined,
    onSent: (sentAt: number) => void,
  ): Promise<{ ok: true; value: T } | { ok: false; failure: AttemptFailure }> {
    let secrets = callSecrets
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.userAgent }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (spec.creds) {
      const auth = authHeaders(spec.creds, Date.now() + this.clock.offsetMs, spec.method, url, body)
      Object.assign(headers, auth)
      secrets = [...secrets, auth['lnm-access-signature']]
    }

    // the attempt ends with the call (close() or the caller), at the call's deadline, or at a phase timeout
    const deadlineSignal = deadline !== undefined ? AbortSignal.timeout(Math.max(0, deadline - Date.now())) : undefined
    const phaseAbort = new AbortController()
    const signal = AbortSignal.any(deadlineSignal ? [callSignal, deadlineSignal, phaseAbort.signal] : [callSignal, phaseAbort.signal])

    const started = performance.now()
    let status = 0
    let phase: 'connect' | 'headers' | 'body' = 'connect'
    // own phase timers: undici's headers/body timeouts run on ~1 s "fast timers" (too coarse for budgets);
    // they stay armed 1 s later as a backstop
    let phaseTimedOut: 'headers' | 'body' | null = null
    const armPhase = (which: 'headers' | 'body', ms: number) =>
      setTimeout(() => {
        phaseTimedOut = which
        phaseAbort.abort(new Error(`${which} timeout`))
      }, ms)
    // armed when the request is written: time spent waiting for a pooled connection is not the exchange's
    // (the call's deadline bounds that wait)
    let phaseTimer: NodeJS.Timeout | undefined
    let written = false
    let ended = false
    // called by undici right before it writes the request on a socket, at most once (no pipelining)
    this.onWire.set(signal, () => {
      if (written || ended) return
      written = true
      const sentAt = Date.now()
      if (spec.timing) spec.timing.sentAt = sentAt
      phaseTimer = armPhase('headers', this.t.headersMs)
      onSent(sentAt)
    })
    if (spec.timing) spec.timing.sentAt = Date.now()
    try {
      // raced with the attempt's own signal: whatever state the pool is in, the call ends when its signal does
      const res = await abortable(
        this.dispatcher.request({
          path: url.pathname + url.search,
          method: spec.method,
          headers,
          ...(body !== undefined && { body }),
          headersTimeout: this.t.headersMs + 1_000,
          bodyTimeout: this.t.bodyMs + 1_000,
          signal,
        }),
        signal,
      )
      status = res.statusCode
      if (spec.timing) spec.timing.receivedAt = Date.now()
      phase = 'body'
      clearTimeout(phaseTimer)
      phaseTimer = armPhase('body', this.t.bodyMs)
      const text = await res.body.text()
      return this.interpret(spec, endpoint, status, res.headers, text, secrets)
    } catch (err) {
      const failure = this.classifyError(
        err,
        endpoint,
        phase,
        spec.method,
        deadlineSignal?.aborted === true,
        userSignal?.aborted === true,
        phaseTimedOut,
      )
      status = -1
      this.metrics?.upstreamRequests.inc({
        endpoint,
        status: failure.error.code === 'DEADLINE' || failure.error.code === 'ABORTED' ? 'aborted' : failure.error.kind,
      })
      return { ok: false, failure }
    } finally {
      ended = true
      this.onWire.delete(signal)
      clearTimeout(phaseTimer)
      this.metrics?.upstreamDuration.observe({ endpoint }, (performance.now() - started) / 1000)
      if (status > 0) this.metrics?.upstreamRequests.inc({ endpoint, status: String(status) })
    }
  }

  private interpret<T>(
    spec: RequestSpec<T>,
    endpoint: string,
    status: number,
    headers: Record<string, string | string[] | undefined>,
    text: string,
    secrets: string[],
  ): { ok: true; value: T } | { ok: false; failure: AttemptFailure } {
    if (status >= 200 && status < 300) {
      let parsed: unknown
      try {
        parsed = text === '' ? undefined : JSON.parse(text)
      } catch {
        if (spec.validator === (V.ping as unknown) && text.trim() === 'pong') return { ok: true, value: 'pong' as T }
        return fail(
          'bad_response',
          `lnm ${endpoint}: response is not valid JSON (${text.length} bytes)`,
          { status, code: 'INVALID_JSON' },
          true,
        )
      }
      if (!spec.validator.check(parsed)) {
        return fail(
          'bad_response',
          `lnm ${endpoint}: response does not match ${spec.validator.name}: ${redact(spec.validator.firstError(parsed), secrets, 120)}`,
          { status, code: 'SCHEMA' },
          true,
        )
      }
      return { ok: true, value: parsed }
    }

    let code: string | undefined
    let serverMessage = ''
    try {
      const b: unknown = JSON.parse(text)
      if (V.errorBody.check(b)) {
        code = b.code
        serverMessage = b.message ?? ''
      }
    } catch {
      /* non-JSON error body */
    }
    const detail = redact([code, serverMessage].filter(Boolean).join(': '), secrets, 160)
    const msg = `lnm ${endpoint}: HTTP ${status}${detail ? ` (${detail})` : ''}`
    const safeCode = code && /^[A-Za-z0-9_.-]{1,64}$/.test(code) && redact(code, secrets) === code ? code : undefined
    if (status === 401 || status === 403) {
      const timestampRejected = status === 401 && TIMESTAMP_ERROR.test(`${code ?? ''} ${serverMessage}`)
      return {
        ok: false,
        failure: {
          error: new LnmError('credentials_rejected', endpoint, msg, { status, code: safeCode }),
          retryable: false,
          upstreamFailure: false,
          timestampRejected,
        },
      }
    }
    if (status === 429) {
      return {
        ok: false,
        failure: {
          error: new LnmError('rate_limited', endpoint, msg, {
            status,
            code: safeCode,
            retryAfterMs: parseRetryAfter(headers['retry-after']),
          }),
          retryable: true,
          upstreamFailure: false,
        },
      }
    }
    if (status >= 500) return fail('unavailable', msg, { status, code: safeCode }, true, RETRY_STATUS.has(status))
    return fail('client_error', msg, { status, code: safeCode }, false)

    function fail(
      kind: LnmErrorKind,
      message: string,
      init: { status: number; code?: string | undefined },
      upstreamFailure: boolean,
      retryable = false,
    ) {
      return { ok: false as const, failure: { error: new LnmError(kind, endpoint, message, init), retryable, upstreamFailure } }
    }
  }

  private classifyError(
    err: unknown,
    endpoint: string,
    phase: 'connect' | 'headers' | 'body',
    method: string,
    deadlineHit: boolean,
    userAborted: boolean,
    phaseTimedOut: 'headers' | 'body' | null,
  ): AttemptFailure {
    const e = err as { code?: unknown; name?: string } | null | undefined
    let code = typeof e?.code === 'string' ? e.code : undefined
    const name = e?.name
    if (deadlineHit)
      return {
        error: new LnmError('timeout', endpoint, `lnm ${endpoint}: call deadline exceeded`, { code: 'DEADLINE' }),
        retryable: false,
        upstreamFailure: false,
      }
    if (phaseTimedOut === 'headers' || code === 'UND_ERR_HEADERS_TIMEOUT') code = 'HEADERS_TIMEOUT'
    else if (phaseTimedOut === 'body' || code === 'UND_ERR_BODY_TIMEOUT') code = 'BODY_TIMEOUT'
    if (this.closing.aborted)
      return {
        error: new LnmError('unavailable', endpoint, `lnm ${endpoint}: client closed`, { code: 'CLIENT_CLOSED' }),
        retryable: false,
        upstreamFailure: false,
      }
    if (code === 'HEADERS_TIMEOUT' || code === 'BODY_TIMEOUT') {
      // read timeout (headers timer counts from the write): the request may have been processed; never retried (in particular not a POST)
      const ms = code === 'HEADERS_TIMEOUT' ? this.t.headersMs : this.t.bodyMs
      return {
        error: new LnmError(
          'timeout',
          endpoint,
          `lnm ${endpoint}: no response ${code === 'HEADERS_TIMEOUT' ? 'headers' : 'body'} within ${ms} ms (${method})`,
          { code },
        ),
        retryable: false,
        upstreamFailure: true,
      }
    }
    if (userAborted || code === 'UND_ERR_ABORTED' || name === 'AbortError') {
      return {
        error: new LnmError('timeout', endpoint, `lnm ${endpoint}: aborted by caller`, { code: 'ABORTED' }),
        retryable: false,
        upstreamFailure: false,
      }
    }
    if (code === 'UND_ERR_INVALID_ARG') {
      // undici refused the request before sending it: a local fault of this call, not the exchange's
      return {
        error: new LnmError('client_error', endpoint, `lnm ${endpoint}: request refused locally (${code})`, { code }),
        retryable: false,
        upstreamFailure: false,
      }
    }
    if (code === 'UND_ERR_CONNECT_TIMEOUT') {
      return {
        error: new LnmError('timeout', endpoint, `lnm ${endpoint}: connect timeout`, { code }),
        retryable: true,
        upstreamFailure: true,
      }
    }
    if (code && CONNECT_CODES.has(code)) {
      return {
        error: new LnmError('unavailable', endpoint, `lnm ${endpoint}: cannot connect (${code})`, { code }),
        retryable: true,
        upstreamFailure: true,
      }
    }
    if (
      phase === 'body' ||
      code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' ||
      code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE' ||
      (code && code.startsWith('HPE_')) ||
      name === 'HTTPParserError'
    ) {
      return {
        error: new LnmError('bad_response', endpoint, `lnm ${endpoint}: truncated or unreadable response (${code ?? name ?? 'error'})`, {
          code: code ?? 'TRUNCATED',
        }),
        retryable: false,
        upstreamFailure: true,
      }
    }
    // socket closed / reset after the request was written: not a connect-phase error, not retried
    return {
      error: new LnmError('unavailable', endpoint, `lnm ${endpoint}: connection failed (${code ?? name ?? 'error'})`, {
        code: code ?? 'NETWORK',
      }),
      retryable: false,
      upstreamFailure: true,
    }
  }

  buildUrl(path: string, query?: Record<string, QueryValue>): URL {
    const url = new URL(this.origin + this.basePath + path)
    if (query) {
      for (const [k, v] of Object.entries(query)) {
        if (v === undefined || v === null) continue
        url.searchParams.set(k, v instanceof Date ? v.toISOString() : String(v))
      }
    }
    return url
  }
}

/** `handler` with `hook` called first when the request starts on a socket (undici calls this right before writing it) */
function onRequestStart(handler: Dispatcher.DispatchHandler, hook: () => void): Dispatcher.DispatchHandler {
  return {
    onRequestStart: (controller, context: unknown) => {
      hook()
      handler.onRequestStart?.(controller, context)
    },
    onRequestUpgrade: (controller, statusCode, headers, socket) => handler.onRequestUpgrade?.(controller, statusCode, headers, socket),
    onResponseStart: (controller, statusCode, headers, statusMessage) =>
      handler.onResponseStart?.(controller, statusCode, headers, statusMessage),
    onResponseData: (controller, chunk) => handler.onResponseData?.(controller, chunk),
    onResponseEnd: (controller, trailers) => handler.onResponseEnd?.(controller, trailers),
    onResponseError: (controller, error) => handler.onResponseError?.(controller, error),
  }
}

/**
 * Settles with `p`, or rejects (AbortError) as soon as `signal` aborts, even when `p` never settles (a pool that lost
 * its connections must not hold a caller past its own deadline). A response that arrives after the abort is dumped.
 */
function abortable<R extends { body: { dump(): Promise<void> } }>(p: Promise<R>, signal: AbortSignal): Promise<R> {
  if (signal.aborted) {
    p.then(
      (r) => r.body.dump().catch(() => {}),
      () => {},
    )
    return Promise.reject(abortErrorOf(signal))
  }
  return new Promise<R>((resolve, reject) => {
    const onAbort = () => {
      reject(abortErrorOf(signal))
      p.then(
        (r) => r.body.dump().catch(() => {}),
        () => {},
      )
    }
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(
      (r) => {
        signal.removeEventListener('abort', onAbort)
        if (signal.aborted) {
          r.body.dump().catch(() => {})
          return
        }
        resolve(r)
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}

function abortErrorOf(signal: AbortSignal): Error {
  const e = new Error(`aborted: ${String((signal.reason as Error | undefined)?.message ?? signal.reason)}`)
  e.name = 'AbortError'
  return e
}
