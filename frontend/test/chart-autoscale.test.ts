/**
 * The chart's autoscale rule (frontend/src/features/dashboard/chart/autoscale.ts): a position's lines stretch
 * the price scale only while the visible candles' high–low range keeps at least 40 % of the pane's height;
 * a line that would squeeze them more (a liquidation a few percent away on 1-minute candles) is left out.
 */
import t from 'tap'
import { MIN_CANDLE_SHARE, scaleWithLines } from '../src/features/dashboard/chart/autoscale.ts'

const candles = { minValue: 88_000, maxValue: 88_400 } // a 400-wide range
const share = (d: ReturnType<typeof scaleWithLines>, paneShare: number) =>
  (paneShare * (candles.maxValue - candles.minValue)) / (d.priceRange.maxValue - d.priceRange.minValue)

t.test("lines inside the candles' range are kept and change nothing", async (t) => {
  const d = scaleWithLines(candles, [{ key: 'entry', price: 88_200 }], 0.7)
  t.same(d, { priceRange: candles, kept: ['entry'], left: [] })
})

t.test('the demo short on 1m candles: near lines kept, the liquidation 4 % away left out', async (t) => {
  // paneShare 1: the range may grow to 2.5× the candles' (400 → 1000)
  const lines = [
    { key: 'entry', price: 88_300 },
    { key: 'liq', price: 91_900 },
    { key: 'sl', price: 88_700 },
    { key: 'tp', price: 87_700 },
  ]
  const d = scaleWithLines(candles, lines, 1)
  t.same(d.kept, ['entry', 'sl', 'tp'], 'entry inside; stop-loss and take-profit 300 away each side fit (range 1000)')
  t.same(d.left, ['liq'], 'the liquidation would make the range 4,200 wide: left out')
  t.same(d.priceRange, { minValue: 87_700, maxValue: 88_700 })
  t.ok(share(d, 1) >= MIN_CANDLE_SHARE, `the candles keep ${(share(d, 1) * 100).toFixed(0)} % of the pane`)
})

t.test("the price scale's margins count: with 70 % of the pane for the range, it may grow to 1.75× only", async (t) => {
  const lines = [
    { key: 'sl', price: 88_700 },
    { key: 'tp', price: 87_700 },
  ] // each alone: 700 wide; both: 1000
  const d = scaleWithLines(candles, lines, 0.7)
  t.same(d.kept.length, 1, 'one of the two fits (1.75 × 400 = 700)')
  t.same(d.priceRange.maxValue - d.priceRange.minValue, 700)
  t.ok(share(d, 0.7) >= MIN_CANDLE_SHARE - 1e-9, `${(share(d, 0.7) * 100).toFixed(1)} % of the pane`)
  const both = scaleWithLines(candles, lines, 1)
  t.same(both.kept.sort(), ['sl', 'tp'], 'with the whole pane both fit')
})

t.test('nearest first: a near line is not crowded out by a farther one listed before it', async (t) => {
  // the far one alone would fit (950 wide), but not with the near one below (1,150): the near one wins
  const d = scaleWithLines(
    candles,
    [
      { key: 'far', price: 88_950 },
      { key: 'near', price: 87_800 },
    ],
    1,
  )
  t.same(d.kept, ['near'], '200 below fits')
  t.same(d.left, ['far'], 'then 550 above would make it 1,150 wide')
  t.same(d.priceRange, { minValue: 87_800, maxValue: 88_400 })
})

t.test('a line far away on the other side does not block a nearer one', async (t) => {
  const d = scaleWithLines(
    candles,
    [
      { key: 'liq', price: 60_000 },
      { key: 'tp', price: 89_000 },
    ],
    1,
  )
  t.same(d.kept, ['tp'])
  t.same(d.left, ['liq'])
  t.same(d.priceRange, { minValue: 88_000, maxValue: 89_000 })
})

t.test('flat candles: measured against 0.1 % of the price, so a line right next to them still shows', async (t) => {
  const flat = { minValue: 90_000, maxValue: 90_000 }
  const d = scaleWithLines(
    flat,
    [
      { key: 'entry', price: 90_100 },
      { key: 'liq', price: 95_000 },
    ],
    1,
  )
  t.same(d.kept, ['entry'], '100 away, under 2.5 × 90')
  t.same(d.left, ['liq'])
})

t.test('bad input loses nothing: a non-finite line is left out, the others still decided', async (t) => {
  const d = scaleWithLines(
    candles,
    [
      { key: 'liq', price: Number.NaN },
      { key: 'entry', price: 88_100 },
    ],
    0.7,
  )
  t.same(d.kept, ['entry'])
  t.same(d.left, ['liq'])
  t.same(d.priceRange, candles)
  t.same(scaleWithLines(candles, [], 0.7), { priceRange: candles, kept: [], left: [] }, "no lines: the candles' range")
})
