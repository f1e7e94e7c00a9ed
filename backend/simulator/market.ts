/**
 * The simulated BTC/USD inverse-perpetual market: a seeded geometric random walk for the last price,
 * an index that wanders a few basis points around it, a bid/ask size ladder, the funding rate and
 * 1-minute candles (with a few days of generated history so `/futures/candles` has data at start).
 */
import { createRng, type Rng } from './rng.ts'

export const MINUTE_MS = 60_000
export const FUNDING_PERIOD_MS = 8 * 3600_000
const YEAR_MS = 365 * 24 * 3600_000

export interface Candle {
  time: number
  open: number
  high: number
  low: number
  close: number
  volume: number
}
export interface Bucket {
  minSize: number
  maxSize: number
  bidPrice: number
  askPrice: number
}
export interface PriceSample {
  time: number
  lastPrice: number
  index: number
}

export const roundHalf = (x: number): number => Math.round(x * 2) / 2
const floorHalf = (x: number): number => Math.floor(x * 2) / 2
const ceilHalf = (x: number): number => Math.ceil(x * 2) / 2
const round2 = (x: number): number => Math.round(x * 100) / 100

/** the next funding instant strictly after `t` (00:00, 08:00, 16:00 UTC) */
export const nextFundingTime = (t: number): number => Math.floor(t / FUNDING_PERIOD_MS) * FUNDING_PERIOD_MS + FUNDING_PERIOD_MS

/** candle ranges accepted by `/futures/candles` */
export const CANDLE_RANGES: Record<string, number> = {
  '1m': MINUTE_MS,
  '3m': 3 * MINUTE_MS,
  '5m': 5 * MINUTE_MS,
  '10m': 10 * MINUTE_MS,
  '15m': 15 * MINUTE_MS,
  '30m': 30 * MINUTE_MS,
  '45m': 45 * MINUTE_MS,
  '1h': 60 * MINUTE_MS,
  '2h': 120 * MINUTE_MS,
  '3h': 180 * MINUTE_MS,
  '4h': 240 * MINUTE_MS,
  '1d': 1440 * MINUTE_MS,
  '1w': 7 * 1440 * MINUTE_MS,
  '1month': 30 * 1440 * MINUTE_MS,
  '3months': 90 * 1440 * MINUTE_MS,
}

const LADDER = [
  { minSize: 0, maxSize: 100_000, spreadMul: 1 },
  { minSize: 100_000, maxSize: 500_000, spreadMul: 2 },
  { minSize: 500_000, maxSize: 1_000_000, spreadMul: 4 },
]
const MAX_SAMPLES = 20_000
const MAX_CANDLES = 30 * 1440 // 30 days of 1-minute candles

export interface MarketOptions {
  seed: number
  now: () => number
  initialPrice?: number
  /** annualised volatility of the walk (0.5 = 50 %) */
  volatility?: number
  historyMinutes?: number
}

export class Market {
  private rng: Rng
  private last: number
  private idx: number
  private lastTime: number
  fundingRate: number
  private readonly sigma: number
  private readonly now: () => number
  readonly candles: Candle[] = []
  readonly samples: PriceSample[] = []

  constructor(opts: MarketOptions) {
    this.rng = createRng(opts.seed)
    this.now = opts.now
    this.sigma = opts.volatility ?? 0.5
    this.last = roundHalf(opts.initialPrice ?? 90_000 + this.rng.next() * 20_000)
    this.idx = this.indexFor(this.last)
    this.fundingRate = round6(0.0001 + this.rng.gauss() * 0.00005)
    this.lastTime = this.now()
    this.generateHistory(opts.historyMinutes ?? 3 * 1440)
  }

  price(): number {
    return this.last
  }
  index(): number {
    return this.idx
  }
  time(): number {
    return this.lastTime
  }

  /** one step of the walk covering `dtMs` of market time */
  step(dtMs: number): void {
    const sd = this.sigma * Math.sqrt(Math.max(dtMs, 1) / YEAR_MS)
    this.apply(Math.max(0.5, roundHalf(this.last * Math.exp(sd * this.rng.gauss()))))
    // the funding rate drifts slowly around 1 bp
    this.fundingRate = round6(
      Math.min(0.001, Math.max(-0.001, this.fundingRate + this.rng.gauss() * 0.000002 + (0.0001 - this.fundingRate) * 0.001)),
    )
  }

  setPrice(p: number): void {
    this.apply(roundHalf(p))
  }

  private apply(p: number): void {
    const t = this.now()
    this.last = p
    this.idx = this.indexFor(p)
    this.lastTime = t
    this.record(t, p, this.idx, 1 + Math.floor(this.rng.next() * 5000))
  }

  private indexFor(p: number): number {
    return round2(p * (1 + this.rng.gauss() * 0.0002))
  }

  private record(t: number, p: number, index: number, volume: number): void {
    this.samples.push({ time: t, lastPrice: p, index })
    if (this.samples.length > MAX_SAMPLES) this.samples.splice(0, this.samples.length - MAX_SAMPLES)
    const minute = Math.floor(t / MINUTE_MS) * MINUTE_MS
    const c = this.candles[this.candles.length - 1]
    if (c && c.time === minute) {
      c.high = Math.max(c.high, p)
      c.low = Math.min(c.low, p)
      c.close = p
      c.volume += volume
    } else if (!c || minute > c.time) {
      const open = c ? c.close : p
      this.candles.push({ time: minute, open, high: Math.max(open, p), low: Math.min(open, p), close: p, volume })
      if (this.candles.length > MAX_CANDLES) this.candles.splice(0, this.candles.length - MAX_CANDLES)
    }
  }

  /** a walk run backwards from the current price, one candle per minute */
  private generateHistory(minutes: number): void {
    const sd = this.sigma * Math.sqrt(MINUTE_MS / YEAR_MS)
    const nowMinute = Math.floor(this.now() / MINUTE_MS) * MINUTE_MS
    const out: Candle[] = []
    const samples: PriceSample[] = []
    let close = this.last
    for (let i = 1; i <= minutes; i++) {
      const open = roundHalf(close * Math.exp(-sd * this.rng.gauss()))
      const wiggle = Math.abs(this.rng.gauss()) * sd * close * 0.5
      const time = nowMinute - i * MINUTE_MS
      out.push({
        time,
        open,
        close,
        high: roundHalf(Math.max(open, close) + wiggle),
        low: roundHalf(Math.min(open, close) - wiggle),
        volume: Math.floor(50_000 + this.rng.next() * 500_000),
      })
      samples.push({ time: time + MINUTE_MS - 1, lastPrice: close, index: this.indexFor(close) })
      close = open
    }
    this.candles.push(...out.reverse())
    this.samples.push(...samples.reverse().slice(-MAX_SAMPLES))
    this.record(this.now(), this.last, this.idx, 1)
  }

  /** the size ladder: best bucket first, wider spreads for bigger sizes */
  buckets(): Bucket[] {
    const half = Math.max(0.5, this.last * 0.00005)
    return LADDER.map((b) => ({
      minSize: b.minSize,
      maxSize: b.maxSize,
      bidPrice: floorHalf(this.last - half * b.spreadMul),
      askPrice: ceilHalf(this.last + half * b.spreadMul),
    }))
  }

  /** the bucket that prices an order of `quantity` USD */
  quote(quantity: number): Bucket {
    const b = this.buckets()
    return b.find((x) => quantity >= x.minSize && quantity < x.maxSize) ?? b[b.length - 1]!
  }

  bid(): number {
    return this.buckets()[0]!.bidPrice
  }
  ask(): number {
    return this.buckets()[0]!.askPrice
  }

  ticker(): { index: number; lastPrice: number; prices: Bucket[]; fundingRate: number; fundingTime: string } {
    return {
      index: this.idx,
      lastPrice: this.last,
      prices: this.buckets(),
      fundingRate: this.fundingRate,
      fundingTime: new Date(nextFundingTime(this.now())).toISOString(),
    }
  }

  /** candles of `rangeMs` aggregated from the 1-minute series, ascending, within [from, to] */
  aggregate(rangeMs: number, from: number, to: number): Candle[] {
    const out: Candle[] = []
    for (const c of this.candles) {
      const bucket = Math.floor(c.time / rangeMs) * rangeMs
      if (bucket < from - rangeMs || c.time > to) continue
      const cur = out[out.length - 1]
      if (cur && cur.time === bucket) {
        cur.high = Math.max(cur.high, c.high)
        cur.low = Math.min(cur.low, c.low)
        cur.close = c.close
        cur.volume += c.volume
      } else {
        out.push({ ...c, time: bucket })
      }
    }
    return out.filter((c) => c.time >= from && c.time <= to)
  }
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6
