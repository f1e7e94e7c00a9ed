/**
 * Which of a position's lines the price scale may stretch to include, kept apart from the drawing so it is
 * unit-testable. The rule: the visible candles' own high–low range never takes less than MIN_CANDLE_SHARE of
 * the price pane's height. A line that would break it (a liquidation a few percent away on 1-minute candles,
 * say) is left out of the scale, and the chart names it at its edge instead.
 */

/** the least share of the price pane the visible candles' high–low range keeps */
export const MIN_CANDLE_SHARE = 0.4

/**
 * the narrowest candle range the rule is measured against, as a fraction of the price: flat candles (one
 * price, a quiet minute) have no height to keep, and would otherwise push every line off the scale
 */
export const MIN_SPAN_FRACTION = 0.001

export interface PriceRange {
  minValue: number
  maxValue: number
}

export interface ScaleDecision {
  /** the range to autoscale to: the candles' plus the lines kept */
  priceRange: PriceRange
  /** the lines inside it, nearest first */
  kept: string[]
  /** the lines left out (drawn as edge labels when they fall outside the pane) */
  left: string[]
}

/**
 * The autoscale range for `candles` (the visible candles' low and high) with as many of `lines` as keep the
 * candles readable, nearest line first. `paneShare` is the share of the pane's height the autoscaled range
 * is drawn in (1 − the price scale's top and bottom margins): the candles take paneShare × candles / range of
 * the pane, so the range may grow to paneShare / MIN_CANDLE_SHARE times the candles' range at most.
 */
export function scaleWithLines(
  candles: PriceRange,
  lines: readonly { key: string; price: number }[],
  paneShare: number,
  minShare = MIN_CANDLE_SHARE,
): ScaleDecision {
  const { minValue, maxValue } = candles
  const mid = (minValue + maxValue) / 2
  const span = Math.max(maxValue - minValue, Math.abs(mid) * MIN_SPAN_FRACTION)
  const maxSpan = (span * Math.min(1, Math.max(0, paneShare))) / minShare
  const outside = (p: number) => (p > maxValue ? p - maxValue : p < minValue ? minValue - p : 0)
  const order = lines.filter((l) => Number.isFinite(l.price)).sort((a, b) => outside(a.price) - outside(b.price))
  let lo = minValue
  let hi = maxValue
  const kept: string[] = []
  const left: string[] = []
  for (const l of order) {
    const nlo = Math.min(lo, l.price)
    const nhi = Math.max(hi, l.price)
    // a line inside the candles' range costs nothing; one outside is kept while the candles stay readable
    if (nhi - nlo <= Math.max(maxSpan, hi - lo)) {
      lo = nlo
      hi = nhi
      kept.push(l.key)
    } else left.push(l.key)
  }
  for (const l of lines) if (!Number.isFinite(l.price)) left.push(l.key)
  return { priceRange: { minValue: lo, maxValue: hi }, kept, left }
}
