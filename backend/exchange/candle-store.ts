/**
 * GET /api/candles's engine: the exchange's public candles (`/futures/candles`), cached on the gateway and
 * shared by every user — market data is the same for everybody, so a thousand dashboards opening the chart
 * cost the exchange one call per (range, block), not a thousand.
 *
 * - Time is cut into blocks of BLOCK_CANDLES candles aligned on the epoch (so on UTC boundaries); a request is
 *   answered from the blocks it overlaps, each fetched once (following the exchange's cursor if it pages).
 * - A block that ended before it was fetched (plus a grace for the exchange to settle its last candle) never
 *   changes again and stays cached until the LRU drops it; the block holding "now" is refetched after
 *   `liveTtlMs`.
 * - Concurrent misses for the same block share one upstream call (and the client coalesces identical GETs too);
 *   every call goes through the client's public throttle (1/s) and circuit breaker.
 * - When the exchange fails and an older copy of every block is still held, that copy is served marked
 *   `stale` with its age; with nothing cached the error propagates (the route answers 503).
 *
 * The store calls the client's coalesced `get` rather than `candles()`, whose own 10 s cache would make the
 * `fetchedAt` reported here later than the exchange's actual answer.
 */
import { LRUCache } from 'lru-cache'
import type { CallOptions, LnmClient } from './client.ts'
import { V } from './schemas.ts'

const MINUTE = 60_000
/** the ranges the dashboard offers, in ms (the exchange has more; these are the ones the API accepts) */
export const CANDLE_RANGES = {
  '1m': MINUTE,
  '5m': 5 * MINUTE,
  '15m': 15 * MINUTE,
  '1h': 60 * MINUTE,
  '4h': 240 * MINUTE,
  '1d': 1440 * MINUTE,
} as const
export type CandleRange = keyof typeof CANDLE_RANGES
/** candles shown when no `from` is given: hours to months of history depending on the range */
export const DEFAULT_CANDLES: Record<CandleRange, number> = { '1m': 360, '5m': 288, '15m': 288, '1h': 168, '4h': 180, '1d': 365 }
/** most candles one request may span */
export const MAX_CANDLES = 1000
/** candles per cached block (one upstream call each; the exchange gives up to 1000 a page) */
export const BLOCK_CANDLES = 500
/** a block fetched this long after its end is final (the exchange has settled its last candle) */
const FINAL_GRACE_MS = 30_000
/** pages followed per block at most (a block is 500 candles; the exchange pages at 1000) */
const MAX_PAGES = 4
/**
 * distinct blocks being fetched at once at most: every fetch waits for the public throttle (1/s) that the REST
 * ticker fallback also uses, so one user paging far back must not queue minutes of calls in front of it
 */
export const MAX_INFLIGHT_BLOCKS = 6

/** too many distinct blocks already waiting for the exchange: the route answers 503 with Retry-After */
export class CandlesBusyError extends Error {
  readonly code = 'candles_busy'
}

export interface ApiCandle {
  /** candle open time, epoch ms (UTC) */
  time: number
  open: number
  high: number
  low: number
  close: number
  volume: number
}

export interface CandleAnswer {
  range: CandleRange
  from: number
  to: number
  candles: ApiCandle[]
  /** epoch ms of the exchange answer the oldest block used comes from */
  fetchedAt: number
  /** true when the exchange failed and an older copy was served */
  stale: boolean
}

interface Block {
  candles: ApiCandle[]
  fetchedAt: number
  end: number
}

export interface CandleStoreOptions {
  /** how long the block holding "now" is served before the exchange is asked again (default 10 s) */
  liveTtlMs?: number
  /** blocks kept (default 200, at most 100 000 candles) */
  max?: number
  now?: () => number
  onHit?: () => void
  onMiss?: () => void
}

export class CandleStore {
  private readonly blocks: LRUCache<string, Block>
  private readonly inflight = new Map<string, Promise<Block>>()
  private readonly liveTtlMs: number
  private readonly now: () => number

  constructor(
    private readonly client: Pick<LnmClient, 'get'>,
    private readonly o: CandleStoreOptions = {},
  ) {
    this.blocks = new LRUCache({ max: o.max ?? 200 })
    this.liveTtlMs = o.liveTtlMs ?? 10_000
    this.now = o.now ?? Date.now
  }

  /** candles of `range` whose open time is in [from, to] (epoch ms), ascending */
  async get(range: CandleRange, from: number, to: number, opts?: CallOptions): Promise<CandleAnswer> {
    const rangeMs = CANDLE_RANGES[range]
    const span = rangeMs * BLOCK_CANDLES
    const now = this.now()
    const first = Math.floor(from / span) * span
    const last = Math.floor(Math.min(to, now) / span) * span
    const starts: number[] = []
    for (let s = first; s <= last; s += span) starts.push(s)
    const got = await Promise.all(starts.map((s) => this.block(range, s, s + span, now, opts)))
    const candles: ApiCandle[] = []
    let fetchedAt = Infinity
    let stale = false
    for (const g of got) {
      fetchedAt = Math.min(fetchedAt, g.block.fetchedAt)
      stale ||= g.stale
      for (const c of g.block.candles) if (c.time >= from && c.time <= to) candles.push(c)
    }
    return { range, from, to, candles, fetchedAt: Number.isFinite(fetchedAt) ? fetchedAt : now, stale }
  }

  private async block(
    range: CandleRange,
    start: number,
    end: number,
    now: number,
    opts?: CallOptions,
  ): Promise<{ block: Block; stale: boolean }> {
    const key = `${range}:${start}`
    const held = this.blocks.get(key)
    if (held && (held.fetchedAt >= held.end + FINAL_GRACE_MS || now - held.fetchedAt < this.liveTtlMs)) {
      this.o.onHit?.()
      return { block: held, stale: false }
    }
    this.o.onMiss?.()
    let p = this.inflight.get(key)
    if (!p) {
      if (this.inflight.size >= MAX_INFLIGHT_BLOCKS) {
        if (held) return { block: held, stale: true }
        throw new CandlesBusyError(`${this.inflight.size} candle blocks are already waiting for LN Markets`)
      }
      p = this.fetch(range, start, end, opts).finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    try {
      const block = await p
      this.blocks.set(key, block)
      return { block, stale: false }
    } catch (err) {
      if (held) return { block: held, stale: true }
      throw err
    }
  }

  private async fetch(range: CandleRange, start: number, end: number, opts?: CallOptions): Promise<Block> {
    const byTime = new Map<number, ApiCandle>()
    let cursor: string | undefined
    let fetchedAt = 0
    for (let page = 0; page < MAX_PAGES; page++) {
      const query = { from: new Date(start).toISOString(), to: new Date(end - 1).toISOString(), range, limit: 1000, cursor }
      const res = await this.client.get({ path: '/futures/candles', query, validator: V.candles }, opts)
      fetchedAt ||= this.now()
      for (const c of res.data) {
        const time = Date.parse(c.time)
        if (!Number.isFinite(time) || time < start || time >= end) continue
        byTime.set(time, { time, open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume })
      }
      if (!res.nextCursor || res.data.length === 0 || res.nextCursor === cursor) {
        return { candles: [...byTime.values()].sort((a, b) => a.time - b.time), fetchedAt, end }
      }
      cursor = res.nextCursor
    }
    return { candles: [...byTime.values()].sort((a, b) => a.time - b.time), fetchedAt, end }
  }
}
