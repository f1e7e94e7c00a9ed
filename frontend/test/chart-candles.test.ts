/**
 * The chart's data (frontend/src/features/dashboard/chart/candles.ts): missing buckets become whitespace (a gap
 * on the chart, not a line drawn across it), live prices fold into the current candle, and a price after a
 * silence opens a new candle behind whitespace for the buckets no price reached.
 */
import t from 'tap'
import { applyPrice, countGaps, isCandle, mergeRefresh, toBars, whitespace } from '../src/features/dashboard/chart/candles.ts'

const M = 60_000
const c = (min: number, close: number) => ({ time: min * M, open: close - 1, high: close + 2, low: close - 3, close, volume: 1 })

t.test('toBars: ascending candles, whitespace in every missing bucket', async (t) => {
  const { bars, gaps } = toBars([c(10, 100), c(11, 101), c(15, 105), c(15, 999), c(16, 106)], M)
  t.same(
    bars.map((b) => [b.time, isCandle(b) ? b.close : null]),
    [
      [600, 100],
      [660, 101],
      [720, null],
      [780, null],
      [840, null],
      [900, 105],
      [960, 106],
    ],
    'three whitespace points for minutes 12–14; the duplicate minute 15 dropped',
  )
  t.equal(gaps, 1, 'one gap')
  t.same(toBars([], M), { bars: [], gaps: 0 }, 'nothing in, nothing out')
  t.equal(whitespace(0, 10_000 * M, M).length, 240, 'a very long gap is capped (the latest buckets kept)')
  t.equal(whitespace(0, 10_000 * M, M).at(-1)!.time, (10_000 - 1) * 60, 'ending right before the next candle')
})

t.test('applyPrice: into the current bucket, or a new candle behind a gap', async (t) => {
  const last = { time: 600 as never, open: 100, high: 102, low: 97, close: 100 }
  t.same(
    applyPrice(last, 104, 10 * M + 30_000, M),
    [{ time: 600, open: 100, high: 104, low: 97, close: 104 }],
    'same minute: high and close move',
  )
  t.same(applyPrice(last, 90, 10 * M + 59_999, M), [{ time: 600, open: 100, high: 102, low: 90, close: 90 }], 'low moves')
  t.same(
    applyPrice(last, 101, 11 * M + 1, M),
    [{ time: 660, open: 101, high: 101, low: 101, close: 101 }],
    'next minute: a new candle, no gap',
  )
  const after = applyPrice(last, 101, 14 * M + 5, M)
  t.same(
    after.map((b) => [b.time, isCandle(b)]),
    [
      [660, false],
      [720, false],
      [780, false],
      [840, true],
    ],
    'after a silence: whitespace, then the new candle',
  )
  t.same(applyPrice(last, 101, 9 * M, M), [], 'an older price is ignored')
  t.same(applyPrice(undefined, 50, 3 * M + 7, M), [{ time: 180, open: 50, high: 50, low: 50, close: 50 }], 'no history: the first candle')
  t.same(
    applyPrice({ time: 600 as never }, 7, 10 * M, M),
    [{ time: 600, open: 7, high: 7, low: 7, close: 7 }],
    'a whitespace bucket becomes a candle',
  )
})

t.test("mergeRefresh keeps what live prices drew after the exchange's last candle; countGaps", async (t) => {
  const fresh = toBars([c(10, 100), c(11, 101)], M).bars
  const drawn = toBars([c(10, 100), c(11, 101), c(12, 102), c(13, 103)], M).bars
  t.same(
    mergeRefresh(fresh, drawn, M).map((b) => b.time),
    [600, 660, 720, 780],
    'the live candles follow on',
  )
  const later = toBars([c(10, 100), c(11, 101), c(16, 106)], M).bars
  const merged = mergeRefresh(fresh, later, M)
  t.same(
    merged.map((b) => [b.time, isCandle(b)]),
    [
      [600, true],
      [660, true],
      [720, false],
      [780, false],
      [840, false],
      [900, false],
      [960, true],
    ],
    'whitespace between the copy and the live candle',
  )
  t.equal(countGaps(merged), 1, 'one gap')
  t.same(mergeRefresh(fresh, fresh, M), fresh, 'nothing newer: the refresh as is')
  t.equal(countGaps(toBars([c(1, 1), c(3, 3), c(4, 4), c(9, 9)], M).bars), 2, 'two gaps')
})
