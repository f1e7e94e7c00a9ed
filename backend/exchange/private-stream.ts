/**
 * One trader's private Stream v1 link (lnmarkets-api.md §6.1): `hello`, `authenticate` (HMAC-SHA256 of
 * `${timestamp}${nonce}` with the secret, base64; a fresh 16-byte hex nonce every time), then `subscribe` to
 * the private topics. The link mechanics (ping/pong deadline, ≤ 8 msgs/s, jittered reconnect) are RpcSocket's.
 *
 * Events:
 *   'up'                            authenticated and subscribed (again after every reconnect: the caller
 *                                   should reconcile over REST then, events may have been missed)
 *   'down'  (reason: string)        link lost after an 'up'; a reconnect is scheduled
 *   'event' ({ topic, data })       a notification on one of PRIVATE_TOPICS (payload as the exchange sent it)
 *   'warn'  (info: object)          handled oddities (refused auth, bad frame); never 'error'
 *
 * A refused `authenticate` (UNAUTHORIZED/FORBIDDEN) waits `reconnect.capMs` before the next try, and a
 * TOO_MANY_REQUESTS waits the server's `retryAfterMs`, so bad credentials cannot burn the per-IP budget of
 * 20 authenticate per minute. The key, secret, passphrase and signature are never logged or emitted.
 */
import { randomBytes } from 'node:crypto'
import type { Metrics } from '../metrics.ts'
import { signStreamAuth, type Credentials } from './signing.ts'
import { RpcSocket, StreamRpcError, type RpcSocketOptions } from './rpc-socket.ts'
import type { Log } from '../logger.ts'

export const PRIVATE_TOPICS = [
  'futures/inverse/btc_usd/isolated/trades',
  'futures/inverse/btc_usd/cross/orders',
  'futures/inverse/btc_usd/cross/position',
  'wallet/deposit',
  'wallet/withdrawal',
] as const
export type PrivateTopic = (typeof PRIVATE_TOPICS)[number]

const TOPIC_SET: ReadonlySet<string> = new Set(PRIVATE_TOPICS)
export const isPrivateTopic = (t: string): t is PrivateTopic => TOPIC_SET.has(t)

export interface PrivateStreamEvent {
  topic: PrivateTopic
  data: unknown
}

export interface LnmPrivateStreamOptions extends Omit<RpcSocketOptions, 'logger'> {
  url: string
  creds: Credentials
  logger?: Log
  metrics?: Metrics
  /** clock for the `authenticate` timestamp (ms), e.g. Date.now() + the REST client's learned offset */
  now?: () => number
  reconnect?: { baseMs: number; capMs: number }
  /** defaults to every PRIVATE_TOPICS entry */
  topics?: readonly PrivateTopic[]
}

export class LnmPrivateStream extends RpcSocket {
  private readonly creds: Credentials
  private readonly metrics: Metrics | undefined
  private readonly now: () => number
  private readonly topics: readonly PrivateTopic[]

  constructor(opts: LnmPrivateStreamOptions) {
    super(opts)
    this.creds = opts.creds
    this.metrics = opts.metrics
    this.now = opts.now ?? Date.now
    this.topics = opts.topics ?? PRIVATE_TOPICS
  }

  /** authenticated and subscribed */
  get up(): boolean {
    return this.isUp
  }

  start(): void {
    this.connect()
  }

  stop(): Promise<void> {
    return this.close()
  }

  protected override async afterHello(): Promise<void> {
    const timestamp = Math.round(this.now())
    const nonce = randomBytes(16).toString('hex')
    try {
      await this.request('authenticate', {
        key: this.creds.key,
        signature: signStreamAuth(this.creds.secret, timestamp, nonce),
        timestamp,
        passphrase: this.creds.passphrase,
        nonce,
      })
      this.metrics?.upstreamRequests.inc({ endpoint: 'stream:authenticate', status: 'ok' })
    } catch (e) {
      const code = e instanceof StreamRpcError ? e.code : 'ERROR'
      this.metrics?.upstreamRequests.inc({ endpoint: 'stream:authenticate', status: String(code) })
      // refused credentials will be refused again: do not spend the per-IP authenticate budget on them
      if (code === 'UNAUTHORIZED' || code === 'FORBIDDEN' || code === -32401 || code === -32403)
        this.minNextDelayMs = this.o.reconnect.capMs
      this.logger?.warn({ code }, 'lnm private stream: authenticate refused')
      throw e
    }
    await this.request('subscribe', { topics: [...this.topics] })
  }

  protected override onNotification(topic: string, data: unknown): void {
    if (!isPrivateTopic(topic) || !this.topics.includes(topic)) return
    if (typeof data !== 'object' || data === null) {
      this.emit('warn', { what: 'notification', topic, message: 'payload is not an object' })
      return
    }
    const ev: PrivateStreamEvent = { topic, data }
    this.emit('event', ev)
  }
}
