/**
 * TypeBox schemas of the LN Markets REST v3 responses the gateway reads (lnmarkets-api.md §4.1).
 * Objects allow additional properties (the exchange may add fields); required fields are the ones we use.
 */
import Type, { type Static, type TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { FuturesTradeSchema } from '../schemas/ws-protocol.ts'

export { FuturesTradeSchema }
export type { FuturesTrade } from '../schemas/ws-protocol.ts'

const Nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])

export const PingSchema = Type.String()

/** GET /v3/time → {"time": ISO}. A numeric (ms) form is accepted too. */
export const TimeSchema = Type.Object({ time: Type.Union([Type.String({ minLength: 1 }), Type.Number()]) })
export type Time = Static<typeof TimeSchema>

export const AccountSchema = Type.Object({
  id: Type.Optional(Type.String()),
  username: Type.String(),
  balance: Type.Number(),
  syntheticUsdBalance: Type.Number(),
  feeTier: Type.Number(),
  email: Type.Optional(Nullable(Type.String())),
  linkingPublicKey: Type.Optional(Nullable(Type.String())),
})
export type Account = Static<typeof AccountSchema>

export const FuturesTradeListSchema = Type.Array(FuturesTradeSchema)

/**
 * What the client accepts for a trade on the wire: FuturesTrade with its nullable keys allowed to be missing
 * (a missing nullable key must not fail a whole poll); the client fills them in with null.
 */
export const FuturesTradeWireSchema = Type.Object({
  ...FuturesTradeSchema.properties,
  entryPrice: Type.Optional(Nullable(Type.Number())),
  entryMargin: Type.Optional(Nullable(Type.Number())),
  exitPrice: Type.Optional(Nullable(Type.Number())),
  filledAt: Type.Optional(Nullable(Type.String())),
  closedAt: Type.Optional(Nullable(Type.String())),
  clientId: Type.Optional(Nullable(Type.String())),
})
export type FuturesTradeWire = Static<typeof FuturesTradeWireSchema>

export const PriceBucketSchema = Type.Object({
  minSize: Type.Number(),
  maxSize: Type.Number(),
  bidPrice: Type.Number(),
  askPrice: Type.Number(),
})
export const TickerSchema = Type.Object({
  index: Type.Number(),
  lastPrice: Type.Number(),
  prices: Type.Array(PriceBucketSchema),
  fundingRate: Type.Number(),
  fundingTime: Type.String(),
})
export type Ticker = Static<typeof TickerSchema>

export const CandleSchema = Type.Object({
  time: Type.String(),
  open: Type.Number(),
  high: Type.Number(),
  low: Type.Number(),
  close: Type.Number(),
  volume: Type.Number(),
})
export type Candle = Static<typeof CandleSchema>

export const Paginated = <T extends TSchema>(item: T) => Type.Object({ data: Type.Array(item), nextCursor: Nullable(Type.String()) })
export interface Page<T> {
  data: T[]
  nextCursor: string | null
}

export const ClosedTradesPageSchema = Paginated(FuturesTradeSchema)
export const TradesWirePageSchema = Paginated(FuturesTradeWireSchema)
export const CandlesPageSchema = Paginated(CandleSchema)

/**
 * Cross margin (§4.1 "Futures cross margin"). Lenient like the SDKs: `entryPrice` and `liquidation` are
 * nullable AND may be missing (the Python SDK defaults them to None); `id`/`uid` are not required.
 */
const OptNum = Type.Optional(Nullable(Type.Number()))
export const FuturesCrossPositionSchema = Type.Object({
  id: Type.Optional(Type.String()),
  uid: Type.Optional(Type.String()),
  quantity: Type.Number(),
  leverage: Type.Number(),
  margin: Type.Number(),
  entryPrice: OptNum,
  liquidation: OptNum,
  initialMargin: Type.Number(),
  maintenanceMargin: Type.Number(),
  runningMargin: Type.Number(),
  totalPl: Type.Number(),
  deltaPl: Type.Number(),
  fundingFees: Type.Number(),
  tradingFees: Type.Number(),
  updatedAt: Type.String(),
})
/** as returned by the client: a missing nullable key is normalised to `null` */
export type FuturesCrossPosition = Omit<Static<typeof FuturesCrossPositionSchema>, 'entryPrice' | 'liquidation'> & {
  entryPrice: number | null
  liquidation: number | null
}

/** `type` and `side` are plain strings: the SDKs disagree on `side` ('buy'|'sell' vs 'b'|'s'). */
export const CrossOrderSchema = Type.Object({
  id: Type.String(),
  uid: Type.Optional(Type.String()),
  type: Type.String(),
  side: Type.String(),
  price: Type.Number(),
  quantity: Type.Number(),
  tradingFee: Type.Number(),
  open: Type.Boolean(),
  filled: Type.Boolean(),
  canceled: Type.Boolean(),
  createdAt: Type.String(),
  filledAt: Type.Optional(Nullable(Type.String())),
  canceledAt: Type.Optional(Nullable(Type.String())),
})
export type CrossOrder = Omit<Static<typeof CrossOrderSchema>, 'filledAt' | 'canceledAt'> & {
  filledAt: string | null
  canceledAt: string | null
}

/** `/futures/isolated/funding-fees` and `/futures/cross/funding-fees` items; `tradeId` is null (or absent) for cross. */
export const FundingFeeSchema = Type.Object({
  fee: Type.Number(),
  settlementId: Type.String(),
  time: Type.String(),
  tradeId: Type.Optional(Nullable(Type.String())),
})
export type FundingFee = Omit<Static<typeof FundingFeeSchema>, 'tradeId'> & { tradeId: string | null }

/** GET /futures/cross/position: a position object; `null` is accepted too (no cross account). */
export const CrossPositionResponseSchema = Nullable(FuturesCrossPositionSchema)
export const CrossOrderListSchema = Type.Array(CrossOrderSchema)
export const CrossOrdersPageSchema = Paginated(CrossOrderSchema)
export const FundingFeesPageSchema = Paginated(FundingFeeSchema)

export const OracleIndexSchema = Type.Array(Type.Object({ index: Type.Number(), time: Type.String() }))
export type OracleIndex = Static<typeof OracleIndexSchema>
export const OracleLastPriceSchema = Type.Array(Type.Object({ lastPrice: Type.Number(), time: Type.String() }))
export type OracleLastPrice = Static<typeof OracleLastPriceSchema>

/** REST error body (§2.6): `{code?, message?, details?}`. */
export const ErrorBodySchema = Type.Object({ code: Type.Optional(Type.String()), message: Type.Optional(Type.String()) })

/** A compiled validator: `check` narrows, `firstError` gives a short, secret-free reason. */
export interface Validator<T> {
  name: string
  check(value: unknown): value is T
  firstError(value: unknown): string
}

export function validator<S extends TSchema>(name: string, schema: S): Validator<Static<S>> {
  const compiled = Compile(schema)
  return {
    name,
    check: (v: unknown): v is Static<S> => compiled.Check(v),
    firstError(v: unknown) {
      for (const e of compiled.Errors(v)) return `${e.instancePath || '/'} ${e.message}`
      return 'invalid'
    },
  }
}

export const V = {
  ping: validator('Ping', PingSchema),
  time: validator('Time', TimeSchema),
  account: validator('Account', AccountSchema),
  trade: validator('FuturesTrade', FuturesTradeSchema),
  trades: validator('FuturesTrade[]', FuturesTradeListSchema),
  closedTrades: validator('Paginated<FuturesTrade>', ClosedTradesPageSchema),
  tradesWire: validator('FuturesTrade[]', Type.Array(FuturesTradeWireSchema)),
  tradesWirePage: validator('Paginated<FuturesTrade>', TradesWirePageSchema),
  crossPosition: validator('FuturesCrossPosition|null', CrossPositionResponseSchema),
  crossOrders: validator('CrossOrder[]', CrossOrderListSchema),
  crossOrdersPage: validator('Paginated<CrossOrder>', CrossOrdersPageSchema),
  fundingFees: validator('Paginated<FundingFee>', FundingFeesPageSchema),
  ticker: validator('Ticker', TickerSchema),
  candles: validator('Paginated<Candle>', CandlesPageSchema),
  oracleIndex: validator('OracleIndex[]', OracleIndexSchema),
  oracleLastPrice: validator('OracleLastPrice[]', OracleLastPriceSchema),
  errorBody: validator('ErrorBody', ErrorBodySchema),
}
