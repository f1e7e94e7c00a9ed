/** Public shapes of the simulator (re-exported by index.ts). */
export interface SimPositionInput {
  side: 'buy' | 'sell'
  quantity: number
  leverage: number
  entryPrice?: number
  type?: 'market' | 'limit'
  price?: number
  /** a stop-loss this many % of the entry price against the position (a running position only) */
  stoplossPct?: number
  /** a take-profit this many % of the entry price in the position's favour (a running position only) */
  takeprofitPct?: number
}

/** a cross-margin account: margin moved in from the exchange (not from `balance`), an optional position, resting limit orders */
export interface SimCrossInput {
  margin: number
  leverage?: number
  side?: 'buy' | 'sell'
  quantity?: number
  entryPrice?: number
  orders?: Array<{ side: 'buy' | 'sell'; quantity: number; price?: number }>
}

/** past activity: closed isolated trades (each paid funding at one past fixing), one canceled order */
export interface SimHistoryInput {
  closedTrades?: number
  /** past funding settlements to create (default: closedTrades) */
  fundingSettlements?: number
}

export interface SimAccountInput {
  username: string
  key: string
  secret: string
  passphrase: string
  balance: number
  positions?: SimPositionInput[]
  cross?: SimCrossInput
  history?: SimHistoryInput
}

export interface Faults {
  latencyMs: number
  /** 0..1: hold the request open and never answer */
  timeoutRate: number
  /** 0..1: answer errorStatus without processing */
  errorRate: number
  errorStatus: 500 | 502 | 503 | 504
  /** every request 429 */
  rateLimitStorm: boolean
  /** 0..1: 200-style response whose body is not JSON */
  malformedRate: number
  /** 0..1: full Content-Length announced, half the body sent, connection closed */
  truncatedRate: number
  /** 0..1: socket destroyed mid-response (the request WAS processed) */
  dropRate: number
  /** server clock offset */
  clockSkewMs: number
  /** 503 for everything, stream upgrades refused and stream sockets dropped */
  outage: boolean
  /**
   * > 0: every this many ms, every authenticated (private) Stream v1 connection is terminated (no close frame,
   * like a network drop); new connections are accepted as usual, so clients reconnect and authenticate again,
   * within the stream limits. 0 = off
   */
  privateStreamDropMs: number
}

/** a REST error: `{code, message}` with an HTTP status */
export class SimError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}
