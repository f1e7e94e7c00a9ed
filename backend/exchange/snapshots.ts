/**
 * Pure mappers from LN Markets v3 responses to the wire snapshots of backend/schemas/ws-protocol.ts.
 */
import type { AccountSnapshot, FuturesTrade, PositionsSnapshot, TickerSnapshot } from '../schemas/ws-protocol.ts'
import type { Account, Ticker } from './schemas.ts'

export function toAccountSnapshot(account: Account): AccountSnapshot {
  return {
    username: account.username,
    balance: account.balance,
    syntheticUsdBalance: account.syntheticUsdBalance,
    feeTier: account.feeTier,
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
