/**
 * The shapes of the `cross` and `history` channels as the dashboard reads them: the gateway's own wire types
 * (backend/schemas/ws-protocol.ts, LN Markets v3 field names), imported as types so the two cannot drift.
 */
import type { FuturesTrade, Realized } from '../../../../../backend/schemas/ws-protocol.ts'

export type {
  CrossOrder,
  CrossSnapshot,
  FundingFeeEntry,
  FuturesCrossPosition,
  HistorySnapshot,
} from '../../../../../backend/schemas/ws-protocol.ts'

export type RealizedWindow = Realized

/** closed and canceled isolated trades: the FuturesTrade fields the history shows */
export type ClosedTrade = Pick<
  FuturesTrade,
  | 'id'
  | 'type'
  | 'side'
  | 'quantity'
  | 'margin'
  | 'leverage'
  | 'price'
  | 'entryPrice'
  | 'exitPrice'
  | 'pl'
  | 'openingFee'
  | 'closingFee'
  | 'sumFundingFees'
  | 'closed'
  | 'canceled'
  | 'createdAt'
  | 'filledAt'
  | 'closedAt'
>

export const isLongSide = (side: string): boolean => side === 'buy' || side === 'b' || side === 'long'
