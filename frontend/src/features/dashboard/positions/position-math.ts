/**
 * LN Markets' inverse-futures arithmetic for the positions table. Pure, so it is unit-testable.
 * P&L (sats): long = quantity · (1/entry − 1/price) · 1e8; short is the negative.
 */
import type { FuturesTrade } from '../../../../../backend/schemas/ws-protocol.ts'
import type { FuturesCrossPosition } from '../account-data/types.ts'

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
  /** the price the estimate uses (the one the position would close at), and which price that is */
  markPrice: number
  markSource: MarkSource
  /** sats: gross P&L shown — the live estimate when the price is newer than the positions, else the exchange's */
  pl: number
  plPct: number
  /** pl comes from the live price, not from the exchange's last value */
  plEstimated: boolean
  /** sats: the exchange's own P&L figure, as of the positions snapshot */
  exchangePl: number
  /** sats: opening + closing trading fees */
  fees: number
  /** sats: funding paid (LN Markets sumFundingFees; negative when received) */
  funding: number
  /** sats: pl − fees − funding */
  netPl: number
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

/** 'bid' for a long (it closes by selling), 'ask' for a short, 'last' when the book is not known, 'entry' without a price */
export type MarkSource = 'bid' | 'ask' | 'last' | 'entry'

/** the price a position would close at: a long sells at the bid, a short buys at the ask */
export function markFor(side: Side, live: LivePrice | null, entry: number): { price: number; source: MarkSource } {
  if (!live || !(live.price > 0)) return { price: entry, source: 'entry' }
  if (side === 'long' && live.bid && live.bid > 0) return { price: live.bid, source: 'bid' }
  if (side === 'short' && live.ask && live.ask > 0) return { price: live.ask, source: 'ask' }
  return { price: live.price, source: 'last' }
}

/** the tooltip that says which price the estimate uses and why, and how far the last price is from it */
export function markExplanation(r: Pick<PositionRow, 'side' | 'markPrice' | 'markSource'>, lastPrice: number | undefined): string {
  const why =
    r.markSource === 'bid'
      ? 'the bid: a long closes by selling'
      : r.markSource === 'ask'
        ? 'the ask: a short closes by buying'
        : r.markSource === 'last'
          ? 'the last price (no bid/ask known)'
          : 'the entry price (no market price yet)'
  const diff = lastPrice && lastPrice > 0 && r.markSource !== 'last' ? r.markPrice - lastPrice : 0
  const differs = diff !== 0 ? `; the last price ${lastPrice!.toFixed(1)} differs by ${Math.abs(diff).toFixed(1)}` : ''
  return `Estimated P&L uses ${r.markPrice.toFixed(1)}, ${why}${differs}. The exchange's own P&L is shown with the positions' age.`
}

export interface LivePrice {
  /** last price */
  price: number
  bid?: number | undefined
  ask?: number | undefined
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
    const mark = markFor(side, live, entry)
    const markPrice = mark.price
    const pl = useLive ? estimatePl(side, t.quantity, entry, markPrice) : t.pl
    const fees = t.openingFee + t.closingFee
    const funding = t.sumFundingFees
    return {
      id: t.id,
      side,
      quantity: t.quantity,
      entry,
      liquidation: t.liquidation,
      distancePct: liquidationDistancePct(side, t.liquidation, markPrice),
      leverage: t.leverage,
      margin: t.margin,
      markPrice,
      markSource: mark.source,
      pl,
      plPct: t.margin > 0 ? (pl / t.margin) * 100 : 0,
      plEstimated: useLive,
      exchangePl: t.pl,
      fees,
      funding,
      netPl: pl - fees - funding,
      stoploss: t.stoploss,
      takeprofit: t.takeprofit,
    }
  })
}

export type SortKey = Exclude<keyof PositionRow, 'id' | 'plEstimated' | 'markSource'>
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
  fees: number
  funding: number
  netPl: number
  /** the smallest distance to liquidation */
  minDistancePct: number
}

export function totalsOf(rows: readonly PositionRow[]): Totals {
  let quantity = 0
  let margin = 0
  let pl = 0
  let fees = 0
  let funding = 0
  let netPl = 0
  let minDistancePct = Number.POSITIVE_INFINITY
  for (const r of rows) {
    quantity += r.quantity
    margin += r.margin
    pl += r.pl
    fees += r.fees
    funding += r.funding
    netPl += r.netPl
    minDistancePct = Math.min(minDistancePct, r.distancePct)
  }
  return {
    count: rows.length,
    quantity,
    margin,
    pl,
    plPct: margin > 0 ? (pl / margin) * 100 : 0,
    plEstimated: rows.some((r) => r.plEstimated),
    fees,
    funding,
    netPl,
    minDistancePct,
  }
}

/**
 * The cross-margin position as a row, so it is counted in the totals and watched by the liquidation alert.
 * Its P&L is the exchange's totalPl (cross P&L is not re-estimated between polls).
 */
export function crossRow(pos: FuturesCrossPosition | null, live: LivePrice | null): PositionRow | null {
  if (!pos || pos.quantity === 0) return null
  const side: Side = pos.quantity > 0 ? 'long' : 'short'
  const quantity = Math.abs(pos.quantity)
  const entry = pos.entryPrice ?? 0
  const mark = markFor(side, live, entry)
  const liquidation = pos.liquidation ?? 0
  const fees = pos.tradingFees
  const funding = pos.fundingFees
  return {
    id: 'cross',
    side,
    quantity,
    entry,
    liquidation,
    distancePct: liquidationDistancePct(side, liquidation, mark.price),
    leverage: pos.leverage,
    margin: pos.margin,
    markPrice: mark.price,
    markSource: mark.source,
    pl: pos.totalPl,
    plPct: pos.margin > 0 ? (pos.totalPl / pos.margin) * 100 : 0,
    plEstimated: false,
    exchangePl: pos.totalPl,
    fees,
    funding,
    netPl: pos.totalPl - fees - funding,
    stoploss: 0,
    takeprofit: 0,
  }
}
