/**
 * The hub: every /ws socket from upgrade to close. Authentication (first message or pre-verified header),
 * admission, validation, rate limits, subscriptions, fan-out with per-socket backpressure, heartbeats,
 * token expiry, revocation and the shutdown drain.
 *
 * Memory per socket is one `Conn` of plain fields: no per-socket timers or closures. Three shared timers
 * drive everything: the sweep (auth deadlines, slow consumers, closing sockets; expiry and room expiry
 * once a second), the heartbeat, and the drain. Event handlers are shared functions reading `ws[kConn]`.
 *
 * Fan-out: a bus event changes the cache; the hub serializes the data_update once into one Buffer and
 * writes that same Buffer to every subscriber (ws frames it without copying: server frames are unmasked).
 * A socket whose bufferedAmount exceeds the cap stops receiving frames: its pending channels are collapsed
 * to a bit mask and flushed from the cache (latest snapshot only) once it drains; still above the cap
 * after `slowConsumerGraceMs`, it is closed with 4008 and terminated `closeGraceMs` later.
 */
import type { WebSocket } from 'ws'
import type { Metrics } from '../metrics.ts'
import {
  CHANNELS,
  CloseCode,
  PROTOCOL_VERSION,
  type Channel,
  type ClientMessage,
  type FreshFrame,
  type ServerFrame,
  type Source,
  type UpstreamState,
} from '../schemas/ws-protocol.ts'
import { CONTROL_TOPIC, TICKER_TOPIC, accountTopic, isUpstreamEvent, type Bus, type BusEvent, type StatusEvent } from './bus.ts'
import { CHANNEL_BY_INDEX, SnapshotCache, dataUpdateFrame, type CachedSnapshot } from './cache.ts'
import { ALL_CHANNELS, CHANNEL_BITS, channelBits, channelList, parseClientFrame } from './protocol.ts'
import { closeCodeLabel } from './close-code-label.ts'
import { silentLog, type Log } from './sources.ts'

export interface VerifiedToken {
  userId: string
  /** epoch seconds */
  exp: number
  tokenHash: string
}

/** verifyAccessToken: rejects with an error carrying `reason` ('expired' | 'invalid' | 'revoked' | 'unknown_user' …) */
export type VerifyToken = (token: string) => Promise<VerifiedToken>

export interface HubOptions {
  bus: Bus
  verify: VerifyToken
  source: Source
  metrics: Metrics
  maxConnections: number
  maxConnectionsPerUser: number
  authTimeoutMs: number
  heartbeatMs: number
  maxBufferedBytes: number
  rateLimitPerSec: number
  staleAfterMs: number
  /** an account (and the ticker) stays watched this long after its last socket or dashboard request */
  graceMs: number
  /** refresh_data triggers at most one upstream refresh per account per this window */
  refreshMinMs?: number
  /** a collapsed socket still above the cap after this long is closed with 4008 */
  slowConsumerGraceMs?: number
  /** a socket we closed that has not completed the closing handshake is terminated after this */
  closeGraceMs?: number
  /** /api/dashboard waits at most this long for a cold cache */
  coldWaitMs?: number
  cache?: SnapshotCache
  log?: Log
  /** a socket left the unauthenticated state (the upgrade gate's budget) */
  onAuthenticated?: (socket: WebSocket) => void
  now?: () => number
}

const enum State {
  PENDING = 0,
  AUTHENTICATING = 1,
  OPEN = 2,
  CLOSING = 3,
  CLOSED = 4,
}

/** pending-mask bits beyond the three channels: statuses owed to a collapsed socket */
const PENDING_ACCOUNT_STATUS = 8
const PENDING_TICKER_STATUS = 16
const MAX_QUEUED = 8
const kConn = Symbol('lnm.conn')
type WsWithConn = WebSocket & { [kConn]?: Conn }

class Conn {
  userId: string | null = null
  tokenHash: string | null = null
  expMs = 0
  state: State = State.PENDING
  channels = ALL_CHANNELS
  alive = true
  /** token bucket */
  tokens: number
  refillAt: number
  drops = 0
  /** collapse mode: since when (0 = not collapsed) and which channels/statuses are owed */
  slowSince = 0
  pendingMask = 0
  /** auth deadline while pending; terminate deadline while closing */
  deadline: number
  closeCode = 0
  room: Room | null = null
  /** messages that arrived while the first auth was being verified */
  queue: ClientMessage[] | null = null
  reauthing = false
  constructor(readonly ws: WsWithConn, readonly id: number, deadline: number, now: number, burst: number) {
    this.deadline = deadline
    this.refillAt = now
    this.tokens = burst
  }
}

class Room {
  readonly conns = new Set<Conn>()
  readonly topic: string
  keepUntil = 0
  lastRefreshAt = 0
  /** when a `fresh` frame last went to this room */
  lastFreshSent = 0
  constructor(readonly userId: string, readonly unsubscribe: () => void) {
    this.topic = accountTopic(userId)
  }
}

export interface HubStats {
  connections: number
  authenticated: number
  pendingAuth: number
  slow: number
  closing: number
  rooms: number
  tickerSubscribers: number
  /** sum and max of ws.bufferedAmount over all sockets (bytes held for sockets that have not read them) */
  bufferedBytes: number
  maxBufferedBytes: number
}

const SEND_OPTS = { binary: false, compress: false, fin: true } as const

export function closeCodeForAuthFailure(reason: string): number {
  if (reason === 'expired') return CloseCode.TOKEN_EXPIRED
  if (reason === 'unknown_user') return CloseCode.FORBIDDEN
  return CloseCode.INVALID_TOKEN
}

const AUTH_REASONS = new Set(['expired', 'invalid', 'revoked', 'unknown_user', 'missing'])
export function authFailureReason(err: unknown): string | null {
  const r = (err as { reason?: unknown } | null)?.reason
  return typeof r === 'string' && AUTH_REASONS.has(r) ? r : null
}

export class Hub {
  readonly cache: SnapshotCache
  private readonly o: Required<Omit<HubOptions, 'cache'>>
  private readonly conns = new Set<Conn>()
  private readonly pendingAuth = new Set<Conn>()
  private readonly slow = new Set<Conn>()
  private readonly closing = new Set<Conn>()
  private readonly rooms = new Map<string, Room>()
  private readonly tickerConns = new Set<Conn>()
  private tickerWatched = false
  private tickerKeepUntil = 0
  private tickerLastFresh = 0
  private nextId = 0
  private draining = false
  private sweepTimer: NodeJS.Timeout | null = null
  private heartbeatTimer: NodeJS.Timeout | null = null
  private nextSlowSweep = 0
  private readonly burst: number
  private unsubscribeTicker: (() => void) | null = null
  private readonly m: {
    dataFrames: { inc(v: number): void }
    dataBytes: { inc(v: number): void }
  }

  constructor(opts: HubOptions) {
    this.o = {
      refreshMinMs: 3000,
      slowConsumerGraceMs: 1000,
      closeGraceMs: 5000,
      coldWaitMs: 2000,
      log: silentLog,
      now: Date.now,
      onAuthenticated: () => {},
      ...opts,
    }
    this.cache = opts.cache ?? new SnapshotCache()
    this.burst = Math.max(2, opts.rateLimitPerSec * 2)
    const mm = opts.metrics
    this.m = {
      dataFrames: mm.framesSent.labels('data_update'),
      dataBytes: mm.bytesSent.labels('data_update'),
    }
    // shared handlers: one function per hub, never one per socket
    const hub = this
    this.onWsMessage = function (this: WsWithConn, data: Buffer, isBinary: boolean) {
      const c = this[kConn]
      if (!c) return
      try {
        hub.handleMessage(c, data, isBinary)
      } catch (err) {
        // a bug must cost one socket (1011), never the process
        hub.o.log.error({ err, conn: c.id }, 'message handling failed')
        hub.close(c, CloseCode.INTERNAL, 'internal error')
      }
    }
    this.onWsClose = function (this: WsWithConn, code: number) {
      const c = this[kConn]
      if (c) hub.onClosed(c, code)
    }
    this.onWsPong = function (this: WsWithConn) {
      const c = this[kConn]
      if (c) c.alive = true
    }
    this.onWsError = function (this: WsWithConn, err: Error) {
      // ws reports protocol errors here (maxPayload, bad UTF-8, bad opcode) and closes the socket itself
      const c = this[kConn]
      const code = (err as { code?: string }).code
      hub.o.log.debug({ err: { message: err.message, code }, conn: c?.id }, 'websocket error')
      if (!c || c.state >= State.CLOSING) return
      hub.detach(c)
      c.state = State.CLOSING
      c.closeCode = code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? CloseCode.TOO_BIG : code === 'WS_ERR_INVALID_UTF8' ? 1007 : code?.startsWith('WS_ERR_') ? 1002 : 1006
      c.deadline = hub.o.now() + hub.o.closeGraceMs
      hub.closing.add(c)
    }
    this.onAccountEvent = this.onAccountEvent.bind(this)
    this.sweep = this.sweep.bind(this)
    this.heartbeat = this.heartbeat.bind(this)
  }

  private readonly onWsMessage: (this: WsWithConn, data: Buffer, isBinary: boolean) => void
  private readonly onWsClose: (this: WsWithConn, code: number) => void
  private readonly onWsPong: (this: WsWithConn) => void
  private readonly onWsError: (this: WsWithConn, err: Error) => void

  start(): void {
    if (this.sweepTimer) return
    this.unsubscribeTicker = this.o.bus.subscribe(TICKER_TOPIC, (e) => this.onTickerEvent(e))
    const sweepMs = Math.max(20, Math.min(250, Math.floor(this.o.authTimeoutMs / 4), Math.floor(this.o.slowConsumerGraceMs / 2)))
    this.sweepTimer = setInterval(this.sweep, sweepMs)
    this.sweepTimer.unref()
    this.heartbeatTimer = setInterval(this.heartbeat, this.o.heartbeatMs)
    this.heartbeatTimer.unref()
  }

  // ------------------------------------------------------------------ admission

  /**
   * checked on the upgrade request, before upgrading: null = admit, else the refusal reason. MAX_CONNECTIONS
   * counts sockets past authentication; those still authenticating have their own budget (the upgrade gate).
   */
  refusal(): 'over_capacity' | 'shutting_down' | null {
    if (this.draining) return 'shutting_down'
    if (this.conns.size - this.pendingAuth.size >= this.o.maxConnections) return 'over_capacity'
    return null
  }

  get isDraining(): boolean {
    return this.draining
  }

  /**
   * Take over an upgraded socket. `preAuth`: a token already verified from the upgrade's Authorization header.
   * Must be called synchronously in the route handler so no message is missed.
   */
  accept(socket: WebSocket, preAuth?: VerifiedToken): void {
    const ws = socket as WsWithConn
    const now = this.o.now()
    const c = new Conn(ws, ++this.nextId, now + this.o.authTimeoutMs, now, this.burst)
    ws[kConn] = c
    // @fastify/websocket's own error listener closes over the request and reply: drop it so they can be freed
    ws.removeAllListeners('error')
    ws.on('error', this.onWsError)
    ws.on('message', this.onWsMessage)
    ws.on('close', this.onWsClose)
    ws.on('pong', this.onWsPong)
    this.conns.add(c)
    this.o.metrics.connectionsOpen.inc()
    if (this.draining) {
      this.o.metrics.connectionsRefused.inc({ reason: 'shutting_down' })
      return this.close(c, CloseCode.GOING_AWAY, 'server shutting down')
    }
    if (this.conns.size - this.pendingAuth.size > this.o.maxConnections) {
      this.o.metrics.connectionsRefused.inc({ reason: 'over_capacity' })
      return this.close(c, CloseCode.TRY_AGAIN_LATER, 'over capacity, retry later')
    }
    this.o.metrics.connectionsAccepted.inc()
    if (preAuth) {
      c.state = State.AUTHENTICATING
      this.onVerified(c, preAuth, undefined)
    } else {
      this.pendingAuth.add(c)
    }
  }

  // ------------------------------------------------------------------ inbound

  private handleMessage(c: Conn, data: Buffer, isBinary: boolean): void {
    if (c.state >= State.CLOSING) return
    c.alive = true
    if (!this.takeToken(c)) return
    const parsed = parseClientFrame(data, isBinary)
    const authed = c.state === State.OPEN
    if (!parsed.ok) {
      this.o.metrics.framesReceived.inc({ type: 'invalid' })
      // before authentication the only acceptable frame is a valid auth: anything else is a protocol violation
      if (c.state === State.PENDING) return this.close(c, CloseCode.BAD_REQUEST, `protocol violation: ${parsed.code}`)
      this.sendError(c, parsed.code, parsed.message, parsed.request_id)
      return
    }
    const msg = parsed.msg
    this.o.metrics.framesReceived.inc({ type: msg.type })
    if (c.state === State.PENDING) {
      if (msg.type !== 'auth') return this.close(c, CloseCode.BAD_REQUEST, 'protocol violation: authenticate first')
      return this.authenticate(c, msg.token, msg.request_id)
    }
    if (c.state === State.AUTHENTICATING) {
      // a browser may pipeline subscribe/ping after auth: keep a few until the token is verified
      if (msg.type === 'auth' || (c.queue?.length ?? 0) >= MAX_QUEUED) return this.close(c, CloseCode.BAD_REQUEST, 'protocol violation: wait for the auth ack')
      ;(c.queue ??= []).push(msg)
      return
    }
    if (authed) this.dispatch(c, msg)
  }

  /** token bucket: rate per second, burst of two seconds; persistent excess closes with 4029 */
  private takeToken(c: Conn): boolean {
    const now = this.o.now()
    const rate = this.o.rateLimitPerSec
    c.tokens = Math.min(this.burst, c.tokens + ((now - c.refillAt) * rate) / 1000)
    c.refillAt = now
    if (c.tokens >= this.burst) c.drops = 0
    if (c.tokens >= 1) {
      c.tokens -= 1
      return true
    }
    c.drops++
    this.o.metrics.framesReceived.inc({ type: 'rate_limited' })
    if (c.drops === 1) this.sendError(c, 'rate_limited', `more than ${rate} messages per second: messages are dropped; keep going and the connection closes`)
    else if (c.drops > rate) this.close(c, CloseCode.RATE_LIMITED, 'rate limited')
    return false
  }

  private dispatch(c: Conn, msg: ClientMessage): void {
    switch (msg.type) {
      case 'ping':
        this.sendFrame(c, { type: 'pong', request_id: msg.request_id, serverTime: this.o.now() })
        return
      case 'auth':
        if (c.reauthing) return this.ack(c, msg.request_id, 'error', 'an auth is already in progress')
        return this.authenticate(c, msg.token, msg.request_id)
      case 'subscribe': {
        const bits = channelBits(msg.channels)
        const added = bits & ~c.channels
        c.channels |= bits
        if (added & CHANNEL_BITS.ticker) this.addTickerConn(c)
        this.ack(c, msg.request_id, 'ok', undefined, { channels: channelList(c.channels) })
        this.sendSnapshots(c, added)
        return
      }
      case 'unsubscribe': {
        const bits = channelBits(msg.channels)
        c.channels &= ~bits
        c.pendingMask &= ~bits
        if (bits & CHANNEL_BITS.ticker) this.removeTickerConn(c)
        this.ack(c, msg.request_id, 'ok', undefined, { channels: channelList(c.channels) })
        return
      }
      case 'refresh_data': {
        const room = c.room!
        const now = this.o.now()
        let refreshed = false
        if (now - room.lastRefreshAt >= this.o.refreshMinMs) {
          room.lastRefreshAt = now
          refreshed = true
          this.o.bus.publish(CONTROL_TOPIC, { kind: 'refresh', key: room.userId })
        }
        this.ack(c, msg.request_id, 'ok', undefined, { upstreamRefresh: refreshed })
        this.sendSnapshots(c, c.channels)
        this.sendStatuses(c, false)
        return
      }
    }
  }

  // ------------------------------------------------------------------ authentication

  private authenticate(c: Conn, token: string, requestId: string): void {
    const first = c.state === State.PENDING
    if (first) c.state = State.AUTHENTICATING
    else c.reauthing = true
    this.o.verify(token)
      .then(
        (info) => this.onVerified(c, info, requestId),
        (err: unknown) => this.onVerifyFailed(c, err, requestId),
      )
      .catch((err: unknown) => {
        this.o.log.error({ err, conn: c.id }, 'authentication handling failed')
        this.close(c, CloseCode.INTERNAL, 'internal error')
      })
  }

  private onVerifyFailed(c: Conn, err: unknown, requestId: string): void {
    c.reauthing = false
    if (c.state >= State.CLOSING) return
    const reason = authFailureReason(err)
    if (reason === null) {
      this.o.log.error({ err, conn: c.id }, 'token verification failed unexpectedly')
      this.ack(c, requestId, 'error', 'internal error')
      return this.close(c, CloseCode.INTERNAL, 'internal error')
    }
    this.o.metrics.authFailures.inc({ reason: `ws_${reason}` })
    const message = reason === 'expired' ? 'token expired' : reason === 'revoked' ? 'token revoked' : 'invalid token'
    this.ack(c, requestId, 'error', message)
    this.close(c, closeCodeForAuthFailure(reason), message)
  }

  private onVerified(c: Conn, info: VerifiedToken, requestId: string | undefined): void {
    c.reauthing = false
    if (c.state >= State.CLOSING) return
    const now = this.o.now()
    if (info.exp * 1000 <= now) {
      this.o.metrics.authFailures.inc({ reason: 'ws_expired' })
      if (requestId) this.ack(c, requestId, 'error', 'token expired')
      return this.close(c, CloseCode.TOKEN_EXPIRED, 'token expired')
    }
    if (c.state === State.OPEN) {
      // in-band refresh: same user only
      if (info.userId !== c.userId) {
        this.o.metrics.authFailures.inc({ reason: 'ws_other_user' })
        if (requestId) this.ack(c, requestId, 'error', 'token belongs to another user')
        return this.close(c, CloseCode.FORBIDDEN, 'token belongs to another user')
      }
      c.tokenHash = info.tokenHash
      c.expMs = info.exp * 1000
      if (requestId) this.ack(c, requestId, 'ok', undefined, { expiresAt: c.expMs })
      return
    }
    const existing = this.rooms.get(info.userId)
    if (existing && existing.conns.size >= this.o.maxConnectionsPerUser) {
      this.o.metrics.connectionsRefused.inc({ reason: 'per_user_limit' })
      if (requestId) this.ack(c, requestId, 'error', 'too many connections for this user')
      return this.close(c, CloseCode.TRY_AGAIN_LATER, 'too many connections for this user')
    }
    if (this.pendingAuth.has(c) && this.conns.size - this.pendingAuth.size >= this.o.maxConnections) {
      this.o.metrics.connectionsRefused.inc({ reason: 'over_capacity' })
      if (requestId) this.ack(c, requestId, 'error', 'over capacity, retry later')
      return this.close(c, CloseCode.TRY_AGAIN_LATER, 'over capacity, retry later')
    }
    this.pendingAuth.delete(c)
    this.o.onAuthenticated(c.ws)
    c.userId = info.userId
    c.tokenHash = info.tokenHash
    c.expMs = info.exp * 1000
    c.state = State.OPEN
    // ack, connection, snapshots and statuses leave in one system call instead of five or six
    const raw = (c.ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket
    raw?.cork()
    if (requestId) this.ack(c, requestId, 'ok', undefined, { expiresAt: c.expMs })
    const room = this.ensureRoom(info.userId)
    room.conns.add(c)
    c.room = room
    if (c.channels & CHANNEL_BITS.ticker) this.addTickerConn(c)
    this.sendFrame(c, {
      type: 'connection',
      connectionId: c.id.toString(36),
      userId: info.userId,
      serverTime: now,
      heartbeatMs: this.o.heartbeatMs,
      protocol: PROTOCOL_VERSION,
      source: this.o.source,
    })
    this.sendSnapshots(c, c.channels)
    this.sendStatuses(c, true)
    raw?.uncork()
    const q = c.queue
    c.queue = null
    if (q) for (const m of q) if (c.state === State.OPEN) this.dispatch(c, m)
  }

  // ------------------------------------------------------------------ rooms (one per user with interest on this node)

  private ensureRoom(userId: string): Room {
    let room = this.rooms.get(userId)
    if (room) return room
    room = new Room(userId, this.o.bus.subscribe(accountTopic(userId), this.onAccountEvent))
    this.rooms.set(userId, room)
    // watch after subscribing: the producer may replay its state synchronously into the cache
    this.o.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: userId })
    return room
  }

  private dropRoom(room: Room): void {
    this.rooms.delete(room.userId)
    room.unsubscribe()
    this.cache.drop(room.topic)
    this.o.bus.publish(CONTROL_TOPIC, { kind: 'unwatch', key: room.userId })
  }

  private addTickerConn(c: Conn): void {
    this.tickerConns.add(c)
    this.watchTicker()
  }

  private watchTicker(): void {
    if (this.tickerWatched) return
    this.tickerWatched = true
    this.o.bus.publish(CONTROL_TOPIC, { kind: 'watch', key: 'ticker' })
  }

  private removeTickerConn(c: Conn): void {
    if (this.tickerConns.delete(c) && this.tickerConns.size === 0) this.tickerKeepUntil = Math.max(this.tickerKeepUntil, this.o.now() + this.o.graceMs)
  }

  // ------------------------------------------------------------------ upstream events → sockets

  private onAccountEvent(e: BusEvent, topic: string): void {
    if (!isUpstreamEvent(e)) return
    const room = this.rooms.get(topic.slice(8))
    if (!room) return
    const r = this.cache.apply(topic, e)
    if (!r) return
    if (r.kind === 'snapshot') this.broadcast(room.conns, r.entry)
    else if (r.kind === 'fresh' && e.kind === 'fresh') room.lastFreshSent = this.broadcastFresh(room.conns, topic, e.channels, room.lastFreshSent)
    else if (r.kind === 'status' && r.changed) this.broadcastStatus(room.conns, r.status, PENDING_ACCOUNT_STATUS)
  }

  private static readonly NO_CREDENTIALS: ServerFrame = {
    type: 'error',
    code: 'no_credentials',
    message: 'no exchange credentials stored: only the ticker is streamed (PUT /api/credentials to add them)',
  }

  private onTickerEvent(e: BusEvent): void {
    if (!isUpstreamEvent(e)) return
    const r = this.cache.apply(TICKER_TOPIC, e)
    if (!r) return
    if (r.kind === 'snapshot') this.broadcast(this.tickerConns, r.entry)
    else if (r.kind === 'fresh' && e.kind === 'fresh') this.tickerLastFresh = this.broadcastFresh(this.tickerConns, TICKER_TOPIC, e.channels, this.tickerLastFresh)
    else if (r.kind === 'status' && r.changed) this.broadcastStatus(this.tickerConns, r.status, PENDING_TICKER_STATUS)
  }

  /**
   * Unchanged data re-confirmed by a poll: tell the pages how recent it is (one small frame, at most every
   * STALE_AFTER_MS/4), so an unchanged balance is not shown as ageing. Returns the new last-sent time.
   */
  private broadcastFresh(conns: Set<Conn>, topic: string, channels: Channel[], lastSent: number): number {
    const now = this.o.now()
    if (conns.size === 0 || now - lastSent < this.o.staleAfterMs / 4) return lastSent
    const list: FreshFrame['channels'] = []
    for (const ch of channels) {
      const entry = this.cache.get(topic, ch)
      if (entry && now - entry.sourceTs <= this.o.staleAfterMs) list.push({ channel: ch, epoch: entry.epoch, seq: entry.seq, sourceTs: entry.sourceTs })
    }
    if (list.length === 0) return lastSent
    const frame: FreshFrame = { type: 'fresh', ts: now, channels: list }
    const buf = Buffer.from(JSON.stringify(frame))
    let n = 0
    for (const c of conns) {
      // a slow socket catches up with full snapshots anyway
      if (c.state !== State.OPEN || c.slowSince !== 0) continue
      c.ws.send(buf, SEND_OPTS)
      n++
    }
    if (n > 0) {
      this.o.metrics.framesSent.inc({ type: 'fresh' }, n)
      this.o.metrics.bytesSent.inc({ type: 'fresh' }, n * buf.length)
    }
    return now
  }

  /** serialize once, write the same Buffer to every subscriber that keeps up */
  private broadcast(conns: Set<Conn>, entry: CachedSnapshot): void {
    if (conns.size === 0) return
    const now = this.o.now()
    if (now - entry.sourceTs > this.o.staleAfterMs) {
      this.o.metrics.staleWithheld.inc({ channel: entry.channel })
      return
    }
    const t0 = process.hrtime.bigint()
    const buf = Buffer.from(dataUpdateFrame(entry, now, this.o.source))
    const bit = CHANNEL_BITS[entry.channel]
    const cap = this.o.maxBufferedBytes
    let n = 0
    for (const c of conns) {
      if (c.state !== State.OPEN || !(c.channels & bit)) continue
      if (c.slowSince !== 0) {
        c.pendingMask |= bit
        continue
      }
      if (c.ws.bufferedAmount > cap) {
        this.collapse(c, now, bit)
        continue
      }
      c.ws.send(buf, SEND_OPTS)
      n++
    }
    if (n > 0) {
      this.m.dataFrames.inc(n)
      this.m.dataBytes.inc(n * buf.length)
    }
    this.o.metrics.fanoutDuration.observe(Number(process.hrtime.bigint() - t0) / 1e9)
  }

  private broadcastStatus(conns: Set<Conn>, s: StatusEvent, pendingBit: number): void {
    if (conns.size === 0) return
    const frame = s.hasCredentials === false ? Hub.NO_CREDENTIALS : statusFrame(s)
    const buf = Buffer.from(JSON.stringify(frame))
    let n = 0
    for (const c of conns) {
      if (c.state !== State.OPEN) continue
      if (c.slowSince !== 0) {
        c.pendingMask |= pendingBit
        continue
      }
      c.ws.send(buf, SEND_OPTS)
      n++
    }
    if (n > 0) {
      this.o.metrics.framesSent.inc({ type: frame.type }, n)
      this.o.metrics.bytesSent.inc({ type: frame.type }, n * buf.length)
    }
  }

  private collapse(c: Conn, now: number, bits: number): void {
    c.slowSince = now
    c.pendingMask |= bits
    this.slow.add(c)
    this.o.metrics.slowConsumerCollapsed.inc()
  }

  /** the latest cached snapshot of each channel in `bits`, never a stale one */
  private sendSnapshots(c: Conn, bits: number): void {
    if (!c.userId) return
    const now = this.o.now()
    for (let i = 0; i < CHANNELS.length; i++) {
      const bit = 1 << i
      if (!(bits & bit)) continue
      const ch = CHANNEL_BY_INDEX[i]!
      const entry = this.cache.get(ch === 'ticker' ? TICKER_TOPIC : accountTopic(c.userId), ch)
      if (!entry) {
        this.o.metrics.cacheMisses.inc({ cache: 'snapshot' })
        continue
      }
      this.o.metrics.cacheHits.inc({ cache: 'snapshot' })
      if (now - entry.sourceTs > this.o.staleAfterMs) {
        this.o.metrics.staleWithheld.inc({ channel: ch })
        continue
      }
      if (c.slowSince !== 0 || c.ws.bufferedAmount > this.o.maxBufferedBytes) {
        if (c.slowSince === 0) this.collapse(c, now, bit)
        else c.pendingMask |= bit
        continue
      }
      const frame = dataUpdateFrame(entry, now, this.o.source)
      c.ws.send(frame, SEND_OPTS)
      this.m.dataFrames.inc(1)
      this.m.dataBytes.inc(Buffer.byteLength(frame))
    }
  }

  /** on connect: every status that is not plainly ok, and the no-credentials notice */
  private sendStatuses(c: Conn, onConnect: boolean): void {
    if (!c.userId) return
    const acc = this.cache.status(accountTopic(c.userId))
    if (acc && acc.hasCredentials === false) {
      if (onConnect) this.sendFrame(c, Hub.NO_CREDENTIALS)
    } else if (acc && (acc.upstream !== 'ok' || !onConnect)) {
      this.sendFrame(c, statusFrame(acc))
    }
    const tick = this.cache.status(TICKER_TOPIC)
    if (tick && (c.channels & CHANNEL_BITS.ticker) && (tick.upstream !== 'ok' || !onConnect)) this.sendFrame(c, statusFrame(tick))
  }

  // ------------------------------------------------------------------ per-socket frames

  private sendFrame(c: Conn, frame: ServerFrame): void {
    if (c.state >= State.CLOSING) return
    const ws = c.ws
    if (ws.readyState !== 1) return
    // control frames are tiny, but a socket that lets them pile up far past the cap is not reading at all
    if (ws.bufferedAmount > this.o.maxBufferedBytes * 2) return this.slowConsumer(c)
    const text = JSON.stringify(frame)
    ws.send(text, SEND_OPTS)
    this.o.metrics.framesSent.inc({ type: frame.type })
    this.o.metrics.bytesSent.inc({ type: frame.type }, Buffer.byteLength(text))
  }

  private ack(c: Conn, requestId: string, status: 'ok' | 'error', message?: string, data?: unknown): void {
    const frame: ServerFrame = { type: 'ack', request_id: requestId, status }
    if (message !== undefined) frame.message = message
    if (data !== undefined) frame.data = data
    this.sendFrame(c, frame)
  }

  private sendError(c: Conn, code: string, message: string, requestId?: string): void {
    const frame: ServerFrame = { type: 'error', code, message }
    if (requestId !== undefined) frame.request_id = requestId
    this.sendFrame(c, frame)
  }

  private slowConsumer(c: Conn): void {
    this.o.metrics.slowConsumerDrops.inc()
    this.close(c, CloseCode.SLOW_CONSUMER, 'slow consumer')
  }

  // ------------------------------------------------------------------ closing

  close(c: Conn, code: number, reason: string): void {
    if (c.state >= State.CLOSING) return
    this.detach(c)
    c.state = State.CLOSING
    c.closeCode = code
    c.deadline = this.o.now() + this.o.closeGraceMs
    this.closing.add(c)
    try {
      c.ws.close(code, reason)
    } catch {
      c.ws.terminate()
    }
  }

  private detach(c: Conn): void {
    this.pendingAuth.delete(c)
    this.slow.delete(c)
    c.queue = null
    if (this.tickerConns.delete(c) && this.tickerConns.size === 0) this.tickerKeepUntil = Math.max(this.tickerKeepUntil, this.o.now() + this.o.graceMs)
    const room = c.room
    if (room) {
      c.room = null
      room.conns.delete(c)
      if (room.conns.size === 0) room.keepUntil = Math.max(room.keepUntil, this.o.now() + this.o.graceMs)
    }
  }

  private onClosed(c: Conn, code: number): void {
    if (c.state === State.CLOSED) return
    this.detach(c)
    this.closing.delete(c)
    this.conns.delete(c)
    c.state = State.CLOSED
    this.o.metrics.connectionsOpen.dec()
    this.o.metrics.connectionsClosed.inc({ code: closeCodeLabel(c.closeCode || code) })
  }

  /** logout: sockets authenticated with this token close with 4501 (do not reconnect with it) */
  revokeToken(userId: string, tokenHash: string): number {
    const room = this.rooms.get(userId)
    if (!room) return 0
    let n = 0
    for (const c of [...room.conns]) {
      if (c.tokenHash !== tokenHash) continue
      this.close(c, CloseCode.INVALID_TOKEN, 'token revoked')
      n++
    }
    return n
  }

  /**
   * The user was deleted, or their exchange credentials were: every socket closes with 4503 and this node
   * forgets the account's cached snapshots at once (no grace), so nothing of it can be served again.
   */
  forbidUser(userId: string, reason: string): number {
    let n = 0
    for (const c of this.conns) {
      if (c.userId !== userId || c.state >= State.CLOSING) continue
      this.close(c, CloseCode.FORBIDDEN, reason)
      n++
    }
    const room = this.rooms.get(userId)
    if (room) this.dropRoom(room)
    return n
  }

  // ------------------------------------------------------------------ timers

  private sweep(): void {
    try {
      this.sweepOnce()
    } catch (err) {
      this.o.log.error({ err }, 'hub sweep failed')
    }
  }

  private sweepOnce(): void {
    const now = this.o.now()
    for (const c of this.pendingAuth) {
      if (now < c.deadline) continue
      this.o.metrics.authFailures.inc({ reason: 'ws_timeout' })
      this.close(c, CloseCode.AUTH_TIMEOUT, 'authentication timeout')
    }
    for (const c of this.slow) this.checkSlow(c, now)
    for (const c of this.closing) if (now >= c.deadline) c.ws.terminate()
    if (now < this.nextSlowSweep) return
    this.nextSlowSweep = now + 1000
    for (const c of this.conns) {
      if (c.state === State.OPEN && c.expMs <= now) this.close(c, CloseCode.TOKEN_EXPIRED, 'token expired')
    }
    for (const room of this.rooms.values()) {
      if (room.conns.size === 0 && now >= room.keepUntil) this.dropRoom(room)
    }
    if (this.tickerWatched && this.tickerConns.size === 0 && now >= this.tickerKeepUntil) {
      this.tickerWatched = false
      this.cache.drop(TICKER_TOPIC)
      this.o.bus.publish(CONTROL_TOPIC, { kind: 'unwatch', key: 'ticker' })
    }
  }

  private checkSlow(c: Conn, now: number): void {
    const buffered = c.ws.bufferedAmount
    if (buffered <= this.o.maxBufferedBytes / 2) {
      // drained: catch up with the latest snapshot of each owed channel, then back to live frames
      const owed = c.pendingMask
      c.slowSince = 0
      c.pendingMask = 0
      this.slow.delete(c)
      this.sendSnapshots(c, owed & ALL_CHANNELS)
      if (owed & PENDING_ACCOUNT_STATUS && c.userId) {
        const s = this.cache.status(accountTopic(c.userId))
        if (s) this.sendFrame(c, s.hasCredentials === false ? Hub.NO_CREDENTIALS : statusFrame(s))
      }
      if (owed & PENDING_TICKER_STATUS) {
        const s = this.cache.status(TICKER_TOPIC)
        if (s) this.sendFrame(c, statusFrame(s))
      }
      return
    }
    if (buffered > this.o.maxBufferedBytes && now - c.slowSince >= this.o.slowConsumerGraceMs) this.slowConsumer(c)
  }

  private heartbeat(): void {
    try {
      this.heartbeatOnce()
    } catch (err) {
      this.o.log.error({ err }, 'hub heartbeat failed')
    }
  }

  private heartbeatOnce(): void {
    for (const c of this.conns) {
      if (c.state >= State.CLOSING) continue
      if (!c.alive) {
        // no pong (nor any frame) for a whole heartbeat period: the peer is gone
        this.detach(c)
        c.state = State.CLOSING
        c.closeCode = 1006
        c.ws.terminate()
        continue
      }
      c.alive = false
      try {
        c.ws.ping()
      } catch {
        /* socket already closing */
      }
    }
  }

  /** shutdown: refuse new sockets, close the open ones with 1001 spread over `windowMs`, terminate stragglers */
  async drain(windowMs: number): Promise<void> {
    this.draining = true
    const list = [...this.conns].filter((c) => c.state < State.CLOSING)
    if (list.length > 0) {
      const slices = Math.max(1, Math.min(list.length, Math.ceil(windowMs / 50)))
      const per = Math.ceil(list.length / slices)
      const step = windowMs / slices
      for (let i = 0; i < slices; i++) {
        for (const c of list.slice(i * per, (i + 1) * per)) this.close(c, CloseCode.GOING_AWAY, 'server shutting down')
        if (i < slices - 1) await sleep(step)
      }
    }
    const deadline = Date.now() + Math.min(this.o.closeGraceMs, 1000)
    while (this.conns.size > 0 && Date.now() < deadline) await sleep(20)
    for (const c of this.conns) c.ws.terminate()
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer)
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer)
    this.sweepTimer = this.heartbeatTimer = null
    this.unsubscribeTicker?.()
    this.unsubscribeTicker = null
    for (const c of this.conns) c.ws.terminate()
    for (const room of [...this.rooms.values()]) this.dropRoom(room)
  }

  // ------------------------------------------------------------------ HTTP fallback and introspection

  /**
   * /api/dashboard: hold the user's account and the ticker watched for a grace period, and wait a little
   * for a cold cache (the first poll); never calls the exchange itself.
   */
  async touch(userId: string): Promise<void> {
    const now = this.o.now()
    const room = this.ensureRoom(userId)
    room.keepUntil = Math.max(room.keepUntil, now + this.o.graceMs)
    this.tickerKeepUntil = Math.max(this.tickerKeepUntil, now + this.o.graceMs)
    this.watchTicker()
    const waits: Promise<void>[] = []
    if (!this.cache.has(room.topic)) waits.push(this.cache.whenReady(room.topic, this.o.coldWaitMs))
    if (!this.cache.get(TICKER_TOPIC, 'ticker')) waits.push(this.cache.whenReady(TICKER_TOPIC, this.o.coldWaitMs))
    if (waits.length) await Promise.all(waits)
  }

  /** worst state of the shared ticker feed (the exchange as a whole), for /health/ready */
  upstreamState(): UpstreamState | 'idle' {
    const s = this.cache.status(TICKER_TOPIC)
    return s ? s.upstream : 'idle'
  }

  stats(): HubStats {
    let authenticated = 0
    let bufferedBytes = 0
    let maxBufferedBytes = 0
    for (const c of this.conns) {
      if (c.state === State.OPEN) authenticated++
      const b = c.ws.bufferedAmount
      bufferedBytes += b
      if (b > maxBufferedBytes) maxBufferedBytes = b
    }
    return {
      connections: this.conns.size,
      authenticated,
      pendingAuth: this.pendingAuth.size,
      slow: this.slow.size,
      closing: this.closing.size,
      rooms: this.rooms.size,
      tickerSubscribers: this.tickerConns.size,
      bufferedBytes,
      maxBufferedBytes,
    }
  }

  get staleAfterMs(): number {
    return this.o.staleAfterMs
  }

  get source(): Source {
    return this.o.source
  }
}

export function statusFrame(s: StatusEvent): ServerFrame {
  return { type: 'status', upstream: s.upstream, lastSuccessTs: s.lastSuccessTs, reason: s.reason, scope: s.scope }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref())
}

