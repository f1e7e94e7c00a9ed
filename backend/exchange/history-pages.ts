/**
 * GET /api/history's engine: pages further back through the exchange's own cursors than the `history`
 * channel holds, per user, cached and coalesced.
 *
 * - `closed`: closed and canceled isolated trades (`/futures/isolated/trades/closed` + `/canceled`);
 * - `cross-filled`: filled cross orders (`/futures/cross/orders/filled`);
 * - `funding`: isolated and cross funding fees (`/futures/isolated/funding-fees` + `/futures/cross/funding-fees`),
 *   each marked with its `scope`.
 *
 * A kind read from two endpoints pages both with their own cursors: its `nextCursor` is our own token
 * (`m.` + base64url of `[cursorA, cursorB]`, null = that side is exhausted), so every item is returned
 * exactly once whatever the exchange's cursor means. A one-endpoint kind passes the exchange's cursor
 * through. Identical requests within `ttlMs` (same user, kind, cursor, limit) share one answer.
 */
import { LRUCache } from 'lru-cache'
import type { FundingFeeEntry, FuturesTrade, CrossOrder as WireCrossOrder } from '../schemas/ws-protocol.ts'
import type { CallOptions, LnmClient } from './client.ts'
import type { Page } from './schemas.ts'
import type { Credentials } from './signing.ts'
import { toCrossOrder, toFundingFeeEntry } from './snapshots.ts'

export const HISTORY_KINDS = ['closed', 'cross-filled', 'funding'] as const
export type HistoryKind = (typeof HISTORY_KINDS)[number]

export interface HistoryPage {
  kind: HistoryKind
  data: FuturesTrade[] | WireCrossOrder[] | FundingFeeEntry[]
  nextCursor: string | null
}

/** a cursor we cannot read: the route answers 400 */
export class BadCursorError extends Error {
  readonly code = 'bad_cursor'
}

const MAX_CURSOR = 512
const EXCHANGE_CURSOR = /^[\x21-\x7e]{1,256}$/

type Pair = [string | null, string | null]

export function encodePair(p: Pair): string | null {
  if (p[0] === null && p[1] === null) return null
  return 'm.' + Buffer.from(JSON.stringify(p)).toString('base64url')
}

/** undefined cursor = first page of both sides */
export function decodePair(cursor: string | undefined): Pair | 'first' {
  if (cursor === undefined) return 'first'
  if (cursor.length > MAX_CURSOR || !cursor.startsWith('m.'))
    throw new BadCursorError('this cursor was not issued for this kind of history')
  let v: unknown
  try {
    v = JSON.parse(Buffer.from(cursor.slice(2), 'base64url').toString('utf8'))
  } catch {
    throw new BadCursorError('unreadable cursor')
  }
  const ok = (x: unknown) => x === null || (typeof x === 'string' && EXCHANGE_CURSOR.test(x))
  if (!Array.isArray(v) || v.length !== 2 || !ok(v[0]) || !ok(v[1]) || (v[0] === null && v[1] === null))
    throw new BadCursorError('unreadable cursor')
  return v as Pair
}

function single(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined
  if (!EXCHANGE_CURSOR.test(cursor) || cursor.startsWith('m.'))
    throw new BadCursorError('this cursor was not issued for this kind of history')
  return cursor
}

const time = (iso: string | null | undefined) => (iso ? Date.parse(iso) || 0 : 0)

export interface HistoryPagesOptions {
  ttlMs?: number
  max?: number
}

export class HistoryPages {
  private readonly cache: LRUCache<string, Promise<HistoryPage>>

  constructor(
    private readonly client: Pick<
      LnmClient,
      'closedTrades' | 'canceledTrades' | 'crossFilledOrders' | 'isolatedFundingFees' | 'crossFundingFees'
    >,
    o: HistoryPagesOptions = {},
  ) {
    this.cache = new LRUCache({ max: o.max ?? 1000, ttl: o.ttlMs ?? 30_000 })
  }

  /** validates the cursor first (BadCursorError), then answers from cache or the exchange */
  get(
    userId: string,
    creds: Credentials,
    kind: HistoryKind,
    cursor: string | undefined,
    limit: number,
    opts?: CallOptions,
  ): Promise<HistoryPage> {
    const plan = this.plan(kind, cursor)
    const key = `${userId}\u0000${kind}\u0000${cursor ?? ''}\u0000${limit}`
    const hit = this.cache.get(key)
    if (hit) return hit
    // bulk reads: polls of the same key go first (the client's throttle lanes)
    const p = plan(creds, limit, { priority: 'low', ...opts })
    this.cache.set(key, p)
    // a failure is not cached: the next request tries again
    p.catch(() => {
      if (this.cache.get(key) === p) this.cache.delete(key)
    })
    return p
  }

  /** forget a user's pages (credentials changed or deleted) */
  forget(userId: string): void {
    const prefix = `${userId}\u0000`
    for (const k of [...this.cache.keys()]) if (k.startsWith(prefix)) this.cache.delete(k)
  }

  private plan(
    kind: HistoryKind,
    cursor: string | undefined,
  ): (creds: Credentials, limit: number, opts?: CallOptions) => Promise<HistoryPage> {
    const c = this.client
    switch (kind) {
      case 'cross-filled': {
        const cur = single(cursor)
        return async (creds, limit, opts) => {
          const page = await c.crossFilledOrders(creds, { limit, cursor: cur }, opts)
          return { kind, data: page.data.map(toCrossOrder), nextCursor: page.nextCursor }
        }
      }
      case 'closed': {
        const pair = decodePair(cursor)
        return async (creds, limit, opts) => {
          const [a, b] = await both(
            pair,
            (cur) => c.closedTrades(creds, { limit, cursor: cur }, opts),
            (cur) => c.canceledTrades(creds, { limit, cursor: cur }, opts),
          )
          const seen = new Set<string>()
          const data: FuturesTrade[] = []
          for (const t of [...(a?.data ?? []), ...(b?.data ?? [])]) {
            if (seen.has(t.id)) continue
            seen.add(t.id)
            data.push(t)
          }
          data.sort((x, y) => (time(y.closedAt) || time(y.createdAt)) - (time(x.closedAt) || time(x.createdAt)))
          return { kind, data, nextCursor: encodePair([next(pair, 0, a), next(pair, 1, b)]) }
        }
      }
      case 'funding': {
        const pair = decodePair(cursor)
        return async (creds, limit, opts) => {
          const [a, b] = await both(
            pair,
            (cur) => c.isolatedFundingFees(creds, { limit, cursor: cur }, opts),
            (cur) => c.crossFundingFees(creds, { limit, cursor: cur }, opts),
          )
          const data = [
            ...(a?.data ?? []).map((f) => toFundingFeeEntry(f, 'isolated')),
            ...(b?.data ?? []).map((f) => toFundingFeeEntry(f, 'cross')),
          ]
          data.sort((x, y) => time(y.time) - time(x.time))
          return { kind, data, nextCursor: encodePair([next(pair, 0, a), next(pair, 1, b)]) }
        }
      }
    }
  }
}

/** fetch the sides still open: the first page of both, or each side whose cursor is not exhausted */
async function both<A, B>(
  pair: Pair | 'first',
  fa: (c?: string) => Promise<Page<A>>,
  fb: (c?: string) => Promise<Page<B>>,
): Promise<[Page<A> | null, Page<B> | null]> {
  const ca = pair === 'first' ? undefined : pair[0]
  const cb = pair === 'first' ? undefined : pair[1]
  return Promise.all([ca === null ? null : fa(ca), cb === null ? null : fb(cb)])
}

function next(pair: Pair | 'first', side: 0 | 1, page: Page<unknown> | null): string | null {
  if (pair !== 'first' && pair[side] === null) return null
  return page?.nextCursor ?? null
}
