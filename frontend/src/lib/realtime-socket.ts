/**
 * The page's one WebSocket: connect, `auth` as the first message (never a token in the URL), an auth timeout,
 * frame parsing, the application-level heartbeat, close codes (4500–4999 terminal, 4001 refresh the token and
 * reconnect) and the full-jitter reconnect backoff. It keeps no page state: it tells its owner (the lifecycle,
 * realtime-client.ts) what happened through `SocketEvents`.
 */
import type { ClientMessage, ServerFrame } from '../../../backend/schemas/ws-protocol.ts'
import {
  BACKOFF_BASE_MS,
  BACKOFF_CAP_MS,
  WS_AUTH_TIMEOUT_MS,
  WS_PING_EVERY_MS,
  WS_PONG_TIMEOUT_MS,
  WS_SILENT_AFTER_MS,
} from '../config/constants.ts'
import { backoffDelay, isTerminalCloseCode, isTokenExpiredCode } from './frame-policy.ts'

let requestCounter = 0
const nextRequestId = (prefix: string): string => `${prefix}-${Date.now().toString(36)}-${(++requestCounter).toString(36)}`

export interface SocketOptions {
  /** absolute ws:// or wss:// URL of /ws */
  url: string
  getToken: () => string | null
  /** gets a fresh access token (used after close code 4001); null when the session is gone */
  refreshToken: () => Promise<string | null>
  WebSocketImpl: typeof WebSocket
  now: () => number
  random: () => number
}

export interface SocketEvents {
  /** a parsed frame, after the socket's own bookkeeping (a `connection` frame has made it authenticated) */
  onFrame: (frame: ServerFrame, now: number) => void
  /** a socket was opened; no reconnect is pending */
  onConnecting: () => void
  /** a reconnect attempt is scheduled for client time `at` */
  onReconnectScheduled: (at: number) => void
  /** the socket is gone (any close code); called before the reaction below */
  onClosed: () => void
  /** the socket is gone and will be replaced (after a backoff, or a token refresh) */
  onDown: () => void
  /** closed with 4500–4999: never reconnect */
  onTerminal: (code: number, reason: string) => void
}

/** the heartbeat's verdict on an authenticated socket */
export type Heartbeat = { kind: 'talking' } | { kind: 'silent'; since: number } | { kind: 'dropped' }

export class RealtimeSocket {
  private ws: WebSocket | null = null
  private authed = false
  private everConnected = false
  private running = false
  /** one per start(): a token refresh answers only the run that asked for it */
  private run = 0
  private attempt = 0
  private lastFrameAt = 0
  private pingSentAt = 0
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null
  private authTimer: ReturnType<typeof setTimeout> | null = null

  constructor(
    private readonly opts: SocketOptions,
    private readonly events: SocketEvents,
  ) {}

  /** open and authenticated */
  get live(): boolean {
    return this.authed && this.ws !== null
  }

  /** a socket was authenticated since start() */
  get hasConnected(): boolean {
    return this.everConnected
  }

  /** failed attempts since the last good connection */
  get attempts(): number {
    return this.attempt
  }

  start(): void {
    this.running = true
    this.run++
    this.everConnected = false
    this.attempt = 0
    this.connect()
  }

  stop(): void {
    this.running = false
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    this.drop(1000, 'client stopped')
  }

  /** a new access token: sent in-band on the open socket (CONTRACT §5) */
  sendToken(token: string): void {
    if (this.ws && this.ws.readyState === 1) this.send({ type: 'auth', request_id: nextRequestId('auth'), token })
  }

  /** on a live socket: ask for fresh snapshots and test the socket with a ping */
  refresh(prefix: string): void {
    this.send({ type: 'refresh_data', request_id: nextRequestId(prefix) })
    this.ping()
  }

  /** forget the backoff: connect at once unless a socket is already open or opening */
  reconnectNow(): void {
    this.attempt = 0
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    if (!this.ws) this.connect()
  }

  /**
   * Called every second while live. Any frame proves the socket alive; a quiet one gets a ping. Unanswered for
   * WS_SILENT_AFTER_MS it is silent (since its last frame); unanswered past WS_PONG_TIMEOUT_MS it is dropped.
   */
  heartbeat(now: number): Heartbeat {
    if (this.pingSentAt && this.lastFrameAt < this.pingSentAt) {
      if (now - this.pingSentAt > WS_PONG_TIMEOUT_MS) {
        this.dead('heartbeat timeout')
        return { kind: 'dropped' }
      }
      if (now - this.pingSentAt > WS_SILENT_AFTER_MS) return { kind: 'silent', since: this.lastFrameAt }
      return { kind: 'talking' }
    }
    if (now - this.lastFrameAt > WS_PING_EVERY_MS) this.ping()
    return { kind: 'talking' }
  }

  private connect(): void {
    if (!this.running || this.ws) return
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
    this.events.onConnecting()
    ws.onopen = () => {
      if (this.ws !== ws) return
      this.lastFrameAt = this.opts.now()
      this.send({ type: 'auth', request_id: nextRequestId('auth'), token: this.opts.getToken() ?? token })
      this.authTimer = setTimeout(() => {
        if (this.ws === ws && !this.authed) this.dead('auth timeout')
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
      this.receive(frame)
    }
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return
      this.onClose(ev.code, ev.reason)
    }
    ws.onerror = () => {
      /* a close event follows */
    }
  }

  private receive(frame: ServerFrame): void {
    const now = this.opts.now()
    this.lastFrameAt = now
    let reconnect = false
    if (frame.type === 'connection') {
      reconnect = this.everConnected
      this.authed = true
      this.everConnected = true
      this.attempt = 0
      this.clearAuthTimer()
      this.pingSentAt = 0
    } else if (frame.type === 'pong') {
      this.pingSentAt = 0
    }
    this.events.onFrame(frame, now)
    // the server pushes its cached snapshots after auth; on a reconnect also ask for a refresh
    if (reconnect) this.send({ type: 'refresh_data', request_id: nextRequestId('reconnect') })
  }

  private send(msg: ClientMessage): void {
    try {
      this.ws?.send(JSON.stringify(msg))
    } catch {
      /* the close handler deals with it */
    }
  }

  private ping(): void {
    this.pingSentAt = this.opts.now()
    this.send({ type: 'ping', request_id: nextRequestId('ping') })
  }

  private clearAuthTimer(): void {
    if (this.authTimer) clearTimeout(this.authTimer)
    this.authTimer = null
  }

  /** forget the socket now without waiting for a close handshake that may never come */
  private drop(code: number, reason: string): void {
    const ws = this.ws
    this.ws = null
    this.authed = false
    this.clearAuthTimer()
    if (!ws) return
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null
    try {
      ws.close(code, reason)
    } catch {
      /* already closed */
    }
  }

  private dead(reason: string): void {
    this.drop(4000, reason)
    this.onClose(1006, reason)
  }

  private onClose(code: number, reason: string): void {
    this.ws = null
    this.authed = false
    this.clearAuthTimer()
    this.events.onClosed()
    if (!this.running) return
    if (isTerminalCloseCode(code)) {
      this.events.onTerminal(code, reason)
      return
    }
    if (isTokenExpiredCode(code)) {
      this.attempt++
      this.events.onDown()
      const run = this.run
      void this.opts.refreshToken().then((token) => {
        if (!this.running || run !== this.run) return
        if (token) this.connect()
        else this.scheduleReconnect()
      })
      return
    }
    this.events.onDown()
    this.scheduleReconnect()
  }

  private scheduleReconnect(): void {
    if (!this.running || this.reconnectTimer) return
    const delay = backoffDelay(this.attempt++, this.opts.random, BACKOFF_BASE_MS, BACKOFF_CAP_MS)
    this.reconnectTimer = setTimeout(() => this.connect(), delay)
    this.events.onReconnectScheduled(this.opts.now() + delay)
  }
}
