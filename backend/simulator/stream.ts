/**
 * Stream API v1 (lnmarkets-api.md §6.1): JSON-RPC 2.0 over `ws` at /v1. Limits as documented:
 * 10 inbound messages/s per socket (-32429 with retryAfterMs), 16 KiB max payload (close 1009),
 * idle timeout (120 s by default), 32 sockets per IP, 500 new connections per IP per hour, 20 authenticate
 * attempts per IP per minute (the last three configurable through `limits`).
 * Times in stream payloads are integer ms.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, WebSocket } from 'ws'
import { verifyStream } from './auth.ts'
import type { Engine, FundingEventExtra, Trade, TradeEvent, WalletEvent } from './engine.ts'
import type { CrossOrder, CrossOrderEvent, CrossPositionEvent, CrossPositionView } from './cross.ts'
import { CANDLE_RANGES, nextFundingTime, type Market } from './market.ts'
import type { Rng } from './rng.ts'
import type { Faults, SimAccountInput } from './types.ts'

export const STREAM_MAX_PAYLOAD = 16 * 1024
export const STREAM_MSGS_PER_SEC = 10
export interface StreamLimits {
  /** concurrent sockets per IP (documented: 32) */
  socketsPerIp: number
  /** new connections per IP per rolling hour (documented: 500) */
  connectionsPerHour: number
  /** `authenticate` calls per IP per rolling minute (documented: 20) */
  authPerMinute: number
}
export const DEFAULT_STREAM_LIMITS: Readonly<StreamLimits> = Object.freeze({ socketsPerIp: 32, connectionsPerHour: 500, authPerMinute: 20 })
const PERMISSIONS = [
  'account:read',
  'futures:isolated:read',
  'futures:isolated:write',
  'futures:cross:read',
  'futures:cross:write',
  'wallet:read',
]
const PREFIX = 'futures/inverse/btc_usd/'
const PUBLIC_TOPICS = new Set([
  `${PREFIX}ticker`,
  `${PREFIX}lastPrice`,
  `${PREFIX}index`,
  `${PREFIX}buckets`,
  `${PREFIX}funding`,
  ...Object.keys(CANDLE_RANGES).map((r) => `${PREFIX}ohlc/${r}`),
])
const PRIVATE_TOPICS = new Set([
  `${PREFIX}isolated/trades`,
  `${PREFIX}cross/orders`,
  `${PREFIX}cross/position`,
  'wallet/deposit',
  'wallet/withdrawal',
])

export const RpcError = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_SERVER_ERROR: -32603,
  UNAUTHORIZED: -32401,
  FORBIDDEN: -32403,
  TOO_MANY_REQUESTS: -32429,
} as const
type RpcCode = keyof typeof RpcError
/** a JSON-RPC message or its params, as received: every field is checked before use */
type RpcParams = Record<string, unknown>

class RpcFail extends Error {
  constructor(
    readonly code: RpcCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message)
  }
}

interface Client {
  ws: WebSocket
  ip: string
  topics: Set<string>
  auth?: { key: string; userId: string }
  windowStart: number
  count: number
  idle?: NodeJS.Timeout
}

export interface StreamDeps {
  accounts: Map<string, SimAccountInput>
  engine: Engine
  market: Market
  now: () => number
  faults: () => Faults
  rng: Rng
  idleMs: number
  limits?: Partial<StreamLimits>
}

const EPOCH_US = Date.now() * 1000 - performance.now() * 1000
/** monotonic µs since the epoch, shifted by the simulator's clock skew */
const micros = (skewMs: number): number => Math.round(EPOCH_US + performance.now() * 1000 + skewMs * 1000)

export class StreamServer {
  private wss = new WebSocketServer({ noServer: true, maxPayload: STREAM_MAX_PAYLOAD })
  readonly clients = new Set<Client>()
  private authAttempts = new Map<string, number[]>()
  private connections = new Map<string, number[]>()
  private readonly limits: StreamLimits
  private readonly counters = {
    connections: 0,
    authenticate: 0,
    refusedSockets: 0,
    refusedConnections: 0,
    refusedAuthenticate: 0,
    refusedMessages: 0,
    maxOpen: 0,
  }
  /** every upgrade attempt (wall ms, the HTTP status answered) and every `authenticate` call (wall ms, the key it named) */
  private readonly events = {
    upgrades: [] as Array<{ ts: number; status: number }>,
    authenticate: [] as Array<{ ts: number; key: string | null }>,
  }
  /** restart(): upgrades are refused (503) until then */
  private refuseUntil = 0
  private nonces = new Map<string, number>()
  private lastPrice: number | undefined
  private lastFunding: number | undefined

  constructor(private readonly d: StreamDeps) {
    this.limits = { ...DEFAULT_STREAM_LIMITS, ...d.limits }
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '/').split('?')[0]
    const reject = (status: number, reason: string) => {
      this.events.upgrades.push({ ts: Date.now(), status })
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
    }
    if (path !== '/v1') return reject(404, 'Not Found')
    if (this.d.faults().outage || Date.now() < this.refuseUntil) return reject(503, 'Service Unavailable')
    const ip = req.socket.remoteAddress ?? '?'
    if ([...this.clients].filter((c) => c.ip === ip).length >= this.limits.socketsPerIp) {
      this.counters.refusedSockets++
      return reject(429, 'Too Many Requests')
    }
    // new connections per IP per rolling hour (refused upgrades are not counted)
    const wall = Date.now()
    const recent = (this.connections.get(ip) ?? []).filter((t) => wall - t < 3_600_000)
    if (recent.length >= this.limits.connectionsPerHour) {
      this.connections.set(ip, recent)
      this.counters.refusedConnections++
      return reject(429, 'Too Many Requests')
    }
    recent.push(wall)
    this.connections.set(ip, recent)
    this.counters.connections++
    this.events.upgrades.push({ ts: wall, status: 101 })
    this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws, ip))
  }

  private attach(ws: WebSocket, ip: string): void {
    const c: Client = { ws, ip, topics: new Set(), windowStart: 0, count: 0 }
    this.clients.add(c)
    this.counters.maxOpen = Math.max(this.counters.maxOpen, this.clients.size)
    this.touch(c)
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- ws hands a text frame over as one Buffer (binaryType 'nodebuffer')
    ws.on('message', (data, isBinary) => this.onMessage(c, isBinary ? '\u0000' : data.toString()))
    ws.on('close', () => {
      clearTimeout(c.idle)
      this.clients.delete(c)
    })
    ws.on('error', () => ws.terminate())
  }

  private touch(c: Client): void {
    clearTimeout(c.idle)
    c.idle = setTimeout(() => c.ws.close(1000, 'Idle timeout'), this.d.idleMs)
    c.idle.unref()
  }

  private send(c: Client, frame: unknown): void {
    if (c.ws.readyState !== WebSocket.OPEN) return
    if (this.d.rng.next() < this.d.faults().dropRate) {
      c.ws.terminate()
      return
    }
    c.ws.send(JSON.stringify(frame))
  }

  private onMessage(c: Client, text: string): void {
    const skew = () => this.d.faults().clockSkewMs
    const usIn = micros(skew())
    this.touch(c)
    const wall = Date.now()
    if (wall - c.windowStart >= 1000) {
      c.windowStart = wall
      c.count = 0
    }
    c.count++
    const remaining = Math.max(0, STREAM_MSGS_PER_SEC - c.count)
    let id: string | number | null = null
    const reply = (body: { result: unknown } | { error: unknown }) => {
      const usOut = micros(skew())
      this.send(c, { jsonrpc: '2.0', id, ...body, usIn, usOut, usDiff: usOut - usIn, rateLimit: { remaining, limit: STREAM_MSGS_PER_SEC } })
    }
    const fail = (e: RpcFail) => reply({ error: { code: RpcError[e.code], message: e.message, data: { code: e.code, ...e.extra } } })

    let parsed: unknown
    let parseable = true
    try {
      parsed = JSON.parse(text)
    } catch {
      parseable = false
    }
    const validId = (v: unknown): v is string | number => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))
    const msg = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as RpcParams) : null
    if (msg && validId(msg.id)) id = msg.id
    if (c.count > STREAM_MSGS_PER_SEC) {
      this.counters.refusedMessages++
      return fail(new RpcFail('TOO_MANY_REQUESTS', 'Too many requests', { retryAfterMs: Math.max(1, c.windowStart + 1000 - wall) }))
    }
    if (!parseable) return fail(new RpcFail('PARSE_ERROR', 'Parse error'))
    const { method, params = {} } = msg ?? {}
    if (
      !msg ||
      msg.jsonrpc !== '2.0' ||
      typeof method !== 'string' ||
      ('id' in msg && !validId(msg.id)) ||
      typeof params !== 'object' ||
      params === null
    ) {
      return fail(new RpcFail('INVALID_REQUEST', 'Invalid Request'))
    }
    const notification = !('id' in msg)
    try {
      const result = this.call(c, method, params as RpcParams)
      if (!notification) reply({ result })
    } catch (e) {
      if (notification) return
      if (e instanceof RpcFail) return fail(e)
      fail(new RpcFail('INTERNAL_SERVER_ERROR', 'Internal error'))
    }
  }

  private topicsParam(params: RpcParams): string[] {
    const topics = params.topics
    if (!Array.isArray(topics) || topics.length === 0 || !topics.every((t): t is string => typeof t === 'string')) {
      throw new RpcFail('INVALID_PARAMS', 'params.topics must be a non-empty array of strings')
    }
    return [...new Set(topics)]
  }

  private call(c: Client, method: string, params: RpcParams): unknown {
    switch (method) {
      case 'hello':
        return { version: '1.0.0' }
      case 'ping':
        return 'pong'
      case 'time':
        return { time: this.d.now() }
      case 'authenticate':
        return this.authenticate(c, params)
      case 'whoami':
        if (!c.auth) throw new RpcFail('UNAUTHORIZED', 'Not authenticated')
        return { apiKey: c.auth.key, userId: c.auth.userId, permissions: PERMISSIONS }
      case 'subscribe': {
        const topics = this.topicsParam(params)
        for (const t of topics) {
          if (PRIVATE_TOPICS.has(t)) {
            if (!c.auth) throw new RpcFail('UNAUTHORIZED', `Topic ${t} requires authentication`)
          } else if (!PUBLIC_TOPICS.has(t)) {
            throw new RpcFail('INVALID_PARAMS', `Unknown topic: ${t}`)
          }
        }
        for (const t of topics) c.topics.add(t)
        return { subscribed: topics }
      }
      case 'unsubscribe': {
        const topics = this.topicsParam(params)
        for (const t of topics) {
          if (!PUBLIC_TOPICS.has(t) && !PRIVATE_TOPICS.has(t)) throw new RpcFail('INVALID_PARAMS', `Unknown topic: ${t}`)
        }
        const removed = topics.filter((t) => c.topics.delete(t))
        return { unsubscribed: removed }
      }
      case 'unsubscribeAll': {
        const removed = [...c.topics]
        c.topics.clear()
        return { unsubscribed: removed }
      }
      default:
        throw new RpcFail('METHOD_NOT_FOUND', `Method not found: ${method}`)
    }
  }

  private authenticate(c: Client, p: RpcParams): unknown {
    const wall = Date.now()
    const attempts = (this.authAttempts.get(c.ip) ?? []).filter((t) => wall - t < 60_000)
    attempts.push(wall)
    this.authAttempts.set(c.ip, attempts)
    this.counters.authenticate++
    this.events.authenticate.push({ ts: wall, key: typeof p.key === 'string' ? p.key : null })
    if (attempts.length > this.limits.authPerMinute) {
      this.counters.refusedAuthenticate++
      throw new RpcFail('TOO_MANY_REQUESTS', 'Too many authentication attempts', { retryAfterMs: 60_000 - (wall - attempts[0]!) })
    }
    const str = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max
    const { key, signature, passphrase, nonce, timestamp } = p
    if (
      !str(key, 256) ||
      !str(signature, 256) ||
      !str(passphrase, 256) ||
      !str(nonce, 128) ||
      typeof timestamp !== 'number' ||
      !Number.isSafeInteger(timestamp)
    ) {
      throw new RpcFail('INVALID_PARAMS', 'params must be {key, signature, timestamp (ms integer), passphrase, nonce}')
    }
    const now = this.d.now()
    const res = verifyStream({ key, signature, passphrase, nonce, timestamp }, this.d.accounts, now)
    if (typeof res === 'string') throw new RpcFail('UNAUTHORIZED', res)
    const nonceKey = `${key}:${nonce}`
    for (const [k, t] of this.nonces) if (now - t > 120_000) this.nonces.delete(k)
    if (this.nonces.has(nonceKey)) throw new RpcFail('UNAUTHORIZED', 'Nonce already used')
    this.nonces.set(nonceKey, now)
    c.auth = { key: res.key, userId: this.d.engine.account(res.key).id }
    return { authenticated: true, permissions: PERMISSIONS }
  }

  private notify(topic: string, data: unknown, filter?: (c: Client) => boolean): void {
    for (const c of this.clients) {
      if (c.topics.has(topic) && (!filter || filter(c))) this.send(c, { jsonrpc: '2.0', method: 'subscription', params: { topic, data } })
    }
  }

  /** after every price change */
  publishMarket(): void {
    const m = this.d.market
    const time = m.time()
    const fundingTime = nextFundingTime(this.d.now())
    this.notify(`${PREFIX}ticker`, { time, lastPrice: m.price(), index: m.index(), funding: { rate: m.fundingRate, time: fundingTime } })
    if (m.price() !== this.lastPrice) this.notify(`${PREFIX}lastPrice`, { time, lastPrice: m.price() })
    this.notify(`${PREFIX}index`, { time, index: m.index() })
    this.notify(`${PREFIX}buckets`, { time, buckets: m.buckets() })
    if (m.fundingRate !== this.lastFunding)
      this.notify(`${PREFIX}funding`, { pair: 'btc_usd', current: { rate: m.fundingRate, time: fundingTime } })
    this.lastPrice = m.price()
    this.lastFunding = m.fundingRate
    for (const [range, ms] of Object.entries(CANDLE_RANGES)) {
      const topic = `${PREFIX}ohlc/${range}`
      if (![...this.clients].some((c) => c.topics.has(topic))) continue
      const start = Math.floor(time / ms) * ms
      const candle = m.aggregate(ms, start, time).at(-1)
      if (candle) this.notify(topic, candle)
    }
  }

  /** `isolated/trades`: the trade with ms times; a funding event carries the SDK's `{margin, liquidationPrice, fundingFee, fundedAt}` */
  publishTrade(owner: string, event: TradeEvent, t: Trade, extra?: FundingEventExtra): void {
    const { owner: _o, ...full } = t
    const trade =
      event === 'funding' && extra
        ? {
            id: t.id,
            margin: t.margin,
            liquidationPrice: t.liquidation,
            fundingFee: extra.fundingFee,
            fundedAt: extra.fundedAt,
            clientId: t.clientId,
          }
        : full
    this.notify(`${PREFIX}isolated/trades`, { pair: 'btc_usd', event, trade }, (c) => c.auth?.key === owner)
  }

  /** `cross/orders`: 'new' (accepted; a market order is already filled), 'limit' (a resting limit order filled), 'canceled' */
  publishCrossOrder(owner: string, event: CrossOrderEvent, o: CrossOrder): void {
    const { owner: _o, ...order } = o
    this.notify(`${PREFIX}cross/orders`, { pair: 'btc_usd', event, order }, (c) => c.auth?.key === owner)
  }

  /** `cross/position`: the position after a fill, transfer, leverage change, funding or liquidation (ms times) */
  publishCrossPosition(owner: string, event: CrossPositionEvent, p: CrossPositionView): void {
    const { id: _id, uid: _uid, ...position } = p
    this.notify(`${PREFIX}cross/position`, { pair: 'btc_usd', event, position }, (c) => c.auth?.key === owner)
  }

  publishWallet(owner: string, kind: 'deposit' | 'withdrawal', e: WalletEvent): void {
    this.notify(`wallet/${kind}`, e, (c) => c.auth?.key === owner)
  }

  /**
   * what the limits saw since start: accepted connections and authenticate calls, the refusals of each limit,
   * and the most sockets open at once (every client of a test is on 127.0.0.1, so these are per IP)
   */
  stats(): { open: number; authenticated: number; privateDrops: number } & StreamServer['counters'] {
    return {
      ...this.counters,
      open: this.clients.size,
      authenticated: [...this.clients].filter((c) => c.auth).length,
      privateDrops: this.privateDrops,
    }
  }

  /** the log behind the counters: each upgrade attempt with its status, each authenticate call (wall ms) */
  eventLog(): { upgrades: Array<{ ts: number; status: number }>; authenticate: Array<{ ts: number; key: string | null }> } {
    return { upgrades: this.events.upgrades.slice(), authenticate: this.events.authenticate.slice() }
  }

  /** an exchange-side stream restart: every socket dropped, upgrades refused (503) for `refuseMs`; REST stays up */
  restart(refuseMs: number): void {
    this.refuseUntil = Date.now() + refuseMs
    this.dropAll()
  }

  dropAll(): void {
    for (const c of this.clients) c.ws.terminate()
  }

  /** authenticated (private) connections terminated by the `privateStreamDropMs` fault */
  privateDrops = 0
  private privateDropTimer: NodeJS.Timeout | null = null
  private privateDropMs = 0

  /** the faults changed: (re)arm or stop the periodic drop of private connections */
  applyFaults(f: Faults): void {
    if (f.privateStreamDropMs === this.privateDropMs) return
    if (this.privateDropTimer) clearInterval(this.privateDropTimer)
    this.privateDropTimer = null
    this.privateDropMs = f.privateStreamDropMs
    if (f.privateStreamDropMs > 0) {
      this.privateDropTimer = setInterval(() => {
        for (const c of this.clients) {
          if (!c.auth) continue
          this.privateDrops++
          c.ws.terminate()
        }
      }, f.privateStreamDropMs)
      this.privateDropTimer.unref()
    }
  }

  close(): void {
    if (this.privateDropTimer) clearInterval(this.privateDropTimer)
    this.privateDropTimer = null
    this.dropAll()
    this.wss.close()
  }
}
