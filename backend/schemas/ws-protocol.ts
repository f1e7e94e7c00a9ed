/**
 * The wire contract of /ws and /api/dashboard (CONTRACT.md §5–§6).
 * Backend validates with these schemas; the dashboard imports the types with `import type`,
 * so the two cannot drift.
 */
import Type, { type Static } from 'typebox'

export const PROTOCOL_VERSION = 1 as const

import { CHANNELS, type Channel } from './channels.ts'

export { CHANNELS, type Channel } from './channels.ts'
export const ChannelSchema = Type.Union(CHANNELS.map((c) => Type.Literal(c)))

export type Source = 'lnmarkets' | 'simulator'
export type UpstreamState = 'ok' | 'degraded' | 'down'

/** WebSocket close codes (CONTRACT §5). 4000–4499: reconnect; 4500–4999: do not. */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  TRY_AGAIN_LATER: 1013,
  TOKEN_EXPIRED: 4001,
  SLOW_CONSUMER: 4008,
  RATE_LIMITED: 4029,
  BAD_REQUEST: 4500,
  INVALID_TOKEN: 4501,
  AUTH_TIMEOUT: 4502,
  FORBIDDEN: 4503,
} as const
export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode]
export const isTerminalClose = (code: number): boolean => code >= 4500 && code <= 4999

// ---------- snapshots (LN Markets v3 field names) ----------

export const FuturesTradeSchema = Type.Object({
  id: Type.String(),
  type: Type.Union([Type.Literal('limit'), Type.Literal('market')]),
  side: Type.Union([Type.Literal('buy'), Type.Literal('sell')]),
  quantity: Type.Number(),
  margin: Type.Number(),
  leverage: Type.Number(),
  price: Type.Number(),
  entryPrice: Type.Union([Type.Number(), Type.Null()]),
  entryMargin: Type.Union([Type.Number(), Type.Null()]),
  exitPrice: Type.Union([Type.Number(), Type.Null()]),
  liquidation: Type.Number(),
  stoploss: Type.Number(),
  stoplossTrailingDistance: Type.Optional(Type.Number()),
  takeprofit: Type.Number(),
  pl: Type.Number(),
  openingFee: Type.Number(),
  closingFee: Type.Number(),
  maintenanceMargin: Type.Number(),
  sumFundingFees: Type.Number(),
  sumCashInMargin: Type.Optional(Type.Number()),
  sumCashInPl: Type.Optional(Type.Number()),
  open: Type.Boolean(),
  running: Type.Boolean(),
  closed: Type.Boolean(),
  canceled: Type.Boolean(),
  createdAt: Type.String(),
  filledAt: Type.Union([Type.String(), Type.Null()]),
  closedAt: Type.Union([Type.String(), Type.Null()]),
  clientId: Type.Optional(Type.Union([Type.String(), Type.Null()])),
})
export type FuturesTrade = Static<typeof FuturesTradeSchema>

export const AccountSnapshotSchema = Type.Object({
  username: Type.String(),
  balance: Type.Number(),
  syntheticUsdBalance: Type.Number(),
  feeTier: Type.Number(),
  /** sats: what the account is worth now. The one number a trader watches. */
  equity: Type.Number({
    description:
      "sats: `balance` + the running isolated trades' margin and unrealised P&L (`positions.totals.margin + pl`) + the cross position's `margin + deltaPl` (collateral with realised P&L in it, plus the open exposure's unrealised P&L)",
  }),
})
export type AccountSnapshot = Static<typeof AccountSnapshotSchema>

export const PositionsSnapshotSchema = Type.Object({
  running: Type.Array(FuturesTradeSchema),
  open: Type.Array(FuturesTradeSchema),
  totals: Type.Object({ margin: Type.Number(), pl: Type.Number(), quantity: Type.Number(), count: Type.Number() }),
})
export type PositionsSnapshot = Static<typeof PositionsSnapshotSchema>

export const TickerSnapshotSchema = Type.Object({
  index: Type.Number(),
  lastPrice: Type.Number(),
  bidPrice: Type.Number(),
  askPrice: Type.Number(),
  fundingRate: Type.Number(),
  /** ISO time of the next funding */
  fundingTime: Type.String(),
})
export type TickerSnapshot = Static<typeof TickerSnapshotSchema>

const NullableNumber = Type.Union([Type.Number(), Type.Null()])
const NullableString = Type.Union([Type.String(), Type.Null()])

/** LN Markets v3 `FuturesCrossPosition` (SDK field names; no ids) */
export const FuturesCrossPositionSchema = Type.Object({
  quantity: Type.Number(),
  leverage: Type.Number(),
  margin: Type.Number(),
  entryPrice: NullableNumber,
  liquidation: NullableNumber,
  totalPl: Type.Number(),
  deltaPl: Type.Number(),
  fundingFees: Type.Number(),
  tradingFees: Type.Number(),
  initialMargin: Type.Number(),
  maintenanceMargin: Type.Number(),
  runningMargin: Type.Number(),
  updatedAt: Type.String(),
})
export type FuturesCrossPosition = Static<typeof FuturesCrossPositionSchema>

/** LN Markets v3 `CrossOrder` (no account id) */
export const CrossOrderSchema = Type.Object({
  id: Type.String(),
  type: Type.String(),
  side: Type.String(),
  price: Type.Number(),
  quantity: Type.Number(),
  tradingFee: Type.Number(),
  open: Type.Boolean(),
  filled: Type.Boolean(),
  canceled: Type.Boolean(),
  createdAt: Type.String(),
  filledAt: NullableString,
  canceledAt: NullableString,
})
export type CrossOrder = Static<typeof CrossOrderSchema>

export const CrossSnapshotSchema = Type.Object({
  /** null: no cross position */
  position: Type.Union([FuturesCrossPositionSchema, Type.Null()]),
  openOrders: Type.Array(CrossOrderSchema),
})
export type CrossSnapshot = Static<typeof CrossSnapshotSchema>

/** a funding fee paid (fee > 0) or received (fee < 0), sats, with the margin mode it belongs to */
export const FundingFeeEntrySchema = Type.Object({
  fee: Type.Number(),
  settlementId: Type.String(),
  time: Type.String(),
  tradeId: NullableString,
  scope: Type.Union([Type.Literal('isolated'), Type.Literal('cross')]),
})
export type FundingFeeEntry = Static<typeof FundingFeeEntrySchema>

/** sats over a window: realised P&L, trading fees paid, funding fees paid, net = pl − tradingFees − fundingFees */
export const RealizedSchema = Type.Object({ pl: Type.Number(), tradingFees: Type.Number(), fundingFees: Type.Number(), net: Type.Number() })
export type Realized = Static<typeof RealizedSchema>

export const HISTORY_MAX_ITEMS = 50

export const HistorySnapshotSchema = Type.Object({
  /** closed and canceled isolated trades, newest first */
  closed: Type.Array(FuturesTradeSchema, { maxItems: HISTORY_MAX_ITEMS }),
  /** filled cross orders, newest first */
  crossFilled: Type.Array(CrossOrderSchema, { maxItems: HISTORY_MAX_ITEMS }),
  /** isolated and cross funding fees, newest first */
  fundingFees: Type.Array(FundingFeeEntrySchema, { maxItems: HISTORY_MAX_ITEMS }),
  /** the last 24 h, 7 d and 30 d */
  realized: Type.Object({ day: RealizedSchema, week: RealizedSchema, month: RealizedSchema }),
})
export type HistorySnapshot = Static<typeof HistorySnapshotSchema>

/** the snapshot schema of every channel of the table (channels.ts): a channel without one does not compile */
export const SNAPSHOT_SCHEMAS = {
  account: AccountSnapshotSchema,
  positions: PositionsSnapshotSchema,
  ticker: TickerSnapshotSchema,
  cross: CrossSnapshotSchema,
  history: HistorySnapshotSchema,
} as const satisfies Record<Channel, unknown>

export type SnapshotByChannel = { [C in Channel]: Static<(typeof SNAPSHOT_SCHEMAS)[C]> }

// ---------- client → server ----------

const RequestId = Type.String({ minLength: 1, maxLength: 128 })

export const AuthMessageSchema = Type.Object({
  type: Type.Literal('auth'),
  request_id: RequestId,
  token: Type.String({ minLength: 1, maxLength: 4096 }),
})
export const RefreshDataMessageSchema = Type.Object({ type: Type.Literal('refresh_data'), request_id: RequestId })
export const SubscribeMessageSchema = Type.Object({
  type: Type.Union([Type.Literal('subscribe'), Type.Literal('unsubscribe')]),
  request_id: RequestId,
  channels: Type.Array(ChannelSchema, { minItems: 1, maxItems: CHANNELS.length, uniqueItems: true }),
})
export const PingMessageSchema = Type.Object({ type: Type.Literal('ping'), request_id: RequestId })

export const ClientMessageSchema = Type.Union([AuthMessageSchema, RefreshDataMessageSchema, SubscribeMessageSchema, PingMessageSchema])
export type ClientMessage = Static<typeof ClientMessageSchema>
export type ClientMessageType = ClientMessage['type']
export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = ['auth', 'refresh_data', 'subscribe', 'unsubscribe', 'ping']

// ---------- server → client ----------

export interface ConnectionFrame {
  type: 'connection'
  connectionId: string
  userId: string
  serverTime: number
  heartbeatMs: number
  protocol: typeof PROTOCOL_VERSION
  source: Source
}

export interface AckFrame {
  type: 'ack'
  request_id: string
  status: 'ok' | 'error'
  message?: string
  data?: unknown
}

export interface DataUpdateFrame<C extends Channel = Channel> {
  type: 'data_update'
  channel: C
  epoch: number
  seq: number
  /** when the exchange data was true (ms) */
  sourceTs: number
  /** when the gateway sent it (ms) */
  ts: number
  source: Source
  data: SnapshotByChannel[C]
}

/**
 * The data shown at (epoch, seq) is still what the exchange says, as of `sourceTs`: sent (at most every
 * STALE_AFTER_MS/4 per account) when a poll finds a channel unchanged, so the page can keep saying
 * honestly how old each value is without a data_update. An extension of CONTRACT §5.
 */
export interface FreshFrame {
  type: 'fresh'
  ts: number
  channels: Array<{ channel: Channel; epoch: number; seq: number; sourceTs: number }>
}

export interface StatusFrame {
  type: 'status'
  upstream: UpstreamState
  lastSuccessTs: number | null
  reason: string
  /** which part is affected: an account's polling, or the shared market ticker */
  scope?: 'account' | 'ticker'
}

export interface ErrorFrame {
  type: 'error'
  code: string
  message: string
  request_id?: string
}

export interface PongFrame {
  type: 'pong'
  request_id: string
  serverTime: number
}

export type ServerFrame = ConnectionFrame | AckFrame | DataUpdateFrame | FreshFrame | StatusFrame | ErrorFrame | PongFrame

// ---------- HTTP fallback (/api/dashboard) ----------

export interface ChannelMeta {
  epoch: number
  seq: number
  sourceTs: number
  stale: boolean
}

/** one key per channel (null until its first snapshot), and meta */
export type DashboardResponse = { [C in Channel]: SnapshotByChannel[C] | null } & {
  meta: {
    serverTime: number
    source: Source
    staleAfterMs: number
    upstream: UpstreamState
    lastSuccessTs: number | null
    reason: string | null
    hasCredentials: boolean
    channels: Partial<Record<Channel, ChannelMeta>>
  }
}
