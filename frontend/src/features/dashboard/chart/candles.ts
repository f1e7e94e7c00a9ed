/**
 * The chart's data, kept apart from the drawing so it is unit-testable: candles from GET /api/candles with
 * whitespace in every bucket that has none (Lightweight Charts breaks the series there instead of drawing a
 * straight line across an outage), and live prices folded into the current bucket.
 */
import type { CandlestickData, UTCTimestamp, WhitespaceData } from 'lightweight-charts'

export const CHART_RANGES = ['1m', '5m', '15m', '1h', '4h', '1d'] as const
export type ChartRange = (typeof CHART_RANGES)[number]
export const RANGE_MS: Record<ChartRange, number> = {
  '1m': 60_000,
  '5m': 300_000,
  '15m': 900_000,
  '1h': 3_600_000,
  '4h': 14_400_000,
  '1d': 86_400_000,
}
export const isChartRange = (v: unknown): v is ChartRange => typeof v === 'string' && (CHART_RANGES as readonly string[]).includes(v)

export interface ApiCandle {
  time: number
  open: number
  high: number
  low: number
  close: number
  volume: number
}

export interface CandlesResponse {
  range: string
  from: number
  to: number
  candles: ApiCandle[]
  fetchedAt: number
  ageMs: number
  stale: boolean
}

export type Bar = CandlestickData<UTCTimestamp> | WhitespaceData<UTCTimestamp>
export const isCandle = (b: Bar | undefined): b is CandlestickData<UTCTimestamp> => b !== undefined && 'close' in b

/** most whitespace put in one gap (a long outage on a short range would otherwise push the candles off the chart) */
const MAX_GAP_BARS = 240

const sec = (ms: number) => Math.floor(ms / 1000) as UTCTimestamp

/** the series' data: candles ascending, one whitespace point per missing bucket; the number of gaps */
export function toBars(candles: readonly ApiCandle[], rangeMs: number): { bars: Bar[]; gaps: number } {
  const bars: Bar[] = []
  let gaps = 0
  let prev: number | null = null
  for (const c of candles) {
    if (prev !== null && c.time <= prev) continue
    if (prev !== null && c.time - prev > rangeMs) {
      gaps++
      bars.push(...whitespace(prev, c.time, rangeMs))
    }
    bars.push({ time: sec(c.time), open: c.open, high: c.high, low: c.low, close: c.close })
    prev = c.time
  }
  return { bars, gaps }
}

/** whitespace for the buckets strictly between `afterMs` and `beforeMs` (at most MAX_GAP_BARS, the latest ones) */
export function whitespace(afterMs: number, beforeMs: number, rangeMs: number): WhitespaceData<UTCTimestamp>[] {
  const out: WhitespaceData<UTCTimestamp>[] = []
  const first = Math.max(afterMs + rangeMs, beforeMs - MAX_GAP_BARS * rangeMs)
  for (let t = first; t < beforeMs; t += rangeMs) out.push({ time: sec(t) })
  return out
}

/**
 * A live price at `tsMs` (the exchange's time) folded into the bars: the bucket's candle updated, or a new one
 * opened after whitespace for every bucket no price reached. Returns the points to pass to `series.update`, in
 * order (none when the price is older than the last bar).
 */
export function applyPrice(last: Bar | undefined, price: number, tsMs: number, rangeMs: number): Bar[] {
  const bucket = Math.floor(tsMs / rangeMs) * rangeMs
  const t = sec(bucket)
  if (!last) return [{ time: t, open: price, high: price, low: price, close: price }]
  if (t < last.time) return []
  if (t === last.time) {
    if (!isCandle(last)) return [{ time: t, open: price, high: price, low: price, close: price }]
    return [{ ...last, high: Math.max(last.high, price), low: Math.min(last.low, price), close: price }]
  }
  return [...whitespace(last.time * 1000, bucket, rangeMs), { time: t, open: price, high: price, low: price, close: price }]
}

/**
 * A refresh of the exchange's candles merged with what the chart drew since: the bars after the exchange's
 * last candle (built from live prices) are kept, behind whitespace if they do not follow on directly.
 */
export function mergeRefresh(fresh: Bar[], drawn: readonly Bar[], rangeMs: number): Bar[] {
  const end = fresh.at(-1)?.time ?? 0
  const tail = drawn.filter((b) => b.time > end)
  const firstTail = tail.find(isCandle)
  if (!firstTail) return fresh
  const out = [...fresh]
  if (end > 0) out.push(...whitespace(end * 1000, firstTail.time * 1000, rangeMs))
  out.push(...tail.slice(tail.indexOf(firstTail)))
  return out
}

/** runs of whitespace between candles (gaps drawn) */
export function countGaps(bars: readonly Bar[]): number {
  let gaps = 0
  for (let i = 1; i < bars.length; i++) if (!isCandle(bars[i]) && isCandle(bars[i - 1])) gaps++
  return gaps
}
