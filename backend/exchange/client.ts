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
 * - circuit breaker for the origin (while it is open, an optional public GET /ping health probe every
 *   `breaker.probeMs` closes it as soon as the exchange answers; `onRecovered` listeners then hear it);
 *   TypeBox validation of every response; typed `LnmError`s;
 * - lru-cache for ticker/candles + in-flight coalescing of identical GETs (private ones per credentials);
 * - optional per-call budget: `{ signal, deadlineMs }`.
 */
import { setMaxListeners } from 'node:events'
import type { Pool } from 'undici'
import { LRUCache } from 'lru-cache'
import type { Log } from '../logger.ts'
import type { Metrics } from '../metrics.ts'
import type { Credentials } from './signing.ts'
import { LnmError } from './errors.ts'
import { CallPolicy, type CallOptions } from './call-policy.ts'
import { ServerClock } from './clock.ts'
import { Coalescer, cached, credId } from './coalesce-cache.ts'
import { HttpAttempt, type QueryValue, type RequestSpec } from './http-attempt.ts'
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
} from './schemas.ts'

export { LnmError } from './errors.ts'
export type { LnmErrorKind } from './errors.ts'
export type { Credentials } from './signing.ts'

export type { CallOptions } from './call-policy.ts'
export type { QueryValue, RequestSpec } from './http-attempt.ts'

export interface LnmClientOptions {
  /** e.g. https://api.lnmarkets.com/v3 */
  baseUrl: string
  metrics?: Metrics
  logger?: Log
  timeouts?: { connectMs?: number; headersMs?: number; bodyMs?: number }
  retry?: { baseMs?: number; capMs?: number; retries?: number }
  /** client-side throttle; publicMode 'serial' (default) or 'spaced', see Throttle */
  limits?: {
    publicPerSec?: number
    authPerSec?: number
    publicMode?: 'serial' | 'spaced'
    /** extra spacing, default 0.1 (10 %) against network jitter */ margin?: number
  }
  /**
   * probeMs: while the circuit is open, one public GET /ping every probeMs (±25 % jitter, on the public
   * throttle) as its half-open probe, so recovery is seen within probeMs of the exchange answering again
   * rather than after openMs and a caller's next attempt; 0 (default) = callers' requests are the only probes
   */
  breaker?: { failureThreshold?: number; openMs?: number; probeMs?: number }
  cacheTtl?: { tickerMs?: number; candlesMs?: number }
  userAgent?: string
  /** how often the server clock offset is refreshed (default 10 min) */
  clockRefreshMs?: number
  /** keep-alive connections in the pool (default 4) */
  connections?: number
  /** biggest accepted response body (default 8 MiB) */
  maxResponseBytes?: number
}

export interface PageQuery {
  /** undefined: the first page (an undefined query value is left out of the URL) */
  cursor?: string | undefined
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

/**
 * The LN Markets REST v3 client: the typed endpoints below, on top of `HttpAttempt` (one signed attempt),
 * `CallPolicy` (throttle, breaker, retries, deadline), `ServerClock` (timestamp offset) and `Coalescer` + LRU
 * caches (shared GETs).
 */
export class LnmClient {
  readonly baseUrl: URL
  readonly origin: string
  private readonly metrics: Metrics | undefined
  private readonly http: HttpAttempt
  private readonly policy: CallPolicy
  private readonly clock: ServerClock
  private readonly coalescer: Coalescer
  private readonly tickerCache: LRUCache<string, Ticker>
  private readonly candlesCache: LRUCache<string, Page<Candle>>
  private readonly closing = new AbortController()
  private closed = false

  constructor(opts: LnmClientOptions) {
    this.baseUrl = new URL(opts.baseUrl)
    this.origin = this.baseUrl.origin
    this.metrics = opts.metrics
    // every call in flight listens for close() until it ends: hundreds under load is normal, not a leak
    setMaxListeners(0, this.closing.signal)
    this.clock = new ServerClock((o) => this.time(o), opts.clockRefreshMs ?? 10 * 60_000, opts.logger)
    this.http = new HttpAttempt({
      baseUrl: this.baseUrl,
      ...(opts.metrics !== undefined && { metrics: opts.metrics }),
      timeouts: {
        connectMs: opts.timeouts?.connectMs ?? 5_000,
        headersMs: opts.timeouts?.headersMs ?? 10_000,
        bodyMs: opts.timeouts?.bodyMs ?? 10_000,
      },
      userAgent: opts.userAgent ?? 'lnm-gateway/0.1',
      connections: opts.connections ?? 4,
      maxResponseBytes: opts.maxResponseBytes ?? 8 * 1024 * 1024,
      clock: this.clock,
      closing: this.closing.signal,
    })
    this.policy = new CallPolicy({
      http: this.http,
      clock: this.clock,
      closing: this.closing.signal,
      ...(opts.metrics !== undefined && { metrics: opts.metrics }),
      ...(opts.logger !== undefined && { logger: opts.logger }),
      retry: { baseMs: opts.retry?.baseMs ?? 1_000, capMs: opts.retry?.capMs ?? 8_000, retries: opts.retry?.retries ?? 3 },
      limits: {
        publicPerSec: opts.limits?.publicPerSec ?? 1,
        authPerSec: opts.limits?.authPerSec ?? 5,
        publicMode: opts.limits?.publicMode ?? 'serial',
        margin: opts.limits?.margin ?? 0.1,
      },
      breaker: {
        failureThreshold: opts.breaker?.failureThreshold ?? 5,
        openMs: opts.breaker?.openMs ?? 30_000,
        probeMs: opts.breaker?.probeMs ?? 0,
      },
      probeSpec: { method: 'GET', path: '/ping', validator: V.ping },
    })
    this.coalescer = new Coalescer(opts.metrics)
    this.tickerCache = new LRUCache({ max: 1, ttl: Math.max(1, opts.cacheTtl?.tickerMs ?? 1_000) })
    this.candlesCache = new LRUCache({ max: 200, ttl: Math.max(1, opts.cacheTtl?.candlesMs ?? 10_000) })
  }

  /** current learned offset: server time − local time (ms) */
  get clockOffsetMs(): number {
    return this.clock.offsetMs
  }

  get circuitState() {
    return this.policy.breaker.state
  }

  /** the undici pool (tests reach it to reproduce pool faults) */
  private get pool(): Pool {
    return this.http.pool
  }

  /** the shared in-flight GETs (tests check they are released) */
  private get inflight(): Map<string, unknown> {
    return this.coalescer.inflight
  }

  // ---------------------------------------------------------------- public API

  ping(opts?: CallOptions): Promise<string> {
    return this.get({ path: '/ping', validator: V.ping }, opts)
  }

  /** GET /time; also learns the clock offset. Returns the server time as ISO and the offset. */
  async time(opts?: CallOptions): Promise<{ time: string; offsetMs: number }> {
    const timing = { sentAt: 0, receivedAt: 0 }
    const res = await this.request({ method: 'GET', path: '/time', validator: V.time, timing }, opts, true)
    const serverMs = typeof res.time === 'number' ? res.time : Date.parse(res.time)
    if (!Number.isFinite(serverMs)) throw new LnmError('bad_response', '/time', 'lnm /time: unparseable time')
    const offsetMs = this.clock.learn(serverMs, timing.sentAt, timing.receivedAt)
    return { time: new Date(serverMs).toISOString(), offsetMs }
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
    const page = await this.get(
      { path: '/futures/isolated/trades/canceled', creds, query: pageQuery(q), validator: V.tradesWirePage },
      opts,
    )
    return { data: page.data.map(normTrade), nextCursor: page.nextCursor }
  }

  /** GET /futures/isolated/funding-fees; `tradeId` is normalised to null when absent */
  async isolatedFundingFees(creds: Credentials, q: PageQuery & { tradeId?: string } = {}, opts?: CallOptions): Promise<Page<FundingFee>> {
    const page = await this.get(
      { path: '/futures/isolated/funding-fees', creds, query: { ...pageQuery(q), tradeId: q.tradeId }, validator: V.fundingFees },
      opts,
    )
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
    return cached(this.metrics, this.tickerCache, 'ticker', 'ticker', () =>
      this.get({ path: '/futures/ticker', validator: V.ticker }, opts),
    )
  }

  candles(q: CandlesQuery, opts?: CallOptions): Promise<Page<Candle>> {
    const query = { ...pageQuery(q), range: q.range }
    const key = JSON.stringify(query)
    return cached(this.metrics, this.candlesCache, 'candles', key, () =>
      this.get({ path: '/futures/candles', query, validator: V.candles }, opts),
    )
  }

  oracleIndex(q: OracleQuery = {}, opts?: CallOptions): Promise<OracleIndex> {
    return this.get({ path: '/oracle/index', query: pageQuery(q), validator: V.oracleIndex }, opts)
  }

  oracleLastPrice(q: OracleQuery = {}, opts?: CallOptions): Promise<OracleLastPrice> {
    return this.get({ path: '/oracle/last-price', query: pageQuery(q), validator: V.oracleLastPrice }, opts)
  }

  /**
   * `fn` runs each time the circuit closes after having been open (the exchange answers again), so whoever
   * backed off during the outage can fetch now instead of at the end of its backoff. Returns the unsubscribe.
   */
  onRecovered(fn: () => void): () => void {
    return this.policy.onRecovered(fn)
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

  // ---------------------------------------------------------------- GET coalescing + core

  /** GET with in-flight coalescing: identical requests (same creds) share one upstream call. */
  get<T>(spec: Omit<RequestSpec<T>, 'method'>, opts?: CallOptions): Promise<T> {
    const full: RequestSpec<T> = { ...spec, method: 'GET' }
    const url = this.http.buildUrl(full.path, full.query)
    const key = `${url.pathname}${url.search}|${credId(full.creds)}`
    return this.coalescer.run(key, full.endpoint ?? full.path, opts, (shared) => this.request(full, shared))
  }

  /**
   * One logical call: throttle → breaker → sign → send → validate, with retries per the official policy.
   * Exposed for write endpoints (POST/PUT/DELETE are never coalesced or cached).
   */
  request<T>(spec: RequestSpec<T>, opts: CallOptions = {}, skipClock = false): Promise<T> {
    return this.policy.call(spec, opts, skipClock)
  }
}

function pageQuery(q: PageQuery): Record<string, QueryValue> {
  return { from: q.from, to: q.to, limit: q.limit, cursor: q.cursor }
}

type Wire<T, K extends keyof T> = Omit<T, K> & { [P in K]?: T[P] }

function normTrade(t: FuturesTradeWire): FuturesTrade {
  return {
    ...t,
    entryPrice: t.entryPrice ?? null,
    entryMargin: t.entryMargin ?? null,
    exitPrice: t.exitPrice ?? null,
    filledAt: t.filledAt ?? null,
    closedAt: t.closedAt ?? null,
    clientId: t.clientId ?? null,
  }
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
