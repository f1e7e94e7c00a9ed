/**
 * The Stream v1 link shared by the public and the private stream (lnmarkets-api.md §6.1): JSON-RPC 2.0 over
 * `ws`, requests matched by id with a timeout, `hello` then a subclass handshake (subscribe, or authenticate +
 * subscribe), JSON-RPC `ping` every ~30 s with a pong deadline, outgoing messages kept under `maxMsgsPerSec`
 * in any 1.1 s window, and a jittered exponential reconnect (capped) that also honours a server
 * `retryAfterMs`.
 *
 * Events emitted by the base: 'up' (handshake done), 'down' (reason: string, only after an 'up'),
 * 'warn' (info: object; never 'error', so an unhandled event cannot crash the process).
 */
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import Type from 'typebox'
import { Compile } from 'typebox/compile'
import type { Log } from '../logger.ts'
import { fullJitterBackoff } from './resilience.ts'

const RATE_WINDOW_MS = 1_100

export interface RpcSocketOptions {
  /** e.g. wss://stream.lnmarkets.com/v1 */
  url: string
  logger?: Log
  clientName?: string
  clientVersion?: string
  pingIntervalMs?: number
  pongTimeoutMs?: number
  requestTimeoutMs?: number
  handshakeTimeoutMs?: number
  reconnect?: { baseMs?: number; capMs?: number }
  /** outgoing message budget per second (server limit is 10; default 8) */
  maxMsgsPerSec?: number
  /**
   * awaited before every reconnect attempt (after the jittered delay): a budget shared by many sockets of one
   * IP (LN Markets: 20 `authenticate` per minute, 500 new connections per hour)
   */
  gate?: () => Promise<void>
  /**
   * the reconnect backoff starts over only after a link stayed up this long (default 60 000): a link the
   * exchange drops every few seconds backs off exponentially up to `reconnect.capMs` instead of reconnecting
   * at `baseMs` each time
   */
  stableMs?: number
}

const NotificationSchema = Type.Object({
  method: Type.Literal('subscription'),
  params: Type.Object({ topic: Type.String(), data: Type.Unknown() }),
})
const ResponseSchema = Type.Object({
  id: Type.Union([Type.String(), Type.Number()]),
  result: Type.Optional(Type.Unknown()),
  error: Type.Optional(Type.Object({ code: Type.Number(), message: Type.Optional(Type.String()), data: Type.Optional(Type.Unknown()) })),
})
const isNotification = Compile(NotificationSchema)
const isResponse = Compile(ResponseSchema)

export class StreamRpcError extends Error {
  override readonly name = 'StreamRpcError'
  constructor(
    readonly method: string,
    readonly code: number | string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message)
  }
}

interface Pending {
  method: string
  resolve(v: unknown): void
  reject(e: Error): void
  timer: NodeJS.Timeout | null
}

type Resolved = Required<Omit<RpcSocketOptions, 'logger' | 'reconnect' | 'gate'>> & {
  reconnect: { baseMs: number; capMs: number }
}

export abstract class RpcSocket extends EventEmitter {
  readonly url: string
  protected readonly o: Resolved
  protected readonly logger: Log | undefined
  private ws: WebSocket | null = null
  private linkUp = false
  private stopped = true
  private attempt = 0
  /** when the link last came up (ms) */
  private upSince = 0
  private reconnectTimer: NodeJS.Timeout | null = null
  private readonly gate: (() => Promise<void>) | undefined
  /** a reconnect is waiting for the gate */
  private gating = false
  /** bumped by close(): a gate that opens after a close (and maybe a new connect) must not open a socket */
  private runs = 0
  private pingTimer: NodeJS.Timeout | null = null
  private readonly pending = new Map<string, Pending>()
  private readonly outbox: Array<{ id: string; frame: string }> = []
  private sentAt: number[] = []
  private flushTimer: NodeJS.Timeout | null = null
  private lastMessageAt = 0
  /** the next reconnect waits at least this long (a server retryAfterMs, or the cap after a refused auth) */
  protected minNextDelayMs = 0

  constructor(opts: RpcSocketOptions) {
    super()
    this.url = opts.url
    this.logger = opts.logger
    this.gate = opts.gate
    this.o = {
      url: opts.url,
      clientName: opts.clientName ?? 'lnm-gateway',
      clientVersion: opts.clientVersion ?? '0.1.0',
      pingIntervalMs: opts.pingIntervalMs ?? 30_000,
      pongTimeoutMs: opts.pongTimeoutMs ?? 10_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
      maxMsgsPerSec: opts.maxMsgsPerSec ?? 8,
      reconnect: { baseMs: opts.reconnect?.baseMs ?? 1_000, capMs: opts.reconnect?.capMs ?? 30_000 },
      stableMs: opts.stableMs ?? 60_000,
    }
  }

  /** after `hello`: subscribe (and authenticate first on a private link); reject to drop the socket and retry */
  protected abstract afterHello(): Promise<void>
  /** a `subscription` notification */
  protected abstract onNotification(topic: string, data: unknown): void
  /** link state changes (metrics) */
  protected onLinkChange(_up: boolean): void {}

  get isUp(): boolean {
    return this.linkUp
  }

  get lastMessageTs(): number {
    return this.lastMessageAt
  }

  /** Start (idempotent). Connection failures are retried until close(). */
  connect(): void {
    if (!this.stopped) return
    this.stopped = false
    this.attempt = 0
    this.open()
  }

  async close(): Promise<void> {
    this.stopped = true
    this.runs++
    this.gating = false
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    const ws = this.ws
    this.teardown('closed by client')
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          ws.terminate()
          resolve()
        }, 1_000)
        ws.once('close', () => {
          clearTimeout(t)
          resolve()
        })
        try {
          ws.close(1000)
        } catch {
          ws.terminate()
        }
      })
    }
  }

  /** Send a JSON-RPC request; resolves with `result`, rejects with StreamRpcError or on timeout/close. */
  request(method: string, params?: unknown): Promise<unknown> {
    const ws = this.ws
    if (!ws || ws.readyState !== WebSocket.OPEN)
      return Promise.reject(new StreamRpcError(method, 'NOT_CONNECTED', `stream ${method}: not connected`))
    const id = randomBytes(8).toString('hex')
    return new Promise((resolve, reject) => {
      // the timeout starts when the frame is actually written (it may wait for the outgoing rate budget)
      this.pending.set(id, { method, resolve, reject, timer: null })
      this.enqueue({ id, frame: JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }) })
    })
  }

  // ------------------------------------------------------------------ internals

  private open() {
    if (this.stopped) return
    let ws: WebSocket
    try {
      ws = new WebSocket(this.url, { handshakeTimeout: this.o.handshakeTimeoutMs, maxPayload: 1 << 20 })
    } catch (e) {
      this.logger?.warn({ err: (e as Error).message }, 'lnm stream: cannot create socket')
      this.scheduleReconnect('create failed')
      return
    }
    this.ws = ws
    ws.on('open', () => {
      if (this.ws !== ws) return
      void this.handshake(ws)
    })
    ws.on('message', (data) => {
      if (this.ws !== ws) return
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- ws hands a text frame over as one Buffer (binaryType 'nodebuffer')
      this.onMessage(data.toString())
    })
    ws.on('error', (err) => {
      this.logger?.debug({ err: err.message }, 'lnm stream socket error')
    })
    ws.on('unexpected-response', (_req, res) => {
      // e.g. 429 when the exchange refuses more connections from this IP: back off at the cap
      if (res.statusCode === 429) this.minNextDelayMs = Math.max(this.minNextDelayMs, this.o.reconnect.capMs)
      this.emit('warn', { what: 'upgrade', status: res.statusCode })
      ws.terminate()
    })
    ws.on('close', (code) => {
      if (this.ws !== ws) return
      this.teardown(`closed (${code})`)
      this.scheduleReconnect(`closed (${code})`)
    })
  }

  private async handshake(ws: WebSocket) {
    try {
      await this.request('hello', { clientName: this.o.clientName, clientVersion: this.o.clientVersion })
      await this.afterHello()
    } catch (e) {
      if (this.ws !== ws) return
      const err = e as StreamRpcError
      if (err.retryAfterMs !== undefined) this.minNextDelayMs = Math.max(this.minNextDelayMs, err.retryAfterMs)
      this.emit('warn', { what: 'handshake', code: err.code, message: err.message })
      ws.terminate()
      return
    }
    if (this.ws !== ws || this.stopped) return
    this.linkUp = true
    // the backoff starts over only once this link has proved stable (see teardown)
    this.upSince = Date.now()
    this.onLinkChange(true)
    this.startPing(ws)
    this.emit('up')
  }

  private startPing(ws: WebSocket) {
    if (this.pingTimer) clearInterval(this.pingTimer)
    this.pingTimer = setInterval(() => {
      if (this.ws !== ws) return
      const pongDeadline = setTimeout(() => {
        if (this.ws !== ws) return
        this.logger?.warn({}, 'lnm stream: no pong; declaring the link dead')
        this.emit('warn', { what: 'ping', message: 'no pong' })
        ws.terminate()
      }, this.o.pongTimeoutMs)
      this.request('ping').then(
        () => clearTimeout(pongDeadline),
        () => {
          /* the pong deadline decides */
        },
      )
    }, this.o.pingIntervalMs)
  }

  private onMessage(text: string) {
    this.lastMessageAt = Date.now()
    let msg: unknown
    try {
      msg = JSON.parse(text)
    } catch {
      this.emit('warn', { what: 'frame', message: 'invalid JSON from stream' })
      return
    }
    if (isResponse.Check(msg)) {
      const p = this.pending.get(String(msg.id))
      if (!p) return
      this.pending.delete(String(msg.id))
      if (p.timer) clearTimeout(p.timer)
      if (msg.error) {
        const data = msg.error.data as { code?: unknown; retryAfterMs?: unknown } | undefined
        p.reject(
          new StreamRpcError(
            p.method,
            typeof data?.code === 'string' ? data.code : msg.error.code,
            `stream ${p.method}: ${msg.error.message ?? 'error'}`,
            typeof data?.retryAfterMs === 'number' ? data.retryAfterMs : undefined,
          ),
        )
      } else p.resolve(msg.result)
      return
    }
    if (isNotification.Check(msg)) {
      this.onNotification(msg.params.topic, msg.params.data)
      return
    }
    this.emit('warn', { what: 'frame', message: 'unexpected frame shape' })
  }

  /** outgoing rate limit: at most maxMsgsPerSec in any 1 s window */
  private enqueue(item: { id: string; frame: string }) {
    this.outbox.push(item)
    this.flush()
  }

  private flush() {
    if (this.flushTimer) return
    const ws = this.ws
    while (this.outbox.length > 0) {
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        this.outbox.length = 0
        return
      }
      const now = Date.now()
      // a 1.1 s window: 100 ms of margin for network jitter against the server's 1 s window
      this.sentAt = this.sentAt.filter((t) => now - t < RATE_WINDOW_MS)
      if (this.sentAt.length >= this.o.maxMsgsPerSec) {
        const wait = RATE_WINDOW_MS - (now - (this.sentAt[0] ?? now)) + 1
        this.flushTimer = setTimeout(() => {
          this.flushTimer = null
          this.flush()
        }, wait)
        return
      }
      this.sentAt.push(now)
      const item = this.outbox.shift()!
      ws.send(item.frame)
      const p = this.pending.get(item.id)
      if (p) {
        p.timer = setTimeout(() => {
          this.pending.delete(item.id)
          p.reject(new StreamRpcError(p.method, 'TIMEOUT', `stream ${p.method}: no response within ${this.o.requestTimeoutMs} ms`))
        }, this.o.requestTimeoutMs)
      }
    }
  }

  private teardown(reason: string) {
    const wasUp = this.linkUp
    this.linkUp = false
    if (wasUp && Date.now() - this.upSince >= this.o.stableMs) this.attempt = 0
    this.ws = null
    if (this.pingTimer) clearInterval(this.pingTimer)
    this.pingTimer = null
    if (this.flushTimer) clearTimeout(this.flushTimer)
    this.flushTimer = null
    this.outbox.length = 0
    for (const [id, p] of this.pending) {
      if (p.timer) clearTimeout(p.timer)
      p.reject(new StreamRpcError(p.method, 'CLOSED', `stream ${p.method}: connection closed`))
      this.pending.delete(id)
    }
    this.onLinkChange(false)
    if (wasUp) this.emit('down', reason)
  }

  private scheduleReconnect(reason: string) {
    if (this.stopped || this.reconnectTimer || this.gating) return
    const ceiling = Math.min(this.o.reconnect.capMs, this.o.reconnect.baseMs * 2 ** this.attempt)
    // half fixed, half jittered: never a tight loop, and sockets dropped together come back spread out
    const jittered = Math.round(ceiling / 2 + fullJitterBackoff(0, ceiling / 2, ceiling / 2))
    const delay = Math.max(50, jittered, this.minNextDelayMs)
    this.minNextDelayMs = 0
    this.attempt++
    this.logger?.info({ reason, delayMs: delay, attempt: this.attempt }, 'lnm stream reconnect scheduled')
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      if (!this.gate) return this.open()
      const run = this.runs
      this.gating = true
      this.gate().then(
        () => {
          if (run !== this.runs) return
          this.gating = false
          this.open()
        },
        () => {
          if (run !== this.runs) return
          this.gating = false
          this.scheduleReconnect('gate failed')
        },
      )
    }, delay)
  }
}
