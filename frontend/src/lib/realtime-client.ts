/**
 * The one realtime client of the page: one WebSocket per tab, with the HTTP fallback, in-band token
 * refresh, reconnect with full-jitter backoff and resync on the events that mean "the world may have
 * moved on" (reconnect, tab focus, network back, wake from sleep).
 *
 * This module is the lifecycle that wires the parts together: the socket (realtime-socket.ts), the HTTP
 * fallback (fallback-poller.ts) and the pure state (realtime-store.ts); it owns the 1-second housekeeping
 * tick and the page events (visibility, focus, online/offline).
 *
 * Framework-free: a small class with getState()/subscribe(); React reads it through lib/realtime-react.ts.
 */
import type { ServerFrame } from '../../../backend/schemas/ws-protocol.ts'
import { DEFAULT_STALE_AFTER_MS, FALLBACK_POLL_MS, MIN_FALLBACK_POLL_MS, WAKE_GAP_MS } from '../config/constants.ts'
import { FallbackPoller, type DashboardFetchResult } from './fallback-poller.ts'
import { fallbackPollMs } from './frame-policy.ts'
import { RealtimeSocket } from './realtime-socket.ts'
import {
  RealtimeStore,
  deriveTransport,
  freshnessReadDue,
  onConnectionFrame,
  onDashboard,
  onDataFrame,
  onFreshFrame,
  onPongFrame,
  onStatusFrame,
  serverNow,
  type RealtimeState,
  type Transport,
} from './realtime-store.ts'

export type { DashboardFetchResult } from './fallback-poller.ts'
export type { ChannelView, PageChannel, PageSnapshots, RealtimeState, Transport, UpstreamView } from './realtime-store.ts'

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

export class RealtimeClient {
  private readonly opts: Required<Omit<RealtimeOptions, 'events' | 'staleAfterMs'>> & Pick<RealtimeOptions, 'events'>
  private readonly store: RealtimeStore
  private readonly socket: RealtimeSocket
  private readonly poller: FallbackPoller

  private stopped = true
  private lastFreshnessCheck = 0
  private lastTick = 0
  private lastResyncAt = 0
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
    this.store = new RealtimeStore(options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS)
    this.socket = new RealtimeSocket(this.opts, {
      onFrame: (frame, now) => this.onFrame(frame, now),
      onConnecting: () => this.update({ nextReconnectAt: null }),
      onReconnectScheduled: (at) => this.update({ nextReconnectAt: at, transport: this.deriveTransport() }),
      onClosed: () => this.update({ silentSince: null }),
      onDown: () => {
        this.poller.start()
        this.update({ transport: this.deriveTransport() })
      },
      onTerminal: (code, reason) => {
        this.stop()
        this.opts.onTerminal(code, reason)
      },
    })
    this.poller = new FallbackPoller({
      fetchDashboard: this.opts.fetchDashboard,
      now: this.opts.now,
      isStopped: () => this.stopped,
      periodMs: () => this.pollPeriodMs(),
      socketDown: () => !this.socket.live || this.state.silentSince !== null,
      onBody: (body) => this.update(onDashboard(this.state, body, this.opts.now(), this.socket.live)),
      onPolled: (outcome) => {
        this.update(outcome)
        this.update({ transport: this.deriveTransport() })
      },
    })
  }

  // ---------- public API ----------

  getState = (): RealtimeState => this.store.getState()

  subscribe = (listener: (state: RealtimeState) => void): (() => void) => this.store.subscribe(listener)

  /** server-clock "now" as this page best knows it */
  serverNow(): number {
    return serverNow(this.state, this.opts.now())
  }

  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.lastTick = this.opts.now()
    this.tickTimer = setInterval(() => this.onTick(), 1000)
    this.attachEvents()
    this.update({ transport: 'connecting' })
    this.socket.start()
    // one HTTP read at once: it tells whether credentials exist and shows cached values before the socket is up
    void this.poller.pollOnce()
  }

  stop(): void {
    if (this.stopped) return
    this.stopped = true
    this.poller.stop()
    if (this.tickTimer) clearInterval(this.tickTimer)
    this.tickTimer = null
    this.detachEvents?.()
    this.detachEvents = null
    this.socket.stop()
    this.update({ transport: 'stopped', nextPollAt: null, nextReconnectAt: null })
  }

  /** the session got a new access token: hand it to the open socket in-band (CONTRACT §5) */
  setToken(token: string): void {
    this.socket.sendToken(token)
  }

  /** the world may have moved on: ask for fresh snapshots now, or reconnect and poll now if the socket is down */
  resync(reason: string): void {
    if (this.stopped) return
    const now = this.opts.now()
    if (now - this.lastResyncAt < 1000) return
    this.lastResyncAt = now
    if (this.socket.live) {
      this.socket.refresh(`resync-${reason}`)
      return
    }
    this.socket.reconnectNow()
    void this.poller.pollOnce()
  }

  /** change the channels' staleness threshold (the server's STALE_AFTER_MS) */
  setStaleAfterMs(ms: number): void {
    if (ms > 0 && ms !== this.state.staleAfterMs) this.update({ staleAfterMs: ms })
  }

  /** the fallback's period: at most half the stale limit, so it never lets fresh-enough data look stale */
  pollPeriodMs(): number {
    return fallbackPollMs(this.opts.pollEveryMs, this.state.staleAfterMs, Math.min(MIN_FALLBACK_POLL_MS, this.opts.pollEveryMs))
  }

  // ---------- wiring ----------

  private get state(): RealtimeState {
    return this.store.getState()
  }

  private update(patch: Partial<RealtimeState> | null): void {
    this.store.update(patch)
  }

  private stopPolling(): void {
    this.poller.stop()
    this.update({ nextPollAt: null, pollWaitMs: 0 })
  }

  private onFrame(frame: ServerFrame, now: number): void {
    if (this.state.silentSince !== null) {
      // the socket talks again: back to LIVE, the fallback polling started for the silence stops
      this.update({ silentSince: null })
      if (this.socket.live && frame.type !== 'connection') this.stopPolling()
      this.update({ transport: this.deriveTransport() })
    }
    switch (frame.type) {
      case 'connection':
        this.stopPolling()
        this.update(onConnectionFrame(frame, now))
        return
      case 'data_update':
        this.update(onDataFrame(this.state, frame, now))
        return
      case 'fresh':
        this.update(onFreshFrame(this.state, frame, now))
        return
      case 'status':
        this.update(onStatusFrame(this.state, frame))
        return
      case 'pong':
        this.update(onPongFrame(frame, now))
        return
      case 'ack':
      case 'error':
        return
    }
  }

  /** 1-second housekeeping: wake-from-sleep detection, the socket's heartbeat, the freshness read */
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
    if (this.socket.live) {
      // a silent open socket: the chip leaves LIVE and HTTP polling starts; a dead one was dropped
      const beat = this.socket.heartbeat(now)
      if (beat.kind === 'dropped') return
      if (beat.kind === 'silent' && this.state.silentSince === null) {
        this.update({ silentSince: beat.since })
        this.poller.start()
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
    if (this.poller.busy || !freshnessReadDue(this.state, now, this.lastFreshnessCheck)) return
    this.lastFreshnessCheck = now
    void this.poller.pollOnce()
  }

  private deriveTransport(): Transport {
    return deriveTransport(this.state, {
      stopped: this.stopped,
      authed: this.socket.live,
      online: this.opts.isOnline(),
      polling: this.poller.active,
      pollFailedNetwork: this.poller.lastFailedOnNetwork,
      everConnected: this.socket.hasConnected,
      attempt: this.socket.attempts,
    })
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
}
