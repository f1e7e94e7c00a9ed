/**
 * Hub part 1 of 4: the connection state machine and authentication.
 *
 * PENDING (waiting for the first `auth`) → AUTHENTICATING (token being verified; a few pipelined messages
 * are queued) → OPEN → CLOSING (we sent a close frame; terminated after `closeGraceMs`) → CLOSED.
 * Inbound frames are rate limited (token bucket), parsed and either handed to `hooks.dispatch` (OPEN) or
 * treated as protocol violations. What a socket does once open (rooms, snapshots, fan-out) is the hub's.
 *
 * Memory per socket is one `Conn` of plain fields; the ws event handlers are shared functions reading
 * `ws[kConn]`, never one closure per socket.
 */
import { closeCodeLabel } from './close-code-label.ts'
import type { WebSocket } from 'ws'
import type { Metrics } from '../metrics.ts'
import { CloseCode, type ClientMessage } from '../schemas/ws-protocol.ts'
import type { FrameWriter } from './frame-writer.ts'
import type { Room } from './hub-rooms.ts'
import { ALL_CHANNELS, parseClientFrame } from './protocol.ts'
import type { Log } from './sources.ts'

export interface VerifiedToken {
  userId: string
  /** epoch seconds */
  exp: number
  tokenHash: string
}

/** verifyAccessToken: rejects with an error carrying `reason` ('expired' | 'invalid' | 'revoked' | 'unknown_user' …) */
export type VerifyToken = (token: string) => Promise<VerifiedToken>

export const State = {
  PENDING: 0,
  AUTHENTICATING: 1,
  OPEN: 2,
  CLOSING: 3,
  CLOSED: 4,
} as const
export type State = (typeof State)[keyof typeof State]

const MAX_QUEUED = 8
export const kConn = Symbol('lnm.conn')
export type WsWithConn = WebSocket & { [kConn]?: Conn }

export class Conn {
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
  /** collapse mode: since when (0 = not collapsed), which channels (CHANNEL_BITS) and statuses (STATUS_BITS) are owed */
  slowSince = 0
  pendingMask = 0
  pendingStatus = 0
  /** auth deadline while pending; terminate deadline while closing */
  deadline: number
  closeCode = 0
  room: Room | null = null
  /** messages that arrived while the first auth was being verified */
  queue: ClientMessage[] | null = null
  /** outbound frames (frame-writer.ts): created on the first frame */
  out: FrameWriter | null = null
  reauthing = false
  constructor(
    readonly ws: WsWithConn,
    readonly id: number,
    deadline: number,
    now: number,
    burst: number,
  ) {
    this.deadline = deadline
    this.refillAt = now
    this.tokens = burst
  }
}

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

export interface ConnOptions {
  verify: VerifyToken
  metrics: Metrics
  authTimeoutMs: number
  rateLimitPerSec: number
  closeGraceMs: number
  log: Log
  now: () => number
}

/** what the connection machine needs from the rest of the hub */
export interface ConnHooks {
  /** a first authentication succeeded: false refuses it (the hook closed the socket) */
  admit(c: Conn, info: VerifiedToken, requestId: string | undefined): boolean
  /** the socket is OPEN: join rooms and send the initial frames (one corked write) */
  opened(c: Conn, now: number, requestId: string | undefined): void
  dispatch(c: Conn, msg: ClientMessage): void
  /** leave rooms and fan-out state (the socket is closing or gone) */
  detach(c: Conn): void
  sendError(c: Conn, code: string, message: string, requestId?: string): void
  ack(c: Conn, requestId: string, status: 'ok' | 'error', message?: string, data?: unknown): void
}

export class Connections {
  readonly all = new Set<Conn>()
  readonly pendingAuth = new Set<Conn>()
  readonly closing = new Set<Conn>()
  private nextId = 0
  readonly burst: number
  readonly onWsMessage: (this: WsWithConn, data: Buffer, isBinary: boolean) => void
  readonly onWsClose: (this: WsWithConn, code: number) => void
  readonly onWsPong: (this: WsWithConn) => void
  readonly onWsError: (this: WsWithConn, err: Error) => void

  constructor(
    private readonly o: ConnOptions,
    private readonly hooks: ConnHooks,
  ) {
    this.burst = Math.max(2, o.rateLimitPerSec * 2)
    // shared handlers: one function per hub, never one per socket
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the handlers' own `this` is the socket
    const self = this
    this.onWsMessage = function (this: WsWithConn, data: Buffer, isBinary: boolean) {
      const c = this[kConn]
      if (!c) return
      try {
        self.handleMessage(c, data, isBinary)
      } catch (err) {
        // a bug must cost one socket (1011), never the process
        self.o.log.error({ err, conn: c.id }, 'message handling failed')
        self.close(c, CloseCode.INTERNAL, 'internal error')
      }
    }
    this.onWsClose = function (this: WsWithConn, code: number) {
      const c = this[kConn]
      if (c) self.onClosed(c, code)
    }
    this.onWsPong = function (this: WsWithConn) {
      const c = this[kConn]
      if (c) c.alive = true
    }
    this.onWsError = function (this: WsWithConn, err: Error) {
      // ws reports protocol errors here (maxPayload, bad UTF-8, bad opcode) and closes the socket itself
      const c = this[kConn]
      const code = (err as { code?: string }).code
      self.o.log.debug({ err: { message: err.message, code }, conn: c?.id }, 'websocket error')
      if (!c || c.state >= State.CLOSING) return
      self.detach(c)
      c.state = State.CLOSING
      c.closeCode =
        code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
          ? CloseCode.TOO_BIG
          : code === 'WS_ERR_INVALID_UTF8'
            ? 1007
            : code?.startsWith('WS_ERR_')
              ? 1002
              : 1006
      c.deadline = self.o.now() + self.o.closeGraceMs
      self.closing.add(c)
    }
  }

  /** take over an upgraded socket: a PENDING Conn with its auth deadline, the shared listeners attached */
  register(socket: WebSocket): Conn {
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
    this.all.add(c)
    this.o.metrics.connectionsOpen.inc()
    return c
  }

  /** after admission: wait for the first auth message, or use a token verified on the upgrade */
  begin(c: Conn, preAuth?: VerifiedToken): void {
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
      this.hooks.sendError(c, parsed.code, parsed.message, parsed.request_id)
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
      if (msg.type === 'auth' || (c.queue?.length ?? 0) >= MAX_QUEUED)
        return this.close(c, CloseCode.BAD_REQUEST, 'protocol violation: wait for the auth ack')
      ;(c.queue ??= []).push(msg)
      return
    }
    if (authed) this.hooks.dispatch(c, msg)
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
    if (c.drops === 1)
      this.hooks.sendError(
        c,
        'rate_limited',
        `more than ${rate} messages per second: messages are dropped; keep going and the connection closes`,
      )
    else if (c.drops > rate) this.close(c, CloseCode.RATE_LIMITED, 'rate limited')
    return false
  }

  // ------------------------------------------------------------------ authentication

  /** first auth, or an in-band refresh of an OPEN socket */
  authenticate(c: Conn, token: string, requestId: string): void {
    const first = c.state === State.PENDING
    if (first) c.state = State.AUTHENTICATING
    else c.reauthing = true
    this.o
      .verify(token)
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
      this.hooks.ack(c, requestId, 'error', 'internal error')
      return this.close(c, CloseCode.INTERNAL, 'internal error')
    }
    this.o.metrics.authFailures.inc({ reason: `ws_${reason}` })
    const message = reason === 'expired' ? 'token expired' : reason === 'revoked' ? 'token revoked' : 'invalid token'
    this.hooks.ack(c, requestId, 'error', message)
    this.close(c, closeCodeForAuthFailure(reason), message)
  }

  private onVerified(c: Conn, info: VerifiedToken, requestId: string | undefined): void {
    c.reauthing = false
    if (c.state >= State.CLOSING) return
    const now = this.o.now()
    if (info.exp * 1000 <= now) {
      this.o.metrics.authFailures.inc({ reason: 'ws_expired' })
      if (requestId) this.hooks.ack(c, requestId, 'error', 'token expired')
      return this.close(c, CloseCode.TOKEN_EXPIRED, 'token expired')
    }
    if (c.state === State.OPEN) {
      // in-band refresh: same user only
      if (info.userId !== c.userId) {
        this.o.metrics.authFailures.inc({ reason: 'ws_other_user' })
        if (requestId) this.hooks.ack(c, requestId, 'error', 'token belongs to another user')
        return this.close(c, CloseCode.FORBIDDEN, 'token belongs to another user')
      }
      c.tokenHash = info.tokenHash
      c.expMs = info.exp * 1000
      if (requestId) this.hooks.ack(c, requestId, 'ok', undefined, { expiresAt: c.expMs })
      return
    }
    if (!this.hooks.admit(c, info, requestId)) return
    this.pendingAuth.delete(c)
    c.userId = info.userId
    c.tokenHash = info.tokenHash
    c.expMs = info.exp * 1000
    c.state = State.OPEN
    // ack, connection, snapshots and statuses leave in one system call instead of five or six
    // (through ws's private _socket, ws 8.23.0)
    const raw = (c.ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket
    raw?.cork()
    if (requestId) this.hooks.ack(c, requestId, 'ok', undefined, { expiresAt: c.expMs })
    this.hooks.opened(c, now, requestId)
    raw?.uncork()
    const q = c.queue
    c.queue = null
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- a dispatch can close the connection (slow consumer), ending the replay
    if (q) for (const m of q) if (c.state === State.OPEN) this.hooks.dispatch(c, m)
  }

  // ------------------------------------------------------------------ closing

  close(c: Conn, code: number, reason: string): void {
    if (c.state >= State.CLOSING) return
    this.detach(c)
    c.state = State.CLOSING
    c.closeCode = code
    c.deadline = this.o.now() + this.o.closeGraceMs
    this.closing.add(c)
    // frames queued behind a write in flight go out before the close frame (an error, then the close)
    c.out?.flush()
    try {
      c.ws.close(code, reason)
    } catch {
      c.ws.terminate()
    }
  }

  /** no pong for a whole heartbeat period: the peer is gone, terminate without a closing handshake */
  terminateDead(c: Conn): void {
    this.detach(c)
    c.state = State.CLOSING
    c.closeCode = 1006
    c.ws.terminate()
  }

  detach(c: Conn): void {
    this.pendingAuth.delete(c)
    c.queue = null
    this.hooks.detach(c)
  }

  private onClosed(c: Conn, code: number): void {
    if (c.state === State.CLOSED) return
    this.detach(c)
    this.closing.delete(c)
    this.all.delete(c)
    c.state = State.CLOSED
    this.o.metrics.connectionsOpen.dec()
    this.o.metrics.connectionsClosed.inc({ code: closeCodeLabel(c.closeCode || code) })
  }
}
