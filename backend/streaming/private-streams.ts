/**
 * Exchange push: one authenticated Stream v1 connection per polled account, within a per-node budget.
 *
 * - Which accounts: those this node polls (AccountPollers' onStart/onStop), the `budget` most-watched
 *   (weight = dashboards on this node), re-ranked every `rebalanceMs`; the rest stay on REST polling.
 * - Limits (LN Markets, per IP): 32 sockets (`privateStreamBudget` leaves one for the public ticker stream),
 *   20 `authenticate` per minute and 500 new connections per hour. Every connection attempt of a private
 *   stream — a start and each reconnect — takes a token of one node-wide budget (`startsPerMin`, default 12,
 *   burst 6: at most 18 in any minute; and at most `connectsPerHour`, default 400, in any hour), and each
 *   stream's reconnects also back off with jitter (RpcSocket), so an exchange restart does not become a
 *   reconnect storm.
 * - An event updates the affected channel at once: `cross/position` carries the whole position and is
 *   applied as is; the other topics trigger a single-flight fetch of just the channels they change.
 * - Health: 'up' (again after every reconnect) → a full REST fetch, then REST every PUSH_RECONCILE_MS;
 *   'down' → REST at POLL_INTERVAL_MS until it is back.
 *
 * Streaming never imports the exchange client at run time: the plugin passes `create`.
 */
import { toPositionsSnapshot } from '../exchange/snapshots.ts'
import type { AccountChannel } from '../schemas/channels.ts'
import { Compile } from 'typebox/compile'
import {
  FuturesTradeSchema,
  type CrossSnapshot,
  type FuturesCrossPosition,
  type FuturesTrade,
  type PositionsSnapshot,
} from '../schemas/ws-protocol.ts'
import type { AccountPollers } from './account-pollers.ts'
import { silentLog, type Credentials, type CredentialsLookup, type Log } from './sources.ts'

/** the slice of LnmPrivateStream used here */
export interface PrivateStreamLike {
  readonly up: boolean
  /** when the link last received anything from the exchange (ms; pongs included) */
  readonly lastMessageTs?: number
  start(): void
  stop(): Promise<void>
  on(event: 'up', fn: () => void): unknown
  on(event: 'down', fn: (reason: string) => void): unknown
  on(event: 'event', fn: (e: { topic: string; data: unknown }) => void): unknown
  on(event: 'warn', fn: (info: object) => void): unknown
}

export interface PrivateStreamsOptions {
  pollers: Pick<AccountPollers, 'setPushHealthy' | 'fetchNow' | 'apply' | 'confirmByPush'>
  credentials: CredentialsLookup
  /**
   * a stream for these credentials; its reconnects must await `admit()` before each attempt (the first
   * connection is already admitted)
   */
  create: (creds: Credentials, userId: string, admit: () => Promise<void>) => PrivateStreamLike
  /** streams on this node at most */
  budget: number
  /** how watched an account is (dashboards on this node); higher first */
  weight: (userId: string) => number
  /** connection attempts (starts and reconnects) per minute, node-wide; burst half of it */
  startsPerMin?: number
  /** connection attempts in any rolling hour, node-wide (LN Markets: 500 new connections per IP per hour) */
  connectsPerHour?: number
  rebalanceMs?: number
  /**
   * how often an up stream re-confirms its account's data (default 5000): with the stream subscribed and alive
   * (its last message at T) and no change event, the data is still the exchange's truth at T
   */
  confirmEveryMs?: number
  metrics?: { privateStreams?: { set(v: number): void } }
  log?: Log
  now?: () => number
}

interface Entry {
  userId: string
  since: number
  stream: PrivateStreamLike | null
  /** a start is in progress (credentials lookup) */
  starting: boolean
  gen: number
}

/** what each private topic's event changes (besides the payload applied directly) */
export function channelsFor(topic: string, data: unknown): AccountChannel[] {
  const event = (data as { event?: unknown } | null)?.event
  switch (topic) {
    case 'futures/inverse/btc_usd/isolated/trades':
      // open/filled/canceled move margin and the book; closing events and funding also write history
      if (event === 'open' || event === 'filled') return ['positions', 'account']
      return ['positions', 'account', 'history']
    case 'futures/inverse/btc_usd/cross/orders':
      return event === 'canceled' ? ['cross'] : ['cross', 'history']
    case 'futures/inverse/btc_usd/cross/position':
      return ['cross']
    case 'wallet/deposit':
    case 'wallet/withdrawal':
      return ['account']
    default:
      return []
  }
}

/** LN Markets' Stream v1 limits per IP */
export const STREAM_LIMITS_PER_IP = Object.freeze({ sockets: 32, connectionsPerHour: 500, authenticatePerMinute: 20 })

/**
 * Private streams a node may hold: the configured budget, within the 32 stream sockets per IP less the
 * node's other stream connections (the public ticker stream).
 */
export function privateStreamBudget(configured: number, otherStreams: number): number {
  return Math.max(0, Math.min(configured, STREAM_LIMITS_PER_IP.sockets - otherStreams))
}

/** private-stream connection attempts per hour on one machine: 400 of LN Markets' 500 per IP, the rest left to ticker streams */
export const PRIVATE_CONNECTS_PER_HOUR = 400

/**
 * One worker's share of the machine's private-stream connection attempts (LN Markets counts `authenticate` and
 * new connections per IP, and a machine's workers share one IP): `startsPerMin` of the machine (at most 20) and
 * PRIVATE_CONNECTS_PER_HOUR, divided among `workers`.
 */
export function privateStreamRates(machineStartsPerMin: number, workers: number): { startsPerMin: number; connectsPerHour: number } {
  const n = Math.max(1, workers)
  return {
    startsPerMin: Math.min(machineStartsPerMin, STREAM_LIMITS_PER_IP.authenticatePerMinute) / n,
    connectsPerHour: Math.max(1, Math.floor(PRIVATE_CONNECTS_PER_HOUR / n)),
  }
}

const NUM = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)
const ISO = (v: unknown): string | null =>
  typeof v === 'number' && Number.isFinite(v) ? new Date(v).toISOString() : typeof v === 'string' ? v : null

/** the cross/position payload as a wire position, or null when it lacks a required field */
export function crossPositionFromEvent(data: unknown): FuturesCrossPosition | null {
  const p = (data as { position?: Record<string, unknown> } | null)?.position
  if (!p || typeof p !== 'object') return null
  const keys = [
    'quantity',
    'leverage',
    'margin',
    'totalPl',
    'deltaPl',
    'fundingFees',
    'tradingFees',
    'initialMargin',
    'maintenanceMargin',
    'runningMargin',
  ] as const
  const out: Record<string, number | string | null> = {}
  for (const k of keys) {
    const v = NUM(p[k])
    if (v === null) return null
    out[k] = v
  }
  const updatedAt = ISO(p.updatedAt)
  if (updatedAt === null) return null
  return {
    ...(out as Omit<FuturesCrossPosition, 'entryPrice' | 'liquidation' | 'updatedAt'>),
    entryPrice: NUM(p.entryPrice),
    liquidation: NUM(p.liquidation),
    updatedAt,
  }
}

const tradeCheck = Compile(FuturesTradeSchema)
const TRADE_TIMES = ['createdAt', 'filledAt', 'closedAt'] as const

/** the isolated/trades payload's trade as a wire FuturesTrade (stream times are ms), or null when partial */
export function tradeFromEvent(data: unknown): FuturesTrade | null {
  const t = (data as { trade?: Record<string, unknown> } | null)?.trade
  if (!t || typeof t !== 'object') return null
  const out: Record<string, unknown> = { ...t }
  for (const k of TRADE_TIMES) if (typeof out[k] === 'number') out[k] = new Date(out[k]).toISOString()
  for (const k of Object.keys(out)) if (!(k in FuturesTradeSchema.properties)) delete out[k]
  return tradeCheck.Check(out) ? out : null
}

/** positions with this trade's new state: out of both lists, back into running or open (newest first) */
export function applyTrade(cur: PositionsSnapshot, t: FuturesTrade): PositionsSnapshot {
  const byNewest = (a: FuturesTrade, b: FuturesTrade) => Date.parse(b.createdAt) - Date.parse(a.createdAt)
  const running = cur.running.filter((x) => x.id !== t.id)
  const open = cur.open.filter((x) => x.id !== t.id)
  if (t.running) running.push(t)
  else if (t.open) open.push(t)
  running.sort(byNewest)
  open.sort(byNewest)
  return toPositionsSnapshot(running, open)
}

export class PrivateStreams {
  private readonly entries = new Map<string, Entry>()
  private readonly o: Required<Omit<PrivateStreamsOptions, 'metrics'>> & Pick<PrivateStreamsOptions, 'metrics'>
  private tokens: number
  private refillAt: number
  private timer: NodeJS.Timeout | null = null
  private confirmTimer: ReturnType<typeof setInterval> | null = null
  private readonly burst: number
  /** times of the connection attempts admitted in the last hour */
  private connects: number[] = []
  /** reconnects waiting for a token, first come first served (they go before new starts) */
  private readonly waiters: Array<() => void> = []
  private admitTimer: NodeJS.Timeout | null = null

  constructor(opts: PrivateStreamsOptions) {
    this.o = {
      startsPerMin: 12,
      connectsPerHour: PRIVATE_CONNECTS_PER_HOUR,
      rebalanceMs: 5000,
      confirmEveryMs: 5000,
      log: silentLog,
      now: Date.now,
      ...opts,
    }
    this.burst = Math.max(1, Math.floor(this.o.startsPerMin / 2))
    this.tokens = this.burst
    this.refillAt = this.o.now()
  }

  /** this node's connection-attempt limits (its share of the machine's) */
  get limits(): { startsPerMin: number; burst: number; connectsPerHour: number } {
    return { startsPerMin: this.o.startsPerMin, burst: this.burst, connectsPerHour: this.o.connectsPerHour }
  }

  start(): void {
    if (this.timer || this.o.budget <= 0) return
    this.timer = setInterval(() => this.rebalance(), this.o.rebalanceMs)
    this.timer.unref()
    this.confirmTimer = setInterval(() => this.confirm(), this.o.confirmEveryMs)
    this.confirmTimer.unref()
  }

  /** every up stream vouches for its account's data as of its last message (no event = no change) */
  confirm(): void {
    for (const e of this.entries.values()) {
      const at = e.stream?.up ? (e.stream.lastMessageTs ?? 0) : 0
      if (at > 0) this.o.pollers.confirmByPush(e.userId, at)
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    if (this.confirmTimer) clearInterval(this.confirmTimer)
    this.confirmTimer = null
    if (this.admitTimer) clearTimeout(this.admitTimer)
    this.admitTimer = null
    // waiting reconnects go on to find their stream stopped
    for (const w of this.waiters.splice(0)) w()
    const all = [...this.entries.values()]
    this.entries.clear()
    await Promise.all(all.map((e) => this.stopStream(e)))
    this.o.metrics?.privateStreams?.set(0)
  }

  /** AccountPollers.onStart */
  watch(userId: string): void {
    if (this.o.budget <= 0 || this.entries.has(userId)) return
    this.entries.set(userId, { userId, since: this.o.now(), stream: null, starting: false, gen: 0 })
    this.rebalance()
  }

  /** AccountPollers.onStop */
  unwatch(userId: string): void {
    const e = this.entries.get(userId)
    if (!e) return
    this.entries.delete(userId)
    void this.stopStream(e)
    this.count()
  }

  /** AccountPollers.onCredentials: a stream with the old key is worthless */
  credentialsChanged(userId: string): void {
    const e = this.entries.get(userId)
    if (!e) return
    void this.stopStream(e)
    this.rebalance()
  }

  /** streams running (or starting) */
  get size(): number {
    let n = 0
    for (const e of this.entries.values()) if (e.stream || e.starting) n++
    return n
  }

  isUp(userId: string): boolean {
    return this.entries.get(userId)?.stream?.up === true
  }

  /** give the budget to the most-watched accounts (older watch first on ties) */
  rebalance(): void {
    const ranked = [...this.entries.values()].sort((a, b) => this.o.weight(b.userId) - this.o.weight(a.userId) || a.since - b.since)
    const keep = new Set(ranked.slice(0, this.o.budget).map((e) => e.userId))
    for (const e of ranked) if (!keep.has(e.userId) && (e.stream || e.starting)) void this.stopStream(e)
    for (const e of ranked) {
      if (!keep.has(e.userId) || e.stream || e.starting) continue
      if (!this.takeStartToken()) break
      void this.startStream(e)
    }
    this.count()
  }

  /** a new stream may start now (waiting reconnects go first) */
  private takeStartToken(): boolean {
    return this.waiters.length === 0 && this.takeToken()
  }

  private takeToken(): boolean {
    const now = this.o.now()
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refillAt) * this.o.startsPerMin) / 60_000)
    this.refillAt = now
    while (this.connects.length > 0 && now - this.connects[0]! >= 3_600_000) this.connects.shift()
    if (this.tokens < 1 || this.connects.length >= this.o.connectsPerHour) return false
    this.tokens -= 1
    this.connects.push(now)
    return true
  }

  /** one reconnect attempt of a stream may go: resolves when the node-wide connection budget allows it */
  readonly admit = (): Promise<void> => {
    if (this.waiters.length === 0 && this.takeToken()) return Promise.resolve()
    return new Promise<void>((resolve) => {
      this.waiters.push(resolve)
      this.pumpAdmit()
    })
  }

  private pumpAdmit(): void {
    if (this.admitTimer) return
    while (this.waiters.length > 0 && this.takeToken()) this.waiters.shift()!()
    if (this.waiters.length === 0) return
    const now = this.o.now()
    const minuteWait = this.tokens >= 1 ? 0 : ((1 - this.tokens) * 60_000) / this.o.startsPerMin
    const hourWait = this.connects.length >= this.o.connectsPerHour ? this.connects[0]! + 3_600_000 - now : 0
    this.admitTimer = setTimeout(
      () => {
        this.admitTimer = null
        this.pumpAdmit()
      },
      Math.max(10, Math.ceil(Math.max(minuteWait, hourWait))),
    )
  }

  private async startStream(e: Entry): Promise<void> {
    e.starting = true
    const gen = ++e.gen
    let creds: Credentials | null
    try {
      creds = await this.o.credentials(e.userId)
    } catch (err) {
      this.o.log.warn({ err, userId: e.userId }, 'private stream: credentials lookup failed')
      creds = null
    }
    e.starting = false
    if (gen !== e.gen || this.entries.get(e.userId) !== e || !creds) return
    const s = this.o.create(creds, e.userId, this.admit)
    e.stream = s
    const userId = e.userId
    s.on('up', () => {
      if (e.stream !== s) return
      this.o.log.debug({ userId }, 'private stream up')
      this.o.pollers.setPushHealthy(userId, true)
    })
    s.on('down', (reason) => {
      if (e.stream !== s) return
      this.o.log.debug({ userId, reason }, 'private stream down')
      this.o.pollers.setPushHealthy(userId, false)
    })
    s.on('event', (ev) => {
      if (e.stream === s) this.onEvent(userId, ev.topic, ev.data)
    })
    s.on('warn', (info) => this.o.log.debug({ userId, ...info }, 'private stream warning'))
    s.start()
    this.count()
  }

  private async stopStream(e: Entry): Promise<void> {
    e.gen++
    e.starting = false
    const s = e.stream
    e.stream = null
    if (!s) return
    const wasUp = s.up
    if (wasUp) this.o.pollers.setPushHealthy(e.userId, false)
    try {
      await s.stop()
    } catch (err) {
      this.o.log.debug({ err, userId: e.userId }, 'private stream stop failed')
    }
  }

  private onEvent(userId: string, topic: string, data: unknown): void {
    if (topic === 'futures/inverse/btc_usd/cross/position') {
      const position = crossPositionFromEvent(data)
      // the payload is the whole position: apply it now; anything odd → fetch the endpoint instead
      if (position && this.o.pollers.apply(userId, 'cross', (cur: CrossSnapshot) => ({ ...cur, position }))) return
    }
    let channels = channelsFor(topic, data)
    if (topic === 'futures/inverse/btc_usd/isolated/trades') {
      // a full trade in the payload: positions change now, REST only for the balance (and history)
      const trade = tradeFromEvent(data)
      if (trade && this.o.pollers.apply(userId, 'positions', (cur: PositionsSnapshot) => applyTrade(cur, trade)))
        channels = channels.filter((c) => c !== 'positions')
    }
    if (channels.length > 0) this.o.pollers.fetchNow(userId, channels)
  }

  private count(): void {
    this.o.metrics?.privateStreams?.set(this.size)
  }
}
