/**
 * The hub: every /ws socket from upgrade to close. It composes four parts, one file each:
 *
 * - hub-conn.ts    the connection state machine and authentication (admission, rate limits, parsing,
 *                  first auth and in-band refresh, closing);
 * - hub-rooms.ts   interest: one room per user, and the ticker as one more room; watch/unwatch with grace;
 * - hub-fanout.ts  fan-out (serialize once, one Buffer for every subscriber) and slow consumers, and every
 *                  frame written to a socket;
 * - hub-timers.ts  the sweeper, the heartbeat and the shutdown drain.
 *
 * This file wires them, dispatches the messages of OPEN sockets, routes bus events of a room to the
 * fan-out, and is the public face used by routes/ws.ts, the streaming plugin and /api/dashboard.
 */
import type { WebSocket } from 'ws'
import type { Metrics } from '../metrics.ts'
import { CloseCode, PROTOCOL_VERSION, type Channel, type ClientMessage, type Source, type UpstreamState } from '../schemas/ws-protocol.ts'
import { CONTROL_TOPIC, TICKER_TOPIC, isUpstreamEvent, type Bus, type BusEvent } from './bus.ts'
import { SnapshotCache } from './cache.ts'
import { Connections, State, type Conn, type VerifiedToken, type VerifyToken } from './hub-conn.ts'
import { Fanout, STATUS_BITS, buffered } from './hub-fanout.ts'
import { Rooms, type Room } from './hub-rooms.ts'
import { HubTimers } from './hub-timers.ts'
import { MARKET_CHANNEL_BITS } from '../schemas/channels.ts'
import { channelBits, channelList } from './protocol.ts'
import { silentLog, type Log } from './sources.ts'

export { authFailureReason, closeCodeForAuthFailure, type VerifiedToken, type VerifyToken } from './hub-conn.ts'
export { statusFrame } from './hub-fanout.ts'

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

export interface HubStats {
  connections: number
  authenticated: number
  pendingAuth: number
  slow: number
  closing: number
  rooms: number
  tickerSubscribers: number
  /** sum and max of the bytes owed to each socket (ws's buffer + its frame writer's), held for sockets that have not read them */
  bufferedBytes: number
  maxBufferedBytes: number
}

export class Hub {
  readonly cache: SnapshotCache
  private readonly o: Required<Omit<HubOptions, 'cache'>>
  private readonly conns: Connections
  private readonly fanout: Fanout
  private readonly rooms: Rooms
  private readonly timers: HubTimers
  private draining = false

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
    const o = this.o
    this.cache = opts.cache ?? new SnapshotCache()
    this.fanout = new Fanout({
      cache: this.cache,
      metrics: o.metrics,
      source: o.source,
      staleAfterMs: o.staleAfterMs,
      maxBufferedBytes: o.maxBufferedBytes,
      slowConsumerGraceMs: o.slowConsumerGraceMs,
      now: o.now,
      close: (c, code, reason) => this.conns.close(c, code, reason),
    })
    this.rooms = new Rooms(
      {
        bus: o.bus,
        cache: this.cache,
        graceMs: o.graceMs,
        now: o.now,
        accountStatusBit: STATUS_BITS.account,
        tickerStatusBit: STATUS_BITS.ticker,
      },
      (room, e) => this.onRoomEvent(room, e),
    )
    const fanout = this.fanout
    this.conns = new Connections(o, {
      admit: (c, info, requestId) => this.admit(c, info, requestId),
      opened: (c, now) => this.opened(c, now),
      dispatch: (c, msg) => this.dispatch(c, msg),
      detach: (c) => {
        fanout.slow.delete(c)
        this.rooms.leave(c)
      },
      sendError: (c, code, message, requestId) => fanout.sendError(c, code, message, requestId),
      ack: (c, requestId, status, message, data) => fanout.ack(c, requestId, status, message, data),
    })
    this.timers = new HubTimers(o, this.conns, this.fanout, this.rooms)
  }

  start(): void {
    if (this.timers.running) return
    this.rooms.start()
    this.timers.start()
  }

  // ------------------------------------------------------------------ admission

  /**
   * checked on the upgrade request, before upgrading: null = admit, else the refusal reason. MAX_CONNECTIONS
   * counts sockets past authentication; those still authenticating have their own budget (the upgrade gate).
   */
  refusal(): 'over_capacity' | 'shutting_down' | null {
    if (this.draining) return 'shutting_down'
    if (this.conns.all.size - this.conns.pendingAuth.size >= this.o.maxConnections) return 'over_capacity'
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
    const c = this.conns.register(socket)
    if (this.draining) {
      this.o.metrics.connectionsRefused.inc({ reason: 'shutting_down' })
      return this.conns.close(c, CloseCode.GOING_AWAY, 'server shutting down')
    }
    if (this.conns.all.size - this.conns.pendingAuth.size > this.o.maxConnections) {
      this.o.metrics.connectionsRefused.inc({ reason: 'over_capacity' })
      return this.conns.close(c, CloseCode.TRY_AGAIN_LATER, 'over capacity, retry later')
    }
    this.o.metrics.connectionsAccepted.inc()
    this.conns.begin(c, preAuth)
  }

  /** first authentication: the per-user limit */
  private admit(c: Conn, info: VerifiedToken, requestId: string | undefined): boolean {
    const existing = this.rooms.get(info.userId)
    if (existing && existing.conns.size >= this.o.maxConnectionsPerUser) {
      this.o.metrics.connectionsRefused.inc({ reason: 'per_user_limit' })
      if (requestId) this.fanout.ack(c, requestId, 'error', 'too many connections for this user')
      this.conns.close(c, CloseCode.TRY_AGAIN_LATER, 'too many connections for this user')
      return false
    }
    if (this.conns.pendingAuth.has(c) && this.conns.all.size - this.conns.pendingAuth.size >= this.o.maxConnections) {
      this.o.metrics.connectionsRefused.inc({ reason: 'over_capacity' })
      if (requestId) this.fanout.ack(c, requestId, 'error', 'over capacity, retry later')
      this.conns.close(c, CloseCode.TRY_AGAIN_LATER, 'over capacity, retry later')
      return false
    }
    this.o.onAuthenticated(c.ws)
    return true
  }

  /** the socket is OPEN (inside one corked write): join rooms, connection frame, snapshots, statuses */
  private opened(c: Conn, now: number): void {
    this.rooms.join(c, c.userId!)
    if (c.channels & MARKET_CHANNEL_BITS) this.rooms.addTicker(c)
    this.fanout.sendFrame(c, {
      type: 'connection',
      connectionId: c.id.toString(36),
      userId: c.userId!,
      serverTime: now,
      heartbeatMs: this.o.heartbeatMs,
      protocol: PROTOCOL_VERSION,
      source: this.o.source,
    })
    this.fanout.sendSnapshots(c, c.channels)
    this.fanout.sendStatuses(c, true)
  }

  // ------------------------------------------------------------------ messages of OPEN sockets

  private dispatch(c: Conn, msg: ClientMessage): void {
    const f = this.fanout
    switch (msg.type) {
      case 'ping':
        f.sendFrame(c, { type: 'pong', request_id: msg.request_id, serverTime: this.o.now() })
        return
      case 'auth':
        if (c.reauthing) return f.ack(c, msg.request_id, 'error', 'an auth is already in progress')
        return this.conns.authenticate(c, msg.token, msg.request_id)
      case 'subscribe': {
        const bits = channelBits(msg.channels)
        const added = bits & ~c.channels
        c.channels |= bits
        if (added & MARKET_CHANNEL_BITS) this.rooms.addTicker(c)
        f.ack(c, msg.request_id, 'ok', undefined, { channels: channelList(c.channels) })
        f.sendSnapshots(c, added)
        return
      }
      case 'unsubscribe': {
        const bits = channelBits(msg.channels)
        c.channels &= ~bits
        c.pendingMask &= ~bits
        if (!(c.channels & MARKET_CHANNEL_BITS)) this.rooms.removeTicker(c)
        f.ack(c, msg.request_id, 'ok', undefined, { channels: channelList(c.channels) })
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
        f.ack(c, msg.request_id, 'ok', undefined, { upstreamRefresh: refreshed })
        f.sendSnapshots(c, c.channels)
        f.sendStatuses(c, false)
        return
      }
    }
  }

  // ------------------------------------------------------------------ upstream events → sockets

  private onRoomEvent(room: Room, e: BusEvent): void {
    if (!isUpstreamEvent(e)) return
    const r = this.cache.apply(room.topic, e)
    if (!r) return
    if (r.kind === 'snapshot') this.fanout.broadcast(room.conns, r.entry)
    else if (r.kind === 'fresh' && e.kind === 'fresh')
      room.lastFreshSent = this.fanout.broadcastFresh(room.conns, room.topic, e.channels, room.lastFreshSent)
    else if (r.kind === 'status' && r.changed) this.fanout.broadcastStatus(room.conns, r.status, room.statusBit)
  }

  // ------------------------------------------------------------------ sessions

  /** logout: sockets authenticated with this token close with 4501 (do not reconnect with it) */
  revokeToken(userId: string, tokenHash: string): number {
    const room = this.rooms.get(userId)
    if (!room) return 0
    let n = 0
    for (const c of [...room.conns]) {
      if (c.tokenHash !== tokenHash) continue
      this.conns.close(c, CloseCode.INVALID_TOKEN, 'token revoked')
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
    for (const c of this.conns.all) {
      if (c.userId !== userId || c.state >= State.CLOSING) continue
      this.conns.close(c, CloseCode.FORBIDDEN, reason)
      n++
    }
    const room = this.rooms.get(userId)
    if (room) this.rooms.drop(room)
    return n
  }

  // ------------------------------------------------------------------ lifecycle

  /** shutdown: refuse new sockets, close the open ones with 1001 spread over `windowMs`, terminate stragglers */
  async drain(windowMs: number): Promise<void> {
    this.draining = true
    await this.timers.drain(windowMs)
  }

  async stop(): Promise<void> {
    this.timers.stop()
    for (const c of this.conns.all) c.ws.terminate()
    this.rooms.stop()
  }

  // ------------------------------------------------------------------ HTTP fallback and introspection

  /**
   * /api/dashboard: hold the user's account and the ticker watched for a grace period, and wait a little
   * for a cold cache (the first poll); never calls the exchange itself.
   */
  async touch(userId: string): Promise<void> {
    const room = this.rooms.touch(userId, this.o.now())
    const waits: Promise<void>[] = []
    if (!this.cache.has(room.topic)) waits.push(this.cache.whenReady(room.topic, this.o.coldWaitMs))
    if (!this.cache.get(TICKER_TOPIC, 'ticker')) waits.push(this.cache.whenReady(TICKER_TOPIC, this.o.coldWaitMs))
    if (waits.length) await Promise.all(waits)
  }

  /** sockets of this user on this node (how watched the account is) */
  watchers(userId: string): number {
    return this.rooms.get(userId)?.conns.size ?? 0
  }

  /** the topics this node's open sockets watch, with the channels they expect data on (the freshness watchdog) */
  watchedTopics(): Array<{ key: string; topic: string; channels: Channel[] }> {
    const out: Array<{ key: string; topic: string; channels: Channel[] }> = []
    for (const room of this.rooms.accountRooms()) {
      // a user without exchange credentials gets no account data: nothing to starve
      if (room.conns.size === 0 || this.cache.status(room.topic)?.hasCredentials === false) continue
      out.push({ key: room.userId, topic: room.topic, channels: ['account', 'positions'] })
    }
    if (this.rooms.ticker.conns.size > 0) out.push({ key: 'ticker', topic: TICKER_TOPIC, channels: ['ticker'] })
    return out
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
    for (const c of this.conns.all) {
      if (c.state === State.OPEN) authenticated++
      // the writer's count: ws's buffer plus what it holds (a write straight into the handle, its queue)
      const b = buffered(c)
      bufferedBytes += b
      if (b > maxBufferedBytes) maxBufferedBytes = b
    }
    return {
      connections: this.conns.all.size,
      authenticated,
      pendingAuth: this.conns.pendingAuth.size,
      slow: this.fanout.slow.size,
      closing: this.conns.closing.size,
      rooms: this.rooms.size,
      tickerSubscribers: this.rooms.ticker.conns.size,
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
