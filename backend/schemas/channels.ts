/**
 * THE channel table. Every channel the gateway streams is one row here; everything else derives from it:
 * the wire names and their protocol bits (bit = 1 << row index), the cache slots, the /api/dashboard body,
 * the pollers' schedule, the hub's rooms (scope) and the dashboard's realtime client (which imports this
 * module: it has no dependencies). The snapshot schema of each channel is `SNAPSHOT_SCHEMAS[name]` in
 * ws-protocol.ts and its fetcher is `AccountFetchers[name]` (backend/exchange/fetchers.ts); both are
 * `Record<Channel, …>`-typed, so a row without them does not compile.
 *
 * Append rows only: a row's index is its protocol bit, which clients may have stored.
 */

/** how an account channel is kept up to date (market channels have their own feed) */
export type Cadence =
  /** the market feed (stream, REST fallback): shared by every user */
  | { kind: 'feed' }
  /** fetched by every `everyPolls`-th poll of the account (and whenever the exchange says it changed) */
  | { kind: 'poll'; everyPolls: number }
  /** fetched at most every `minIntervalMs`, and whenever the exchange says it changed; never on every poll */
  | { kind: 'slow'; minIntervalMs: number }

export interface ChannelRow {
  readonly name: string
  /** account: one snapshot per user (room `account:<userId>`); market: one for everybody (room `ticker`) */
  readonly scope: 'account' | 'market'
  readonly cadence: Cadence
}

export const CHANNEL_TABLE = [
  { name: 'account', scope: 'account', cadence: { kind: 'poll', everyPolls: 1 } },
  { name: 'positions', scope: 'account', cadence: { kind: 'poll', everyPolls: 1 } },
  { name: 'ticker', scope: 'market', cadence: { kind: 'feed' } },
  // cross margin changes by orders and the price: reconciled every other poll (and at once on an exchange event)
  { name: 'cross', scope: 'account', cadence: { kind: 'poll', everyPolls: 2 } },
  // closed trades, filled cross orders, funding fees: on an exchange event that says so, else every 10 min
  { name: 'history', scope: 'account', cadence: { kind: 'slow', minIntervalMs: 600_000 } },
] as const satisfies readonly ChannelRow[]

type Row = (typeof CHANNEL_TABLE)[number]
export type Channel = Row['name']
export type AccountChannel = Extract<Row, { scope: 'account' }>['name']
export type MarketChannel = Extract<Row, { scope: 'market' }>['name']

export const CHANNELS: readonly Channel[] = CHANNEL_TABLE.map((r) => r.name)
export const ACCOUNT_CHANNELS = CHANNEL_TABLE.filter((r) => r.scope === 'account').map((r) => r.name) as readonly AccountChannel[]
export const MARKET_CHANNELS = CHANNEL_TABLE.filter((r) => r.scope === 'market').map((r) => r.name) as readonly MarketChannel[]

/** the row index of each channel: its cache slot; its protocol bit is 1 << index */
export const CHANNEL_INDEX = Object.fromEntries(CHANNEL_TABLE.map((r, i) => [r.name, i])) as Readonly<Record<Channel, number>>
export const CHANNEL_BITS = Object.fromEntries(CHANNEL_TABLE.map((r, i) => [r.name, 1 << i])) as Readonly<Record<Channel, number>>
export const ALL_CHANNELS: number = (1 << CHANNEL_TABLE.length) - 1
export const ACCOUNT_CHANNEL_BITS: number = ACCOUNT_CHANNELS.reduce((m, c) => m | CHANNEL_BITS[c], 0)
export const MARKET_CHANNEL_BITS: number = MARKET_CHANNELS.reduce((m, c) => m | CHANNEL_BITS[c], 0)

export const channelRow = (c: Channel): ChannelRow => CHANNEL_TABLE[CHANNEL_INDEX[c]]!
export const scopeOf = (c: Channel): 'account' | 'market' => channelRow(c).scope
/**
 * How old a channel's data may be before it is stale: STALE_AFTER_MS, plus the refresh period of a slow channel.
 * `history` is fetched every 10 minutes (or on an exchange event): between two fetches it is the truth as of its
 * fetch, shown with its age, and stale only once a refresh is overdue.
 */
export function staleLimitOf(c: Channel, staleAfterMs: number): number {
  const cadence = channelRow(c).cadence
  return cadence.kind === 'slow' ? cadence.minIntervalMs + staleAfterMs : staleAfterMs
}
export const isChannel = (s: unknown): s is Channel => typeof s === 'string' && Object.hasOwn(CHANNEL_INDEX, s)
