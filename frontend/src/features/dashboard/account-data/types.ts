/**
 * The shapes of the `cross` and `history` channels (CONTRACT §6; LN Markets v3 field names), as the dashboard
 * reads them. They mirror the gateway's exchange schemas; once the gateway's wire types carry these channels,
 * these become `import type` re-exports of them.
 */

export interface FuturesCrossPosition {
  id?: string
  /** USD; the sign is the side (positive long, negative short) */
  quantity: number
  leverage: number
  margin: number
  entryPrice: number | null
  liquidation: number | null
  initialMargin: number
  maintenanceMargin: number
  runningMargin: number
  totalPl: number
  deltaPl: number
  fundingFees: number
  tradingFees: number
  updatedAt: string
}

export interface CrossOrder {
  id: string
  type: string
  /** 'buy' | 'sell' (some SDKs say 'b' | 's') */
  side: string
  price: number
  quantity: number
  tradingFee: number
  open: boolean
  filled: boolean
  canceled: boolean
  createdAt: string
  filledAt: string | null
  canceledAt: string | null
}

export interface CrossSnapshot {
  position: FuturesCrossPosition | null
  openOrders: CrossOrder[]
}

export interface FundingFeeEntry {
  fee: number
  settlementId: string
  time: string
  tradeId: string | null
  scope: 'isolated' | 'cross'
}

export interface RealizedWindow {
  pl: number
  tradingFees: number
  fundingFees: number
  net: number
}

/** closed and canceled isolated trades: FuturesTrade fields the history shows */
export interface ClosedTrade {
  id: string
  type: string
  side: 'buy' | 'sell'
  quantity: number
  margin: number
  leverage: number
  price: number
  entryPrice: number | null
  exitPrice: number | null
  pl: number
  openingFee: number
  closingFee: number
  sumFundingFees: number
  closed: boolean
  canceled: boolean
  createdAt: string
  filledAt: string | null
  closedAt: string | null
}

export interface HistorySnapshot {
  closed: ClosedTrade[]
  crossFilled: CrossOrder[]
  fundingFees: FundingFeeEntry[]
  realized: { day: RealizedWindow; week: RealizedWindow; month: RealizedWindow }
}

export const isLongSide = (side: string): boolean => side === 'buy' || side === 'b' || side === 'long'
