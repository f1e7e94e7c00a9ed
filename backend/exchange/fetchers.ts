/**
 * How each account channel of the table (backend/schemas/channels.ts) is fetched from LN Markets: one
 * fetcher per channel, from the client's calls to the wire snapshot (pure mappers in snapshots.ts). Typed
 * as `AccountFetchers`, so a channel added to the table without a fetcher here does not compile.
 */
import type { AccountDerivations, AccountFetchers } from '../streaming/sources.ts'
import type { LnmClient } from './client.ts'
import { toAccountSnapshot, toCrossSnapshot, toHistorySnapshot, toPositionsSnapshot, withEquity } from './snapshots.ts'

/** items per history page asked of the exchange: enough for 30 days of realised totals for most traders */
export const HISTORY_FETCH_LIMIT = 1000

export function accountFetchers(client: LnmClient, now: () => number = Date.now): AccountFetchers {
  return {
    account: async (creds, o) => toAccountSnapshot(await client.account(creds, o)),
    positions: async (creds, o) => {
      const [running, open] = await Promise.all([client.runningTrades(creds, o), client.openTrades(creds, o)])
      return toPositionsSnapshot(running, open)
    },
    cross: async (creds, o) => {
      const [position, openOrders] = await Promise.all([client.crossPosition(creds, o), client.crossOpenOrders(creds, o)])
      return toCrossSnapshot(position, openOrders)
    },
    history: async (creds, opts) => {
      // five bulk reads: the key's throttle serves polls first, so a history load never holds up positions
      const o = { ...opts, priority: 'low' as const }
      const q = { limit: HISTORY_FETCH_LIMIT }
      const [closed, canceled, crossFilled, isolatedFunding, crossFunding] = await Promise.all([
        client.closedTrades(creds, q, o),
        client.canceledTrades(creds, { limit: 50 }, o),
        client.crossFilledOrders(creds, q, o),
        client.isolatedFundingFees(creds, q, o),
        client.crossFundingFees(creds, q, o),
      ])
      return toHistorySnapshot(
        {
          closed: closed.data,
          canceled: canceled.data,
          crossFilled: crossFilled.data,
          isolatedFunding: isolatedFunding.data,
          crossFunding: crossFunding.data,
        },
        now(),
      )
    },
  }
}

/** account.equity needs the running positions and the cross position */
export const ACCOUNT_DERIVATIONS: AccountDerivations = {
  account: { from: ['positions', 'cross'], apply: (acc, latest) => withEquity(acc, latest) },
}
