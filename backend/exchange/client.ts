/**
 * LN Markets REST v3 client on undici (lnmarkets-api.md §2, §4.1, §5, §10).
 *
 * - one keep-alive undici Pool for the origin of `baseUrl`; connect / headers / body timeouts;
 * - signs the exact bytes sent, re-signs on every attempt, timestamps = Date.now() + learned server offset
 *   (GET /time lazily before the first signed call, refreshed every `clockRefreshMs`, re-learned after a
 *   timestamp-related 401, which is then retried once);
 * - retries ONLY 429/502/503/504 and connect-phase errors, full-jitter exponential backoff
 *   (base 1 s, cap 8 s, 3 retries), 429 waits max(Retry-After, backoff); read timeouts are never retried;
 * - client-side throttle: public 1/s, per credential key 5/s, shared by every caller of this instance;
 * - circuit breaker for the origin; TypeBox validation of every response; typed `LnmError`s;
 * - lru-cache for ticker/candles + in-flight coalescing of identical GETs (private ones per credentials);
 * - optional per-call budget: `{ signal, deadlineMs }`.
 */
import { createHash } from 'node:crypto'
import { Pool } from 'undici'
import { LRUCache } from 'lru-cache'
import { countBound } from '../bounded-lru.ts'
import type { Metrics } from '../metrics.ts'
import { authHeaders, unsendableCredentialField, type Credentials } from './signing.ts'
import { LnmError, redact, type LnmErrorKind } from './errors.ts'
import { AbortedError, BREAKER_GAUGE, CircuitBreaker, Throttle, fullJitterBackoff, parseRetryAfter, sleep, type ThrottlePriority, type ThrottleSlot } from './resilience.ts'
import {
  V,
  type Account,
  type Candle,
  type CrossOrder,
  type FundingFee,
  type FuturesCrossPosition,
  type FuturesTrade,
  type FuturesTradeWire,
  type OracleIndex,
  type OracleLastPrice,
  type Page,
  type Ticker,
  type Validator,
} from './schemas.ts'

export { LnmError } from './errors.ts'
export type { LnmErrorKind } from './errors.ts'
export type { Credentials } from './signing.ts'

export interface Logger {
  debug?(obj: object, msg?: string): void
  info?(obj: object, msg?: string): void
  warn?(obj: object, msg?: string): void
  error?(obj: object, msg?: string): void
}

export interface LnmClientOptions {
  /** e.g. https://api.lnmarkets.com/v3 */
  baseUrl: string
  metrics?: Metrics
  logger?: Logger
  timeouts?: { connectMs?: number; headersMs?: number; bodyMs?: number }
  retry?: { baseMs?: number; capMs?: number; retries?: number }
  /** client-side throttle; publicMode 'serial' (default) or 'spaced', see Throttle */
  limits?: { publicPerSec?: number; authPerSec?: number; publicMode?: 'serial' | 'spaced'; /** extra spacing, default 0.1 (10 %) against network jitter */ margin?: number }
  breaker?: { failureThreshold?: number; openMs?: number }
  cacheTtl?: { tickerMs?: number; candlesMs?: number }
  userAgent?: string
  /** how often the server clock offset is refreshed (default 10 min) */
  clockRefreshMs?: number
  /** keep-alive connections in the pool (default 4) */
  connections?: number
  /** biggest accepted response body (default 8 MiB) */
  maxResponseBytes?: number
}

export interface CallOptions {
  /** caller cancellation; the call rejects with LnmError kind 'timeout' code 'ABORTED' */
  signal?: AbortSignal
  /** overall budget of the call (throttle waits, attempts, backoff) */
  deadlineMs?: number
  /** throttle lane (default 'high'): 'low' for bulk reads (history) that must not delay polls */
  priority?: ThrottlePriority
}

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

export interface PageQuery {
  cursor?: string
  from?: string | Date
  to?: string | Date
  limit?: number
}
export interface CandlesQuery extends PageQuery {
  from: string | Date
  range?: string
}
export interface OracleQuery {
  from?: string | Date
  to?: string | Date
  limit?: number
}

const RETRY_STATUS = new Set([429, 502, 503, 504])
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT'])
const CLOCK_RETRY_AFTER_FAILURE_MS = 60_000
const TIMESTAMP_ERROR = /timestamp|too far in the future|too old|expired/i

interface AttemptFailure {
  error: LnmError
  retryable: boolean
  /** counts as an upstream failure for the breaker */
  upstreamFailure: boolean
  timestampRejected?: boolean
}

interface Inflight {
  promise: Promise<unknown>
  waiters: number
  controller: AbortController
}

export class LnmClient {
  readonly baseUrl: URL
  readonly origin: string
  private readonly basePath: string
  private readonly pool: Pool
  private readonly metrics?: Metrics
  private readonly logger?: Logger
  private readonly t: { connectMs: number; headersMs: number; bodyMs: number }
  private readonly r: { baseMs: number; capMs: number; retries: number }
  private readonly limits: { publicPerSec: number; authPerSec: number; margin: number }
  private readonly breaker: CircuitBreaker
  private readonly userAgent: string
  private readonly clockRefreshMs: number
  private readonly publicThrottle: Throttle
  private readonly keyThrottles = new LRUCache<string, Throttle>({ ...countBound(10_000), ttl: 10 * 60_000, updateAgeOnGet: true })
  private readonly tickerCache: LRUCache<string, Ticker>
  private readonly candlesCache: LRUCache<string, Page<Candle>>
  private readonly inflight = new Map<string, Inflight>()
  private readonly closing = new AbortController()
  private offsetMs = 0
  private clockSyncedAt = 0
  private clockSync: Promise<void> | null = null
  private closed = false

  constructor(opts: LnmClientOptions) {
    this.baseUrl = new URL(opts.baseUrl)
    this.origin = this.baseUrl.origin
    this.basePath = this.baseUrl.pathname.replace(/\/+$/, '')
    this.metrics = opts.metrics
    this.logger = opts.logger
    this.t = { connectMs: opts.timeouts?.connectMs ?? 5_000, headersMs: opts.timeouts?.headersMs ?? 10_000, bodyMs: opts.timeouts?.bodyMs ?? 10_000 }
    this.r = { baseMs: opts.retry?.baseMs ?? 1_000, capMs: opts.retry?.capMs ?? 8_000, retries: opts.retry?.retries ?? 3 }
    this.limits = { publicPerSec: opts.limits?.publicPerSec ?? 1, authPerSec: opts.limits?.authPerSec ?? 5, margin: opts.limits?.margin ?? 0.1 }
    this.userAgent = opts.userAgent ?? 'lnm-gateway/0.1'
    this.clockRefreshMs = opts.clockRefreshMs ?? 10 * 60_000
    // public: 1/s buckets tolerate no jitter → serial (next start a full interval after the previous answer)
    this.publicThrottle = new Throttle(this.limits.publicPerSec, { mode: opts.limits?.publicMode ?? 'serial', margin: this.limits.margin })
    this.pool = new Pool(this.origin, {
      connections: opts.connections ?? 4,
      pipelining: 1,
      connect: { timeout: this.t.connectMs },
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 30_000,
      maxResponseSize: opts.maxResponseBytes ?? 8 * 1024 * 1024,
    })
    const originLabel = this.origin
    this.metrics?.circuitState.set({ origin: originLabel }, 0)
    this.breaker = new CircuitBreaker(opts.breaker?.failureThreshold ?? 5, opts.breaker?.openMs ?? 30_000, (s) => {
      this.metrics?.circuitState.set({ origin: originLabel }, BREAKER_GAUGE[s])
      this.logger?.warn?.({ origin: originLabel, state: s }, 'lnm circuit breaker state changed')
    })
    this.tickerCache = new LRUCache({ max: 1, ttl: Math.max(1, opts.cacheTtl?.tickerMs ?? 1_000) })
    this.candlesCache = new LRUCache({ max: 200, ttl: Math.max(1, opts.cacheTtl?.candlesMs ?? 10_000) })
  }

  /** current learned offset: server time − local time (ms) */
  get clockOffsetMs(): number {
    return this.offsetMs
  }

  get circuitState() {
    return this.breaker.state
  }

  // ---------------------------------------------------------------- public API

  ping(opts?: CallOptions): Promise<string> {
    return this.get({ path: '/ping', validator: V.ping }, opts)
  }

  /** GET /time; also learns the clock offset. Returns the server time as ISO and the offset. */
  async time(opts?: CallOptions): Promise<{ time: string; offsetMs: number }> {
    const timing = { sentAt: 0, receivedAt: 0 }
    const res = await this.request({ method: 'GET', path: '/time', validator: V.time, timing }, opts, true)
    const t0 = timing.sentAt
    const t1 = timing.receivedAt
    const serverMs = typeof res.time === 'number' ? res.time : Date.parse(res.time)
    if (!Number.isFinite(serverMs)) throw new LnmError('bad_response', '/time', 'lnm /time: unparseable time')
    this.offsetMs = Math.round(serverMs - (t0 + t1) / 2)
    this.clockSyncedAt = t1
    return { time: new Date(serverMs).toISOString(), offsetMs: this.offsetMs }
  }

  account(creds: Credentials, opts?: CallOptions): Promise<Account> {
    return this.get({ path: '/account', creds, validator: V.account }, opts)
  }

  // trade lists accept a trade whose nullable keys are missing (as the SDKs do) and fill them in with null

  async runningTrades(creds: Credentials, opts?: CallOptions): Promise<FuturesTrade[]> {
    return (await this.get({ path: '/futures/isolated/trades/running', creds, validator: V.tradesWire }, opts)).map(normTrade)
  }

  async openTrades(creds: Credentials, opts?: CallOptions): Promise<FuturesTrade[]> {
    return (await this.get({ path: '/futures/isolated/trades/open', creds, validator: V.tradesWire }, opts)).map(normTrade)
  }

  async closedTrades(creds: Credentials, q: PageQuery = {}, opts?: CallOptions): Promise<Page<FuturesTrade>> {
    const page = await this.get({ path: '/futures/isolated/trades/closed', creds, query: pageQuery(q), validator: V.tradesWirePage }, opts)
    return { data: page.data.map(normTrade), nextCursor: page.nextCursor }
  }

  /** GET /futures/isolated/trades/canceled (newest first; listed by the docs changelog, not by the TS SDK) */
  async canceledTrades(creds: Credentials, q: PageQuery = {}, opts?: CallOptions): Promise<Page<FuturesTrade>> {
    const page = await this.get({ path: '/futures/isolated/trades/canceled', creds, query: pageQuery(q), validator: V.tradesWirePage }, opts)
    return { data: page.data.map(normTrade), nextCursor: page.nextCursor }
  }

  /** GET /futures/isolated/funding-fees; `tradeId` is normalised to null when absent */
  async isolatedFundingFees(creds: Credentials, q: PageQuery & { tradeId?: string } = {}, opts?: CallOptions): Promise<Page<FundingFee>> {
    const page = await this.get({ path: '/futures/isolated/funding-fees', creds, query: { ...pageQuery(q), tradeId: q.tradeId }, validator: V.fundingFees }, opts)
    return { data: page.data.map(normFundingFee), nextCursor: page.nextCursor }
  }

  /**
   * GET /futures/cross/position. The exchange answers with a position object whenever the account has a cross
   * account; flat is `quantity: 0` with `entryPrice`/`liquidation` null. Resolves `null` when there is nothing
   * to show: a 404 or a `null` body (no cross account yet), or a flat position with no margin either.
   * A flat position that still holds margin is returned (the margin is part of the trader's equity).
   */
  async crossPosition(creds: Credentials, opts?: CallOptions): Promise<FuturesCrossPosition | null> {
    let pos: Wire<FuturesCrossPosition, 'entryPrice' | 'liquidation'> | null
    try {
      pos = await this.get({ path: '/futures/cross/position', creds, validator: V.crossPosition }, opts)
    } catch (e) {
      if (e instanceof LnmError && e.kind === 'client_error' && e.status === 404) return null
      throw e
    }
    if (pos === null) return null
    if (pos.quantity === 0 && pos.margin === 0) return null
    return normCrossPosition(pos)
  }

  /** GET /futures/cross/orders/open (resting cross limit orders) */
  async crossOpenOrders(creds: Credentials, opts?: CallOptions): Promise<CrossOrder[]> {
    const list = await this.get({ path: '/futures/cross/orders/open', creds, validator: V.crossOrders }, opts)
    return list.map(normCrossOrder)
  }

  /** GET /futures/cross/orders/filled (paginated, newest first) */
  async crossFilledOrders(creds: Credentials, q: PageQuery = {}, opts?: CallOptions): Promise<Page<CrossOrder>> {
    const page = await this.get({ path: '/futures/cross/orders/filled', creds, query: pageQuery(q), validator: V.crossOrdersPage }, opts)
    return { data: page.data.map(normCrossOrder), nextCursor: page.nextCursor }
  }

  /** GET /futures/cross/funding-fees (paginated, newest first; `tradeId` is null for cross) */
  async crossFundingFees(creds: Credentials, q: PageQuery = {}, opts?: CallOptions): Promise<Page<FundingFee>> {
    const page = await this.get({ path: '/futures/cross/funding-fees', creds, query: pageQuery(q), validator: V.fundingFees }, opts)
    return { data: page.data.map(normFundingFee), nextCursor: page.nextCursor }
  }

  ticker(opts?: CallOptions): Promise<Ticker> {
    return this.cached(this.tickerCache, 'ticker', 'ticker', () => this.get({ path: '/futures/ticker', validator: V.ticker }, opts), opts)
  }

  candles(q: CandlesQuery, opts?: CallOptions): Promise<Page<Candle>> {
    const query = { ...pageQuery(q), range: q.range }
    const key = JSON.stringify(query)
    return this.cached(this.candlesCache, 'candles', key, () => this.get({ path: '/futures/candles', query, validator: V.candles }, opts), opts)
  }

  oracleIndex(q: OracleQuery = {}, opts?: CallOptions): Promise<OracleIndex> {
    return this.get({ path: '/oracle/index', query: pageQuery(q), validator: V.oracleIndex }, opts)
  }

  oracleLastPrice(q: OracleQuery = {}, opts?: CallOptions): Promise<OracleLastPrice> {
    return this.get({ path: '/oracle/last-price', query: pageQuery(q), validator: V.oracleLastPrice }, opts)
  }

  /** Aborts every pending call (they reject with kind 'unavailable' code 'CLIENT_CLOSED') and closes sockets. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.closing.abort(new Error('client closed'))
    this.tickerCache.clear()
    this.candlesCache.clear()
    await this.pool.destroy().catch(() => {})
  }

  // ---------------------------------------------------------------- GET coalescing + cache

  /** GET with in-flight coalescing: identical requests (same creds) share one upstream call. */
  get<T>(spec: Omit<RequestSpec<T>, 'method'>, opts?: CallOptions): Promise<T> {
    const full: RequestSpec<T> = { ...spec, method: 'GET' }
    const url = this.buildUrl(full.path, full.query)
    const key = `${url.pathname}${url.search}|${credId(full.creds)}`
    const existing = this.inflight.get(key)
    if (existing) {
      this.metrics?.cacheHits.inc({ cache: 'inflight' })
      return this.join<T>(existing, full.endpoint ?? full.path, opts)
    }
    this.metrics?.cacheMisses.inc({ cache: 'inflight' })
    const controller = new AbortController()
    const entry: Inflight = { controller, waiters: 0, promise: Promise.resolve() }
    // the shared call keeps the leader's deadline and priority; it is aborted only when every waiter gave up
    entry.promise = this.request(full, { signal: controller.signal, deadlineMs: opts?.deadlineMs, priority: opts?.priority }).finally(() => {
      if (this.inflight.get(key) === entry) this.inflight.delete(key)
    })
    entry.promise.catch(() => {})
    this.inflight.set(key, entry)
    return this.join<T>(entry, full.endpoint ?? full.path, opts)
  }

  private join<T>(entry: Inflight, endpoint: string, opts?: CallOptions): Promise<T> {
    entry.waiters++
    const deadline = opts?.deadlineMs !== undefined ? Date.now() + opts.deadlineMs : undefined
    if (!opts?.signal && deadline === undefined) {
      return (entry.promise as Promise<T>).finally(() => {
        entry.waiters--
      })
    }
    return new Promise<T>((resolve, reject) => {
      let done = false
      const finish = (err: LnmError | null, value?: T) => {
        if (done) return
        done = true
        if (timer) clearTimeout(timer)
        opts?.signal?.removeEventListener('abort', onAbort)
        entry.waiters--
        if (err) {
          if (entry.waiters <= 0) entry.controller.abort(err)
          reject(err)
        } else resolve(value as T)
      }
      const onAbort = () => finish(new LnmError('timeout', endpoint, `lnm ${endpoint}: aborted by caller`, { code: 'ABORTED' }))
      const timer = deadline !== undefined
        ? setTimeout(() => finish(new LnmError('timeout', endpoint, `lnm ${endpoint}: deadline of ${opts!.deadlineMs} ms exceeded`, { code: 'DEADLINE' })), Math.max(0, deadline - Date.now()))
        : undefined
      if (opts?.signal?.aborted) return onAbort()
      opts?.signal?.addEventListener('abort', onAbort, { once: true })
      ;(entry.promise as Promise<T>).then((v) => finish(null, v), (e: LnmError) => finish(e))
    })
  }

  private async cached<T extends {}>(cache: LRUCache<string, T>, name: string, key: string, load: () => Promise<T>, _opts?: CallOptions): Promise<T> {
    const hit = cache.get(key)
    if (hit !== undefined) {
      this.metrics?.cacheHits.inc({ cache: name })
      return hit
    }
    this.metrics?.cacheMisses.inc({ cache: name })
    const value = await load()
    cache.set(key, value)
    return value
  }

  // ---------------------------------------------------------------- core

  /**
   * One logical call: throttle → breaker → sign → send → validate, with retries per the official policy.
   * Exposed for write endpoints (POST/PUT/DELETE are never coalesced or cached).
   */
  async request<T>(spec: RequestSpec<T>, opts: CallOptions = {}, skipClock = false): Promise<T> {
    const endpoint = spec.endpoint ?? spec.path
    const secrets = spec.creds ? [spec.creds.secret, spec.creds.passphrase, spec.creds.key] : []
    if (this.closed) throw new LnmError('unavailable', endpoint, `lnm ${endpoint}: client closed`, { code: 'CLIENT_CLOSED' })
    // a credential that cannot travel in an HTTP header is this user's problem alone: refuse it here, before it
    // can take a throttle slot, a breaker decision or a pooled connection shared with every other account
    const unsendable = spec.creds ? unsendableCredentialField(spec.creds) : null
    if (unsendable) {
      throw new LnmError('credentials_rejected', endpoint, `lnm ${endpoint}: the API ${unsendable} has characters LN Markets cannot receive (printable ASCII only)`, {
        code: 'INVALID_CREDENTIALS',
      })
    }
    const started = Date.now()
    const deadline = opts.deadlineMs !== undefined ? started + opts.deadlineMs : undefined
    // one signal for the call: client close() or the caller's signal (listeners removed when the call ends)
    const link = linkSignals(this.closing.signal, opts.signal)
    try {
      return await this.run(spec, opts, skipClock, endpoint, secrets, deadline, link.signal)
    } finally {
      link.dispose()
    }
  }

  private async run<T>(
    spec: RequestSpec<T>,
    opts: CallOptions,
    skipClock: boolean,
    endpoint: string,
    secrets: string[],
    deadline: number | undefined,
    callSignal: AbortSignal,
  ): Promise<T> {

    const url = this.buildUrl(spec.path, spec.query)
    const body = spec.body === undefined ? undefined : JSON.stringify(spec.body)
    const throttle = spec.creds ? this.throttleFor(spec.creds.key) : this.publicThrottle

    if (spec.creds && !skipClock) await this.ensureClock(deadline, callSignal)

    // circuit breaker: one decision per logical call (a call that exhausted its retries is one failure)
    const blocked = this.breaker.blockedFor()
    if (blocked > 0) throw this.circuitOpen(endpoint, blocked)
    let admission: 'go' | 'probe' | 'reject' | null = null
    let outcomeRecorded = false
    const record = (f: AttemptFailure | null) => {
      if (outcomeRecorded || admission === null) return
      outcomeRecorded = true
      if (!f) this.breaker.success()
      else if (f.error.code === 'ABORTED' || f.error.code === 'DEADLINE' || f.error.code === 'CLIENT_CLOSED') this.breaker.release()
      else if (f.upstreamFailure) this.breaker.failure()
      else this.breaker.success()
    }

    let relearned = false
    let lastFailure: AttemptFailure | null = null
    try {
      for (let attempt = 0; ; attempt++) {
        // client-side throttle (shared by every caller of this instance), one slot per attempt
        let slot: ThrottleSlot | null
        try {
          slot = await throttle.acquire(deadline, callSignal, opts.priority)
        } catch (e) {
          if (e instanceof AbortedError) throw this.abortError(endpoint, opts.signal)
          throw e
        }
        if (slot === null) {
          if (lastFailure) throw lastFailure.error
          throw new LnmError('rate_limited', endpoint, `lnm ${endpoint}: client-side rate limit would exceed the call deadline`, {
            code: 'CLIENT_THROTTLE',
            retryAfterMs: throttle.pending(Date.now()),
          })
        }

        let outcome: { ok: true; value: T } | { ok: false; failure: AttemptFailure }
        try {
          if (admission === null) {
            admission = this.breaker.acquire()
            if (admission === 'reject') {
              admission = null
              throw this.circuitOpen(endpoint, this.breaker.blockedFor())
            }
          }
          outcome = await this.attempt(spec, url, body, endpoint, secrets, deadline, callSignal, opts.signal, (at) => slot.sent(at))
        } finally {
          slot.done(Date.now())
        }
        if (outcome.ok) {
          record(null)
          return outcome.value
        }
        const f = (lastFailure = outcome.failure)
        // Retry-After holds the whole bucket it came from (this key, or the public bucket), not just this call
        if (f.error.status === 429 && f.error.retryAfterMs !== undefined && f.error.retryAfterMs > 0) throttle.blockUntil(Date.now() + f.error.retryAfterMs)

        if (f.timestampRejected && !relearned && spec.creds) {
          relearned = true
          this.logger?.warn?.({ endpoint, status: f.error.status, code: f.error.code }, 'lnm timestamp rejected; re-learning server clock')
          this.clockSyncedAt = 0
          await this.ensureClock(deadline, callSignal)
          this.metrics?.upstreamRetries.inc({ endpoint, reason: 'timestamp' })
          continue
        }
        // the half-open probe gets a single attempt
        const maxRetries = admission === 'probe' ? 0 : this.r.retries
        if (!f.retryable || attempt >= maxRetries) {
          record(f)
          throw f.error
        }

        let delay = fullJitterBackoff(attempt, this.r.baseMs, this.r.capMs)
        if (f.error.status === 429 && f.error.retryAfterMs !== undefined) delay = Math.max(f.error.retryAfterMs, delay)
        if (deadline !== undefined && Date.now() + delay >= deadline) {
          record(f)
          throw f.error
        }
        const reason = f.error.status !== undefined ? String(f.error.status) : (f.error.code ?? 'connect')
        this.metrics?.upstreamRetries.inc({ endpoint, reason })
        this.logger?.warn?.({ endpoint, attempt: attempt + 1, delayMs: delay, status: f.error.status, code: f.error.code }, 'lnm request failed; retrying')
        await this.pause(delay, callSignal, endpoint, opts.signal)
      }
    } catch (e) {
      // aborted while waiting (throttle/backoff) or any other exit: never leave a probe slot taken
      if (!outcomeRecorded && admission !== null) {
        outcomeRecorded = true
        if (lastFailure?.upstreamFailure && !(e instanceof LnmError && (e.code === 'ABORTED' || e.code === 'CLIENT_CLOSED'))) this.breaker.failure()
        else this.breaker.release()
      }
      throw e
    }
  }

  private async attempt<T>(
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
      const auth = authHeaders(spec.creds, Date.now() + this.offsetMs, spec.method, url, body)
      Object.assign(headers, auth)
      secrets = [...secrets, auth['lnm-access-signature']]
    }

    const ac = new AbortController()
    const onAbort = () => ac.abort(callSignal.reason)
    if (callSignal.aborted) ac.abort(callSignal.reason)
    else callSignal.addEventListener('abort', onAbort, { once: true })
    let deadlineHit = false
    const timer = deadline !== undefined
      ? setTimeout(() => {
          deadlineHit = true
          ac.abort(new Error('deadline'))
        }, Math.max(0, deadline - Date.now()))
      : undefined

    const started = performance.now()
    let status = 0
    let phase: 'connect' | 'headers' | 'body' = 'connect'
    // own phase timers: undici's headers/body timeouts run on ~1 s "fast timers" (too coarse for budgets);
    // they stay armed 1 s later as a backstop
    let phaseTimedOut: 'headers' | 'body' | null = null
    const armPhase = (which: 'headers' | 'body', ms: number) =>
      setTimeout(() => {
        phaseTimedOut = which
        ac.abort(new Error(`${which} timeout`))
      }, ms)
    let phaseTimer = armPhase('headers', this.t.headersMs)

    const sentAt = Date.now()
    if (spec.timing) spec.timing.sentAt = sentAt
    onSent(sentAt)
    try {
      // raced with the attempt's own signal: whatever state the pool is in, the call ends when its signal does
      const res = await abortable(this.pool.request({
        path: url.pathname + url.search,
        method: spec.method,
        headers,
        body,
        headersTimeout: this.t.headersMs + 1_000,
        bodyTimeout: this.t.bodyMs + 1_000,
        signal: ac.signal,
      }), ac.signal)
      status = res.statusCode
      if (spec.timing) spec.timing.receivedAt = Date.now()
      phase = 'body'
      clearTimeout(phaseTimer)
      phaseTimer = armPhase('body', this.t.bodyMs)
      const text = await res.body.text()
      return this.interpret(spec, endpoint, status, res.headers, text, secrets)
    } catch (err) {
      const failure = this.classifyError(err, endpoint, phase, spec.method, deadlineHit, userSignal?.aborted === true, phaseTimedOut)
      status = -1
      this.metrics?.upstreamRequests.inc({ endpoint, status: failure.error.code === 'DEADLINE' || failure.error.code === 'ABORTED' ? 'aborted' : failure.error.kind })
      return { ok: false, failure }
    } finally {
      clearTimeout(phaseTimer)
      if (timer) clearTimeout(timer)
      callSignal.removeEventListener('abort', onAbort)
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
        return fail('bad_response', `lnm ${endpoint}: response is not valid JSON (${text.length} bytes)`, { status, code: 'INVALID_JSON' }, true)
      }
      if (!spec.validator.check(parsed)) {
        return fail('bad_response', `lnm ${endpoint}: response does not match ${spec.validator.name}: ${redact(spec.validator.firstError(parsed), secrets, 120)}`, { status, code: 'SCHEMA' }, true)
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
      return { ok: false, failure: { error: new LnmError('credentials_rejected', endpoint, msg, { status, code: safeCode }), retryable: false, upstreamFailure: false, timestampRejected } }
    }
    if (status === 429) {
      return { ok: false, failure: { error: new LnmError('rate_limited', endpoint, msg, { status, code: safeCode, retryAfterMs: parseRetryAfter(headers['retry-after']) }), retryable: true, upstreamFailure: false } }
    }
    if (status >= 500) return fail('unavailable', msg, { status, code: safeCode }, true, RETRY_STATUS.has(status))
    return fail('client_error', msg, { status, code: safeCode }, false)

    function fail(kind: LnmErrorKind, message: string, init: { status: number; code?: string }, upstreamFailure: boolean, retryable = false) {
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
    let code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined
    const name = (err as Error)?.name
    if (deadlineHit) return { error: new LnmError('timeout', endpoint, `lnm ${endpoint}: call deadline exceeded`, { code: 'DEADLINE' }), retryable: false, upstreamFailure: false }
    if (phaseTimedOut === 'headers' || code === 'UND_ERR_HEADERS_TIMEOUT') code = 'HEADERS_TIMEOUT'
    else if (phaseTimedOut === 'body' || code === 'UND_ERR_BODY_TIMEOUT') code = 'BODY_TIMEOUT'
    if (this.closing.signal.aborted) return { error: new LnmError('unavailable', endpoint, `lnm ${endpoint}: client closed`, { code: 'CLIENT_CLOSED' }), retryable: false, upstreamFailure: false }
    if (code === 'HEADERS_TIMEOUT' || code === 'BODY_TIMEOUT') {
      // read timeout (headers timer counts from dispatch): the request may have been processed; never retried (in particular not a POST)
      const ms = code === 'HEADERS_TIMEOUT' ? this.t.headersMs : this.t.bodyMs
      return { error: new LnmError('timeout', endpoint, `lnm ${endpoint}: no response ${code === 'HEADERS_TIMEOUT' ? 'headers' : 'body'} within ${ms} ms (${method})`, { code }), retryable: false, upstreamFailure: true }
    }
    if (userAborted || code === 'UND_ERR_ABORTED' || name === 'AbortError') {
      return { error: new LnmError('timeout', endpoint, `lnm ${endpoint}: aborted by caller`, { code: 'ABORTED' }), retryable: false, upstreamFailure: false }
    }
    if (code === 'UND_ERR_INVALID_ARG') {
      // undici refused the request before sending it: a local fault of this call, not the exchange's
      return { error: new LnmError('client_error', endpoint, `lnm ${endpoint}: request refused locally (${code})`, { code }), retryable: false, upstreamFailure: false }
    }
    if (code === 'UND_ERR_CONNECT_TIMEOUT') {
      return { error: new LnmError('timeout', endpoint, `lnm ${endpoint}: connect timeout`, { code }), retryable: true, upstreamFailure: true }
    }
    if (code && CONNECT_CODES.has(code)) {
      return { error: new LnmError('unavailable', endpoint, `lnm ${endpoint}: cannot connect (${code})`, { code }), retryable: true, upstreamFailure: true }
    }
    if (phase === 'body' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE' || (code && code.startsWith('HPE_')) || name === 'HTTPParserError') {
      return { error: new LnmError('bad_response', endpoint, `lnm ${endpoint}: truncated or unreadable response (${code ?? name ?? 'error'})`, { code: code ?? 'TRUNCATED' }), retryable: false, upstreamFailure: true }
    }
    // socket closed / reset after the request was written: not a connect-phase error, not retried
    return { error: new LnmError('unavailable', endpoint, `lnm ${endpoint}: connection failed (${code ?? name ?? 'error'})`, { code: code ?? 'NETWORK' }), retryable: false, upstreamFailure: true }
  }

  private async pause(ms: number, signal: AbortSignal, endpoint: string, userSignal?: AbortSignal): Promise<void> {
    try {
      await sleep(ms, signal)
    } catch (e) {
      if (!(e instanceof AbortedError)) throw e
      throw this.abortError(endpoint, userSignal)
    }
  }

  private abortError(endpoint: string, userSignal?: AbortSignal): LnmError {
    if (this.closing.signal.aborted && !userSignal?.aborted) return new LnmError('unavailable', endpoint, `lnm ${endpoint}: client closed`, { code: 'CLIENT_CLOSED' })
    return new LnmError('timeout', endpoint, `lnm ${endpoint}: aborted by caller`, { code: 'ABORTED' })
  }

  private circuitOpen(endpoint: string, retryAfterMs: number) {
    return new LnmError('circuit_open', endpoint, `lnm ${endpoint}: circuit open for ${this.origin}`, { retryAfterMs: Math.max(0, Math.round(retryAfterMs)) })
  }

  private throttleFor(key: string): Throttle {
    const id = createHash('sha256').update(key).digest('hex').slice(0, 24)
    let t = this.keyThrottles.get(id)
    if (!t) {
      t = new Throttle(this.limits.authPerSec, { margin: this.limits.margin })
      this.keyThrottles.set(id, t)
    }
    return t
  }

  /** Learn the offset before the first signed call; refresh in the background when it is old. */
  private async ensureClock(deadline: number | undefined, signal: AbortSignal): Promise<void> {
    const age = Date.now() - this.clockSyncedAt
    if (this.clockSyncedAt !== 0 && age < this.clockRefreshMs) return
    if (!this.clockSync) {
      const deadlineMs = deadline !== undefined ? Math.max(1, deadline - Date.now()) : undefined
      this.clockSync = this.time({ deadlineMs, signal })
        .then(() => undefined)
        .catch((e: unknown) => {
          this.logger?.warn?.({ kind: (e as LnmError).kind, code: (e as LnmError).code }, 'lnm clock sync failed; keeping previous offset')
          // do not block (or add a /time call to) every signed request while /time is failing: retry in a minute
          this.clockSyncedAt = Date.now() - this.clockRefreshMs + CLOCK_RETRY_AFTER_FAILURE_MS
        })
        .finally(() => {
          this.clockSync = null
        })
    }
    // first sync (or re-learn after a rejection) blocks; a periodic refresh does not
    if (this.clockSyncedAt === 0) await this.clockSync
  }

  private buildUrl(path: string, query?: Record<string, QueryValue>): URL {
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

function linkSignals(a: AbortSignal, b?: AbortSignal): { signal: AbortSignal; dispose(): void } {
  if (!b) return { signal: a, dispose: () => {} }
  const ac = new AbortController()
  const onA = () => ac.abort(a.reason)
  const onB = () => ac.abort(b.reason)
  if (a.aborted) onA()
  else if (b.aborted) onB()
  a.addEventListener('abort', onA, { once: true })
  b.addEventListener('abort', onB, { once: true })
  return {
    signal: ac.signal,
    dispose() {
      a.removeEventListener('abort', onA)
      b.removeEventListener('abort', onB)
    },
  }
}

/**
 * Settles with `p`, or rejects (AbortError) as soon as `signal` aborts, even when `p` never settles (a pool that lost
 * its connections must not hold a caller past its own deadline). A response that arrives after the abort is dumped.
 */
function abortable<R extends { body: { dump(): Promise<void> } }>(p: Promise<R>, signal: AbortSignal): Promise<R> {
  if (signal.aborted) {
    p.then((r) => r.body.dump().catch(() => {}), () => {})
    return Promise.reject(abortErrorOf(signal))
  }
  return new Promise<R>((resolve, reject) => {
    const onAbort = () => {
      reject(abortErrorOf(signal))
      p.then((r) => r.body.dump().catch(() => {}), () => {})
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

function pageQuery(q: { cursor?: string; from?: string | Date; to?: string | Date; limit?: number }): Record<string, QueryValue> {
  return { from: q.from, to: q.to, limit: q.limit, cursor: q.cursor }
}

type Wire<T, K extends keyof T> = Omit<T, K> & { [P in K]?: T[P] }

function normTrade(t: FuturesTradeWire): FuturesTrade {
  return { ...t, entryPrice: t.entryPrice ?? null, entryMargin: t.entryMargin ?? null, exitPrice: t.exitPrice ?? null, filledAt: t.filledAt ?? null, closedAt: t.closedAt ?? null, clientId: t.clientId ?? null }
}

function normCrossPosition(p: Wire<FuturesCrossPosition, 'entryPrice' | 'liquidation'>): FuturesCrossPosition {
  return { ...p, entryPrice: p.entryPrice ?? null, liquidation: p.liquidation ?? null }
}

function normCrossOrder(o: Wire<CrossOrder, 'filledAt' | 'canceledAt'>): CrossOrder {
  return { ...o, filledAt: o.filledAt ?? null, canceledAt: o.canceledAt ?? null }
}

function normFundingFee(f: Wire<FundingFee, 'tradeId'>): FundingFee {
  return { ...f, tradeId: f.tradeId ?? null }
}

function credId(creds?: Credentials): string {
  if (!creds) return 'public'
  return createHash('sha256').update(`${creds.key}\0${creds.secret}\0${creds.passphrase}`).digest('base64url').slice(0, 22)
}
