/**
 * Pure mappers from LN Markets v3 responses to the wire snapshots of backend/schemas/ws-protocol.ts.
 */
import {
  HISTORY_MAX_ITEMS,
  type AccountSnapshot,
  type CrossOrder as WireCrossOrder,
  type CrossSnapshot,
  type FundingFeeEntry,
  type FuturesTrade,
  type HistorySnapshot,
  type PositionsSnapshot,
  type Realized,
  type TickerSnapshot,
} from '../schemas/ws-protocol.ts'
import type { Account, CrossOrder, FundingFee, FuturesCrossPosition, Ticker } from './schemas.ts'

/** `equity` here is the balance alone; withEquity completes it once positions and cross are known */
export function toAccountSnapshot(account: Account): AccountSnapshot {
  return {
    username: account.username,
    balance: account.balance,
    syntheticUsdBalance: account.syntheticUsdBalance,
    feeTier: account.feeTier,
    equity: account.balance,
  }
}

/**
 * equity = balance + running isolated margin and unrealised P&L (positions.totals) + the cross position's
 * `margin` (the cross account's collateral, realised P&L already in it) and `deltaPl` (the unrealised P&L of
 * the open cross exposure). Not `totalPl` (realised: counted twice) and not `runningMargin` (the part of
 * `margin` the open exposure locks, quantity / entryPrice / leverage, in the LN Markets SDKs' own maths: it
 * leaves out the free collateral). A part not fetched yet counts as zero.
 */
export function withEquity(acc: AccountSnapshot, latest: { positions?: PositionsSnapshot; cross?: CrossSnapshot }): AccountSnapshot {
  let equity = acc.balance
  if (latest.positions) equity += latest.positions.totals.margin + latest.positions.totals.pl
  const x = latest.cross?.position
  if (x) equity += x.margin + x.deltaPl
  return { ...acc, equity: Math.round(equity) }
}

export function toCrossOrder(o: CrossOrder): WireCrossOrder {
  return {
    id: o.id,
    type: o.type,
    side: o.side,
    price: o.price,
    quantity: o.quantity,
    tradingFee: o.tradingFee,
    open: o.open,
    filled: o.filled,
    canceled: o.canceled,
    createdAt: o.createdAt,
    filledAt: o.filledAt ?? null,
    canceledAt: o.canceledAt ?? null,
  }
}

export function toCrossSnapshot(position: FuturesCrossPosition | null, openOrders: readonly CrossOrder[]): CrossSnapshot {
  return {
    position: position && {
      quantity: position.quantity,
      leverage: position.leverage,
      margin: position.margin,
      entryPrice: position.entryPrice ?? null,
      liquidation: position.liquidation ?? null,
      totalPl: position.totalPl,
      deltaPl: position.deltaPl,
      fundingFees: position.fundingFees,
      tradingFees: position.tradingFees,
      initialMargin: position.initialMargin,
      maintenanceMargin: position.maintenanceMargin,
      runningMargin: position.runningMargin,
      updatedAt: position.updatedAt,
    },
    openOrders: openOrders.map(toCrossOrder),
  }
}

export const toFundingFeeEntry = (f: FundingFee, scope: 'isolated' | 'cross'): FundingFeeEntry => ({
  fee: f.fee,
  settlementId: f.settlementId,
  time: f.time,
  tradeId: f.tradeId ?? null,
  scope,
})

const DAY_MS = 86_400_000
const WINDOWS = { day: DAY_MS, week: 7 * DAY_MS, month: 30 * DAY_MS } as const
const ms = (iso: string | null | undefined): number => (iso ? Date.parse(iso) || 0 : 0)
/** when a closed or canceled trade left the book */
const endOf = (t: FuturesTrade): number => ms(t.closedAt) || ms(t.filledAt) || ms(t.createdAt)

/**
 * The history channel from the exchange's latest pages (newest first, each up to 1000 items): closed and
 * canceled isolated trades merged by id, filled cross orders, isolated and cross funding fees, each list
 * newest first and cut to HISTORY_MAX_ITEMS; `realized` sums over the last 24 h / 7 d / 30 d:
 * pl of closed (not canceled) trades; tradingFees = their opening + closing fees + filled cross orders'
 * tradingFee; fundingFees = funding paid (negative when received); net = pl − tradingFees − fundingFees.
 */
export function toHistorySnapshot(
  input: {
    closed: readonly FuturesTrade[]
    canceled: readonly FuturesTrade[]
    crossFilled: readonly CrossOrder[]
    isolatedFunding: readonly FundingFee[]
    crossFunding: readonly FundingFee[]
  },
  now: number,
): HistorySnapshot {
  const byId = new Map<string, FuturesTrade>()
  for (const t of input.closed) byId.set(t.id, t)
  for (const t of input.canceled) if (!byId.has(t.id)) byId.set(t.id, t)
  const trades = [...byId.values()].sort((a, b) => endOf(b) - endOf(a))
  const filled = [...input.crossFilled].sort((a, b) => ms(b.filledAt) - ms(a.filledAt))
  const funding = [
    ...input.isolatedFunding.map((f) => toFundingFeeEntry(f, 'isolated')),
    ...input.crossFunding.map((f) => toFundingFeeEntry(f, 'cross')),
  ].sort((a, b) => ms(b.time) - ms(a.time))
  const realizedOver = (windowMs: number): Realized => {
    const since = now - windowMs
    let pl = 0
    let tradingFees = 0
    let fundingFees = 0
    for (const t of trades) {
      if (!t.closed || t.canceled || endOf(t) < since) continue
      pl += t.pl
      tradingFees += t.openingFee + t.closingFee
    }
    for (const o of filled) if (ms(o.filledAt) >= since) tradingFees += o.tradingFee
    for (const f of funding) if (ms(f.time) >= since) fundingFees += f.fee
    return { pl, tradingFees, fundingFees, net: pl - tradingFees - fundingFees }
  }
  return {
    closed: trades.slice(0, HISTORY_MAX_ITEMS),
    crossFilled: filled.slice(0, HISTORY_MAX_ITEMS).map(toCrossOrder),
    fundingFees: funding.slice(0, HISTORY_MAX_ITEMS),
    realized: { day: realizedOver(WINDOWS.day), week: realizedOver(WINDOWS.week), month: realizedOver(WINDOWS.month) },
  }
}

/** totals are over the running (filled) trades only */
export function toPositionsSnapshot(running: readonly FuturesTrade[], open: readonly FuturesTrade[]): PositionsSnapshot {
  let margin = 0
  let pl = 0
  let quantity = 0
  for (const t of running) {
    margin += t.margin
    pl += t.pl
    quantity += t.quantity
  }
  return { running: [...running], open: [...open], totals: { margin, pl, quantity, count: running.length } }
}

/** best bid/ask = the price bucket with the smallest minSize (lnmarkets-api.md §4.1) */
export function toTickerSnapshot(ticker: Ticker): TickerSnapshot {
  let best: Ticker['prices'][number] | undefined
  for (const p of ticker.prices) if (!best || p.minSize < best.minSize) best = p
  return {
    index: ticker.index,
    lastPrice: ticker.lastPrice,
    bidPrice: best?.bidPrice ?? ticker.lastPrice,
    askPrice: best?.askPrice ?? ticker.lastPrice,
    fundingRate: ticker.fundingRate,
    fundingTime: ticker.fundingTime,
  }
}
