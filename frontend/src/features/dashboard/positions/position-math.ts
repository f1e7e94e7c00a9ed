/**
 * LN Markets' inverse-futures arithmetic for the positions table. Pure, so it is unit-testable.
 * P&L (sats): long = quantity · (1/entry − 1/price) · 1e8; short is the negative.
 */
import type { FuturesTrade } from '../../../../../backend/schemas/ws-protocol.ts'

export type Side = 'long' | 'short'

export interface PositionRow {
  id: string
  side: Side
  /** USD */
  quantity: number
  entry: number
  liquidation: number
  /** % of the current price the market must move against the position to liquidate it */
  distancePct: number
  leverage: number
  /** sats */
  margin: number
  /** sats */
  pl: number
  plPct: number
  /** pl comes from the live price, not from the exchange's last value */
  plEstimated: boolean
  stoploss: number
  takeprofit: number
}

export const sideOf = (t: Pick<FuturesTrade, 'side'>): Side => (t.side === 'buy' ? 'long' : 'short')

export function estimatePl(side: Side, quantity: number, entry: number, price: number): number {
  if (!(entry > 0) || !(price > 0)) return 0
  const long = quantity * (1 / entry - 1 / price) * 1e8
  return side === 'long' ? long : -long
}

export function liquidationDistancePct(side: Side, liquidation: number, price: number): number {
  if (!(price > 0) || !(liquidation > 0)) return Number.POSITIVE_INFINITY
  return side === 'long' ? ((price - liquidation) / price) * 100 : ((liquidation - price) / price) * 100
}

export interface LivePrice {
  price: number
  /** server-clock ms of the price */
  sourceTs: number
}

/**
 * Rows for the running positions. When the live price is newer than the positions snapshot, P&L is
 * estimated from it and flagged, until the next real value arrives.
 */
export function toRows(trades: readonly FuturesTrade[], positionsTs: number, live: LivePrice | null): PositionRow[] {
  const useLive = live !== null && live.price > 0 && live.sourceTs > positionsTs
  return trades.map((t) => {
    const side = sideOf(t)
    const entry = t.entryPrice ?? t.price
    const markPrice = live && live.price > 0 ? live.price : entry
    const pl = useLive ? estimatePl(side, t.quantity, entry, live.price) : t.pl
    return {
      id: t.id,
      side,
      quantity: t.quantity,
      entry,
      liquidation: t.liquidation,
      distancePct: liquidationDistancePct(side, t.liquidation, markPrice),
      leverage: t.leverage,
      margin: t.margin,
      pl,
      plPct: t.margin > 0 ? (pl / t.margin) * 100 : 0,
      plEstimated: useLive,
      stoploss: t.stoploss,
      takeprofit: t.takeprofit,
    }
  })
}

export type SortKey = Exclude<keyof PositionRow, 'id' | 'plEstimated'>
export interface Sort {
  key: SortKey
  dir: 'asc' | 'desc'
}
/** riskiest first */
export const DEFAULT_SORT: Sort = { key: 'distancePct', dir: 'asc' }

export function sortRows(rows: readonly PositionRow[], sort: Sort): PositionRow[] {
  const sign = sort.dir === 'asc' ? 1 : -1
  return [...rows].sort((a, b) => {
    const x = a[sort.key]
    const y = b[sort.key]
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))
    return c !== 0 ? sign * c : a.id.localeCompare(b.id)
  })
}

export interface Totals {
  count: number
  quantity: number
  margin: number
  pl: number
  plPct: number
  plEstimated: boolean
  /** the smallest distance to liquidation */
  minDistancePct: number
}

export function totalsOf(rows: readonly PositionRow[]): Totals {
  let quantity = 0
  let margin = 0
  let pl = 0
  let minDistancePct = Number.POSITIVE_INFINITY
  for (const r of rows) {
    quantity += r.quantity
    margin += r.margin
    pl += r.pl
    minDistancePct = Math.min(minDistancePct, r.distancePct)
  }
  return { count: rows.length, quantity, margin, pl, plPct: margin > 0 ? (pl / margin) * 100 : 0, plEstimated: rows.some((r) => r.plEstimated), minDistancePct }
}
