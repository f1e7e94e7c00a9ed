/**
 * The one realtime client of the page: one WebSocket per tab, with the HTTP fallback, in-band token
 * refresh, reconnect with full-jitter backoff and resync on the events that mean "the world may have
 * moved on" (reconnect, tab focus, network back, wake from sleep).
 *
 * Framework-free: a small class with getState()/subscribe(); React reads it through lib/realtime-react.ts.
 */
import type {
  Channel,
  ChannelMeta,
  ClientMessage,
  DashboardResponse,
  DataUpdateFrame,
  FreshFrame,
  ServerFrame,
  SnapshotByChannel,
  Source,
  StatusFrame,
  UpstreamState,
} from '../../../backend/schemas/ws-protocol.ts'
import {
  BACKOFF_BASE_MS,
  BACKOFF_CAP_MS,
  DEFAULT_STALE_AFTER_MS,
  FALLBACK_POLL_MS,
  MIN_FALLBACK_POLL_MS,
  WAKE_GAP_MS,
  WS_AUTH_TIMEOUT_MS,
  WS_PING_EVERY_MS,
  WS_PONG_TIMEOUT_MS,
  WS_SILENT_AFTER_MS,
} from '../config/constants.ts'
// the channel table itself (a dependency-free module): the page knows every channel the gateway has
import { CHANNELS, scopeOf, staleLimitOf } from '../../../backend/schemas/channels.ts'
import type { CrossSnapshot, HistorySnapshot } from '../features/dashboard/account-data/types.ts'
import {
  backoffDelay,
  fallbackPollMs,
  isNewer,
  isSameVersionFresher,
  isTerminalCloseCode,
  isTokenExpiredCode,
  judgeFrame,
} from './frame-policy.ts'

/** the channels this page shows: every channel of the table */
export type PageChannel = Channel
export type PageSnapshots = SnapshotByChannel & { cross: CrossSnapshot; history: HistorySnapshot }

/** what the connection chip says */
export type Transport = 'connecting' | 'live' | 'silent' | 'polling' | 'reconnecting' | 'offline' | 'stopped'

export interface ChannelView<C extends PageChannel = PageChannel> {
  data: PageSnapshots[C]
  epoch: number
  seq: number
  /** when the exchange data was true (server clock, ms) */
  sourceTs: number
  /** when this page received it (client clock, ms) */
  receivedAt: number
  via: 'ws' | 'http'
}

export interface UpstreamView {
  state: UpstreamState
  reason: string | null
  lastSuccessTs: number | null
}

export interface RealtimeState {
  transport: Transport
  /** client ms of the next HTTP fallback poll, while polling */
  nextPollAt: number | null
  /** the wait before that poll, ms (the chip's countdown never shows more) */
  pollWaitMs: number
  /** client ms since when the open socket has not answered (no frame, unanswered ping); null when it talks */
  silentSince: number | null
  /** client ms of the next reconnect attempt, while the socket is down */
  nextReconnectAt: number | null
  lastPollOk: boolean | null
  channels: { [C in PageChannel]?: ChannelView<C> }
  /** upstream health per affected part ('account' polling, 'ticker' feed, or 'all' from the HTTP fallback) */
  upstream: Record<string, UpstreamView>
  source: Source | null
  hasCredentials: boolean | null
  /** server clock minus client clock, ms */
  serverOffsetMs: number
  staleAfterMs: number
  rejectedFrames: { too_old: number; not_newer: number }
}

export type DashboardFetchResult =
  { kind: 'ok'; body: DashboardResponse } | { kind: 'error'; network: boolean; retryAfterMs?: number | undefined }

export interface RealtimeOptions {
  /** absolute ws:// or wss:// URL of /ws */
  url: string
  getToken: () => string | null
  /** gets a fresh access token (used after close code 4001); null when the session is gone */
  refreshToken: () => Promise<string | null>
  /** GET /api/dashboard (from the gateway's cache). No If-None-Match: its ETag covers (epoch, seq, stale) but
   *  not sourceTs, and the page needs the exact sourceTs of unchanged data to say honestly how old it is */
  fetchDashboard: () => Promise<DashboardFetchResult>
  /** the server closed with 4500–4999: do not reconnect, go back to login with the reason */
  onTerminal: (code: number, reason: string) => void
  staleAfterMs?: number
  WebSocketImpl?: typeof WebSocket
  now?: () => number
  random?: () => number
  isOnline?: () => boolean
  /** window-like target for focus/online/offline/visibilitychange; omitted in tests */
  events?: { win: Window; doc: Document } | null
  pollEveryMs?: number
}

type Listener = (state: RealtimeState) => void

let requestCounter = 0
const nextRequestId = (prefix: string): string => `${prefix}-${Date.now().toString(36)}-${(++requestCounter).toString(36)}`

export class RealtimeClient {
  private state: RealtimeState
  private readonly listeners = new Set<Listener>()
  private readonly opts: Required<Omit<RealtimeOptions, 'events' | 'staleAfterMs'>> & Pick<RealtimeOptions, 'events'>

  private ws: WebSocket | null = null
  private authed = false
  private everConnected = false
  private stopped = true
  private attempt = 0
  private lastFreshnessCheck = 0
  private pollInFlight = false
  private pollFailedNetwork = false
  private polling = false
  private lastFrameAt = 0
  private pingSentAt = 0
  private lastTick = 0
  private lastResyncAt = 0

  private reconnectTimer: ReturnType<typeof setTimeout> | null = null
  private pollTimer: ReturnType<typeof setTimeout> | null = null
  private authTimer: ReturnType<typeof setTimeout> | null = null
  private tickTimer: ReturnType<typeof setInterval> | null = null
  private detachEvents: (() => void) | null = null

  constructor(options: RealtimeOptions) {
    this.opts = {
      WebSocketImpl: globalThis.WebSocket,
      now: () => Date.now(),
      random: Math.random,
      isOnline: () => (typeof navigator === 'undefined' ? true : navigator.onLine !== false),
      pollEveryMs: FALLBACK_POLL_MS,
      ...options,
    }
    this.state = {
      transport: 'stopped',
      nextPollAt: null,
      pollWaitMs: 0,
      silentSince: null,
      nextReconnectAt: null,
      lastPollOk: null,
      channels: {},
      upstream: {},
      source: null,
      hasCredentials: null,
      serverOffsetMs: 0,
      staleAfterMs: options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS,
      rejectedFrames: { too_old: 0, not_newer: 0 },
    }
  }

  // ---------- public API ----------

  getState = (): RealtimeState => this.state

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** server-clock "now" as this page best knows it */
  serverNow(): number {
    return this.opts.now() + this.state.serverOffsetMs
  }

  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.everConnected = false
    this.attempt = 0
    this.lastTick = this.opts.now()
    this.tickTimer = setInterval(() => this.onTick(), 1000)
    this.attachEvents()
    this.update({ transport: 'connecting' })
    this.connect()
    // one HTTP read at once: it tells whether credentials exist and shows cached values before the socket is up
    void this.pollOnce()
  }

  stop(): void {
    if (this.stopped) return
    this.stopped = true
    this.clearTimers()
    if (this.tickTimer) clearInterval(this.tickTimer)
    this.tickTimer = null
    this.detachEvents?.()
    this.detachEvents = null
    this.dropSocket(1000, 'client stopped')
    this.polling = false
    this.update({ transport: 'stopped', nextPollAt: null, nextReconnectAt: null })
  }

  /** the session got a new access token: hand it to the open socket in-band (CONTRACT §5) */
  setToken(token: string): void {
    if (this.ws && this.ws.readyState === 1) this.send({ type: 'auth', request_id: nextRequestId('auth'), token })
  }

  /** the world may have moved on: ask for fresh snapshots now, or reconnect and poll now if the socket is down */
  resync(reason: string): void {
    if (this.stopped) return
    const now = this.opts.now()
    if (now - this.lastResyncAt < 1000) return
    this.lastResyncAt = now
    if (this.authed && this.ws) {
      this.send({ type: 'refresh_data', request_id: nextRequestId(`resync-${reason}`) })
      this.sendPing()
      return
    }
    this.attempt = 0
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    if (!this.ws) this.connect()
    void this.pollOnce()
  }

  /** change the channels' staleness threshold (the server's STALE_AFTER_MS) */
  setStaleAfterMs(ms: number): void {
    if (ms > 0 && ms !== this.state.staleAfterMs) this.update({ staleAfterMs: ms })
  }

  // ---------- socket ----------

  private connect(): void {
    if (this.stopped || this.ws) return
    this.reconnectTimer = null
    const token = this.opts.getToken()
    if (!token) {
      this.scheduleReconnect()
      return
    }
    let ws: WebSocket
    try {
      ws = new this.opts.WebSocketImpl(this.opts.url)
    } catch {
      this.scheduleReconnect()
      return
    }
    this.ws = ws
    this.authed = false
    this.update({ nextReconnectAt: null })
    ws.onopen = () => {
      if (this.ws !== ws) return
      this.lastFrameAt = this.opts.now()
      this.send({ type: 'auth', request_id: nextRequestId('auth'), token: this.opts.getToken() ?? token })
      this.authTimer = setTimeout(() => {
        if (this.ws === ws && !this.authed) this.onSocketDead('auth timeout')
      }, WS_AUTH_TIMEOUT_MS)
    }
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws !== ws) return
      let frame: ServerFrame
      try {
        frame = JSON.parse(typeof ev.data === 'string' ? ev.data : '') as ServerFrame
      } catch {
        return
      }
      this.onFrame(frame)
    }
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return
      this.onClosed(ev.code, ev.reason)
    }
    ws.onerror = () => {
      /* a close event follows */
    }
  }

  private send(msg: ClientMessage): void {
    try {
      this.ws?.send(JSON.stringify(msg))
    } catch {
      /* the close handler deals with it */
    }
  }

  private sendPing(): void {
    this.pingSentAt = this.opts.now()
    this.send({ type: 'ping', request_id: nextRequestId('ping') })
  }

  /** forget the socket now without waiting for a close handshake that may never come */
  private dropSocket(code: number, reason: string): void {
    const ws = this.ws
    this.ws = null
    this.authed = false
    if (this.authTimer) clearTimeout(this.authTimer)
    this.authTimer = null
    if (!ws) return
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null
    try {
      ws.close(code, reason)
    } catch {
      /* already closed */
    }
  }

  private onSocketDead(reason: string): void {
    this.dropSocket(4000, reason)
    this.onClosed(1006, reason)
  }

  private onClosed(code: number, reason: string): void {
    this.ws = null
    this.authed = false
    this.update({ silentSince: null })
    if (this.authTimer) clearTimeout(this.authTimer)
    this.authTimer = null
    if (this.stopped) return
    if (isTerminalCloseCode(code)) {
      this.stop()
      this.opts.onTerminal(code, reason)
      return
    }
    this.startPolling()
    if (isTokenExpiredCode(code)) {
      this.attempt++
      this.update({ transport: this.deriveTransport() })
      void this.opts.refreshToken().then((token) => {
        if (this.stopped) return
        if (token) this.connect()
        else this.scheduleReconnect()
      })
      return
    }
    this.scheduleReconnect()
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return
    const delay = backoffDelay(this.attempt++, this.opts.random, BACKOFF_BASE_MS, BACKOFF_CAP_MS)
    this.reconnectTimer = setTimeout(() => this.connect(), delay)
    this.update({ nextReconnectAt: this.opts.now() + delay, transport: this.deriveTransport() })
  }

  // ---------- frames ----------

  private onFrame(frame: ServerFrame): void {
    const now = this.opts.now()
    this.lastFrameAt = now
    if (this.state.silentSince !== null) {
      // the socket talks again: back to LIVE, the fallback polling started for the silence stops
      this.update({ silentSince: null })
      if (this.authed && frame.type !== 'connection') this.stopPolling()
      this.update({ transport: this.deriveTransport() })
    }
    switch (frame.type) {
      case 'connection': {
        const reconnect = this.everConnected
        this.authed = true
        this.everConnected = true
        this.attempt = 0
        if (this.authTimer) clearTimeout(this.authTimer)
        this.authTimer = null
        this.pingSentAt = 0
        this.stopPolling()
        this.update({
          serverOffsetMs: frame.serverTime - now,
          source: frame.source,
          nextReconnectAt: null,
          transport: 'live',
        })
        // the server pushes its cached snapshots after auth; on a reconnect also ask for a refresh
        if (reconnect) this.send({ type: 'refresh_data', request_id: nextRequestId('reconnect') })
        return
      }
      case 'data_update':
        this.onData(frame)
        return
      case 'fresh':
        this.onFresh(frame)
        return
      case 'status':
        this.onStatus(frame)
        return
      case 'pong':
        this.pingSentAt = 0
        this.update({ serverOffsetMs: frame.serverTime - now })
        return
      case 'ack':
      case 'error':
        return
    }
  }

  /** the gateway re-confirmed unchanged data: only the age of exactly the version shown moves */
  private onFresh(frame: FreshFrame): void {
    let channels: RealtimeState['channels'] | null = null
    for (const f of frame.channels) {
      if (!CHANNELS.includes(f.channel)) continue
      const shown = this.state.channels[f.channel]
      if (!shown || !isSameVersionFresher(shown, f)) continue
      channels ??= { ...this.state.channels }
      ;(channels as Record<Channel, unknown>)[f.channel] = { ...shown, sourceTs: f.sourceTs, receivedAt: this.opts.now() }
    }
    if (channels) this.update({ channels })
  }

  private onData(frame: DataUpdateFrame): void {
    if (!CHANNELS.includes(frame.channel)) return
    const shown = this.state.channels[frame.channel]
    const verdict = judgeFrame(shown, frame, this.serverNow(), staleLimitOf(frame.channel, this.state.staleAfterMs))
    if (verdict === 'too_old' || verdict === 'not_newer') {
      this.update({ rejectedFrames: { ...this.state.rejectedFrames, [verdict]: this.state.rejectedFrames[verdict] + 1 } })
      return
    }
    if (verdict === 'refresh' && shown) {
      this.update({
        channels: { ...this.state.channels, [frame.channel]: { ...shown, sourceTs: frame.sourceTs, receivedAt: this.opts.now() } },
      })
      return
    }
    const view = {
      data: frame.data,
      epoch: frame.epoch,
      seq: frame.seq,
      sourceTs: frame.sourceTs,
      receivedAt: this.opts.now(),
      via: 'ws' as const,
    }
    const upstream = { ...this.state.upstream }
    // fresh data for a part proves that part is healthy again
    const scope = scopeOf(frame.channel) === 'market' ? 'ticker' : 'account'
    if (upstream[scope]?.state !== 'ok') delete upstream[scope]
    delete upstream.all
    this.update({
      channels: { ...this.state.channels, [frame.channel]: view },
      source: frame.source,
      upstream,
      hasCredentials: scope === 'ticker' ? this.state.hasCredentials : true,
    })
  }

  private onStatus(frame: StatusFrame): void {
    const scope = frame.scope ?? 'all'
    const upstream = { ...this.state.upstream }
    if (frame.upstream === 'ok') {
      delete upstream[scope]
      if (scope === 'all') for (const k of Object.keys(upstream)) delete upstream[k]
    } else {
      upstream[scope] = { state: frame.upstream, reason: frame.reason || null, lastSuccessTs: frame.lastSuccessTs }
    }
    this.update({ upstream })
  }

  // ---------- HTTP fallback ----------

  private startPolling(): void {
    if (this.polling) return
    this.polling = true
    void this.pollOnce()
  }

  private stopPolling(): void {
    this.polling = false
    if (this.pollTimer) clearTimeout(this.pollTimer)
    this.pollTimer = null
    this.update({ nextPollAt: null, pollWaitMs: 0 })
  }

  /** the fallback's period: at most half the stale limit, so it never lets fresh-enough data look stale */
  pollPeriodMs(): number {
    return fallbackPollMs(this.opts.pollEveryMs, this.state.staleAfterMs, Math.min(MIN_FALLBACK_POLL_MS, this.opts.pollEveryMs))
  }

  private async pollOnce(): Promise<void> {
    if (this.stopped || this.pollInFlight) return
    if (this.pollTimer) clearTimeout(this.pollTimer)
    this.pollTimer = null
    this.pollInFlight = true
    let result: DashboardFetchResult
    try {
      result = await this.opts.fetchDashboard()
    } catch {
      result = { kind: 'error', network: true }
    } finally {
      this.pollInFlight = false
    }
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- stop() may have run during the fetch
    if (this.stopped) return
    let lastPollOk = true
    const period = this.pollPeriodMs()
    let wait = period
    if (result.kind === 'ok') {
      this.applyDashboard(result.body)
    } else {
      lastPollOk = false
      if (result.retryAfterMs) wait = Math.max(wait, result.retryAfterMs)
      this.pollFailedNetwork = result.network
    }
    if (lastPollOk) this.pollFailedNetwork = false
    if (this.polling && (!this.authed || this.state.silentSince !== null)) {
      this.pollTimer = setTimeout(() => void this.pollOnce(), wait)
      this.update({ lastPollOk, nextPollAt: this.opts.now() + wait, pollWaitMs: wait })
    } else {
      this.update({ lastPollOk })
    }
    this.update({ transport: this.deriveTransport() })
  }

  private applyDashboard(body: DashboardResponse): void {
    const now = this.opts.now()
    const channels = { ...this.state.channels } as Record<PageChannel, ChannelView | undefined>
    // the body carries cross/history where the gateway serves them (CONTRACT §4 /api/dashboard)
    const wide = body as unknown as Record<PageChannel, unknown> & { meta: { channels: Partial<Record<PageChannel, ChannelMeta>> } }
    for (const c of CHANNELS) {
      const data = wide[c]
      const meta: ChannelMeta | undefined = wide.meta.channels[c]
      if (!data || !meta) continue
      const shown = channels[c]
      // HTTP snapshots replace what is shown when newer, even if old: they are then shown as STALE, honestly
      if (isNewer(shown, meta)) {
        channels[c] = { data, epoch: meta.epoch, seq: meta.seq, sourceTs: meta.sourceTs, receivedAt: now, via: 'http' } as ChannelView
      } else if (shown && isSameVersionFresher(shown, meta)) {
        channels[c] = { ...shown, sourceTs: meta.sourceTs, receivedAt: now }
      }
    }
    const upstream: Record<string, UpstreamView> = {}
    if (body.meta.upstream !== 'ok') {
      upstream.all = { state: body.meta.upstream, reason: body.meta.reason, lastSuccessTs: body.meta.lastSuccessTs }
    }
    this.update({
      channels: channels as RealtimeState['channels'],
      serverOffsetMs: body.meta.serverTime - now,
      source: body.meta.source,
      hasCredentials: body.meta.hasCredentials,
      staleAfterMs: body.meta.staleAfterMs > 0 ? body.meta.staleAfterMs : this.state.staleAfterMs,
      // while the socket is live its status frames are the authority
      upstream: this.authed ? this.state.upstream : upstream,
    })
  }

  // ---------- housekeeping ----------

  /** 1-second housekeeping: wake-from-sleep detection and the application-level heartbeat */
  private onTick(): void {
    const now = this.opts.now()
    const gap = now - this.lastTick
    this.lastTick = now
    // a long gap between ticks of a visible page means the machine slept (hidden tabs are throttled: their
    // return is handled by visibilitychange instead)
    if (gap > WAKE_GAP_MS && this.opts.events?.doc.visibilityState !== 'hidden') {
      this.resync('wake')
      return
    }
    if (this.authed && this.ws) {
      // any frame proves the socket alive; a quiet one gets a ping. Unanswered for a few seconds, the open
      // socket is called silent (the chip leaves LIVE, HTTP polling starts); unanswered longer, it is dropped
      if (this.pingSentAt && this.lastFrameAt < this.pingSentAt) {
        if (now - this.pingSentAt > WS_PONG_TIMEOUT_MS) {
          this.onSocketDead('heartbeat timeout')
          return
        }
        if (now - this.pingSentAt > WS_SILENT_AFTER_MS && this.state.silentSince === null) {
          this.update({ silentSince: this.lastFrameAt })
          this.startPolling()
        }
      } else if (now - this.lastFrameAt > WS_PING_EVERY_MS) {
        this.sendPing()
      }
      this.checkFreshness(now)
    }
    const transport = this.deriveTransport()
    if (transport !== this.state.transport) this.update({ transport })
  }

  /**
   * The gateway pushes a channel only when its data changes; unchanged data (a steady balance) is kept
   * fresh in its cache without a frame. Before a shown value would look stale, read the cache over HTTP
   * (no exchange call) to learn its current sourceTs — at most once per half staleness window.
   */
  private checkFreshness(now: number): void {
    const half = Math.max(5_000, this.state.staleAfterMs / 2)
    if (now - this.lastFreshnessCheck < half || this.pollInFlight) return
    const serverNow = now + this.state.serverOffsetMs
    const ageing = Object.entries(this.state.channels).some(
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- optional keys: an entry may hold undefined
      ([ch, v]) => v && serverNow - v.sourceTs > staleLimitOf(ch as Channel, this.state.staleAfterMs) / 2,
    )
    if (!ageing) return
    this.lastFreshnessCheck = now
    void this.pollOnce()
  }

  private deriveTransport(): Transport {
    if (this.stopped) return 'stopped'
    if (this.authed) return this.state.silentSince !== null ? 'silent' : 'live'
    if (!this.opts.isOnline()) return 'offline'
    if (this.state.lastPollOk === true && this.polling) return 'polling'
    if (this.state.lastPollOk === false && this.pollFailedNetwork) return 'offline'
    if (!this.everConnected && this.attempt <= 1 && !this.polling) return 'connecting'
    return 'reconnecting'
  }

  private attachEvents(): void {
    const ev = this.opts.events
    if (!ev) return
    const { win, doc } = ev
    const onVisible = () => {
      if (doc.visibilityState === 'visible') this.resync('focus')
    }
    const onFocus = () => this.resync('focus')
    const onOnline = () => this.resync('online')
    const onOffline = () => this.update({ transport: this.deriveTransport() })
    doc.addEventListener('visibilitychange', onVisible)
    win.addEventListener('focus', onFocus)
    win.addEventListener('online', onOnline)
    win.addEventListener('offline', onOffline)
    this.detachEvents = () => {
      doc.removeEventListener('visibilitychange', onVisible)
      win.removeEventListener('focus', onFocus)
      win.removeEventListener('online', onOnline)
      win.removeEventListener('offline', onOffline)
    }
  }

  private clearTimers(): void {
    for (const t of [this.reconnectTimer, this.pollTimer, this.authTimer]) if (t) clearTimeout(t)
    this.reconnectTimer = this.pollTimer = this.authTimer = null
  }

  private update(patch: Partial<RealtimeState>): void {
    let changed = false
    for (const k of Object.keys(patch) as Array<keyof RealtimeState>) {
      if (this.state[k] !== patch[k]) {
        changed = true
        break
      }
    }
    if (!changed) return
    this.state = { ...this.state, ...patch }
    for (const l of this.listeners) l(this.state)
  }
}
