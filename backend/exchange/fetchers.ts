/**
 * How each account channel of the table (backend/schemas/channels.ts) is fetched from LN Markets: one
 * fetcher per channel, from the client's calls to the wire snapshot (mappers in snapshots.ts). Typed as
 * `AccountFetchers`, so a channel added to the table without a fetcher here does not compile.
 */
import type { AccountFetchers } from '../streaming/sources.ts'
import type { LnmClient } from './client.ts'
import { toAccountSnapshot, toPositionsSnapshot } from './snapshots.ts'

export function accountFetchers(client: LnmClient): AccountFetchers {
  return {
    account: async (creds, o) => toAccountSnapshot(await client.account(creds, o)),
    positions: async (creds, o) => {
      const [running, open] = await Promise.all([client.runningTrades(creds, o), client.openTrades(creds, o)])
      return toPositionsSnapshot(running, open)
    },
  }
}
