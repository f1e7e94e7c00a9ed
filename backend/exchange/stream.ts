/**
 * LN Markets Stream v1 (JSON-RPC 2.0 over WebSocket, lnmarkets-api.md §6.1), public ticker topics only.
 *
 * Events:
 *   'up'                        socket open, `hello` answered and topics subscribed
 *   'down'   (reason: string)   link lost (close, dead ping, failed subscribe); a reconnect is scheduled
 *   'ticker' (t: StreamTicker)  merged state after every ticker / lastPrice / index notification
 *   'warn'   (info: object)     something odd but handled (bad frame, RPC error); never 'error'
 *
 * The link itself (hello, ping/pong deadline, ≤ maxMsgsPerSec, jittered reconnect, resubscribe after
 * reconnect) is RpcSocket (rpc-socket.ts), shared with the private stream.
 */
import Type from 'typebox'
import { Compile } from 'typebox/compile'
import type { Metrics } from '../metrics.ts'
import { RpcSocket, type RpcSocketOptions } from './rpc-socket.ts'

export { StreamRpcError } from './rpc-socket.ts'

export const TOPIC_TICKER = 'futures/inverse/btc_usd/ticker'
export const TOPIC_LAST_PRICE = 'futures/inverse/btc_usd/lastPrice'
export const TOPIC_INDEX = 'futures/inverse/btc_usd/index'
export const DEFAULT_TOPICS = [TOPIC_TICKER, TOPIC_LAST_PRICE, TOPIC_INDEX] as const

export interface StreamTicker {
  index: number | null
  lastPrice: number | null
  fundingRate: number | null
  /** ISO time of the next funding (the stream sends ms; converted to match the REST ticker) */
  fundingTime: string | null
  /** exchange time of the latest update (ms) */
  time: number
}

export interface LnmStreamOptions extends RpcSocketOptions {
  metrics?: Metrics
  topics?: readonly string[]
}

const Num = Type.Union([Type.Number(), Type.Null()])
const TickerDataSchema = Type.Object({
  time: Type.Optional(Type.Number()),
  lastPrice: Type.Optional(Num),
  index: Type.Optional(Num),
  funding: Type.Optional(Type.Object({ rate: Type.Optional(Num), time: Type.Optional(Num) })),
})
const isTickerData = Compile(TickerDataSchema)

export class LnmStream extends RpcSocket {
  private readonly topics: readonly string[]
  private readonly metrics: Metrics | undefined
  private state: StreamTicker = { index: null, lastPrice: null, fundingRate: null, fundingTime: null, time: 0 }

  constructor(opts: LnmStreamOptions) {
    super(opts)
    this.metrics = opts.metrics
    this.topics = opts.topics ?? DEFAULT_TOPICS
    this.metrics?.streamConnected.set(0)
  }

  /** latest merged ticker state */
  get ticker(): StreamTicker {
    return { ...this.state }
  }

  protected override async afterHello(): Promise<void> {
    await this.request('subscribe', { topics: [...this.topics] })
  }

  protected override onLinkChange(up: boolean): void {
    this.metrics?.streamConnected.set(up ? 1 : 0)
  }

  protected override onNotification(topic: string, data: unknown) {
    if (topic !== TOPIC_TICKER && topic !== TOPIC_LAST_PRICE && topic !== TOPIC_INDEX) return
    if (!isTickerData.Check(data)) {
      this.emit('warn', { what: 'notification', topic, message: 'bad ticker payload' })
      return
    }
    const s = { ...this.state }
    if (typeof data.lastPrice === 'number') s.lastPrice = data.lastPrice
    if (typeof data.index === 'number') s.index = data.index
    if (data.funding) {
      if (typeof data.funding.rate === 'number') s.fundingRate = data.funding.rate
      if (typeof data.funding.time === 'number' && Number.isFinite(data.funding.time))
        s.fundingTime = new Date(data.funding.time).toISOString()
    }
    s.time = typeof data.time === 'number' && data.time > 0 ? data.time : Date.now()
    const prev = this.state
    this.state = s
    // the exchange publishes ticker, lastPrice and index for the same tick: emit only real changes
    if (
      prev.index === s.index &&
      prev.lastPrice === s.lastPrice &&
      prev.fundingRate === s.fundingRate &&
      prev.fundingTime === s.fundingTime &&
      prev.time === s.time
    )
      return
    this.emit('ticker', { ...s })
  }
}
