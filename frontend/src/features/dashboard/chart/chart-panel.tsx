/** The chart's panel: freshness, which position is drawn, the attribution, and the lazily loaded chart. */
import { Component, lazy, Suspense, useState, type ReactNode } from 'react'
import { useLocalSetting } from '../../../lib/local-setting.ts'
import { Panel } from '../components/freshness.tsx'
import { useRealtime } from '../../../lib/realtime-react.ts'
import { fmtPct, fmtPrice, zoneLabel } from '../../../lib/format.ts'
import { CHART_RANGES, isChartRange } from './candles.ts'
import type { PositionRow } from '../positions/position-math.ts'

/** the chart's code is a separate file: a failed download (gateway busy, network blip) is retried with backoff */
async function retryImport<T>(load: () => Promise<T>, tries = 3): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await load()
    } catch (e) {
      if (i >= tries) throw e
      await new Promise((r) => setTimeout(r, 500 * 2 ** i))
    }
  }
}
const PriceChart = lazy(() => retryImport(() => import('./price-chart.tsx')))

/** a chart that cannot load must not take the positions and balance down with it */
class ChartBoundary extends Component<{ children: ReactNode }, { failed: boolean }> {
  override state = { failed: false }
  static getDerivedStateFromError() {
    return { failed: true }
  }
  override render() {
    if (this.state.failed)
      return (
        <div className="chart-box chart-loading" role="status" data-testid="chart-failed">
          The chart could not be loaded. Reload the page to try again; every other panel keeps updating.
        </div>
      )
    return this.props.children
  }
}

export function ChartPanel(props: { position: PositionRow | null; theme: string }) {
  const ticker = useRealtime((s) => s.channels.ticker)
  const p = props.position
  const [showLines, setShowLines] = useState(true)
  const [range, setRange] = useLocalSetting('chartRange', '5m', isChartRange)
  const zone = zoneLabel()
  return (
    <Panel
      id="chart"
      title="Price"
      sourceTs={ticker?.sourceTs}
      className="panel-chart"
      actions={
        <div className="chart-actions">
          <div className="segmented" role="group" aria-label="Candle length" data-testid="chart-range">
            {CHART_RANGES.map((r) => (
              <button key={r} type="button" aria-pressed={range === r} onClick={() => setRange(r)} title={`${r} candles`} data-range={r}>
                {r}
              </button>
            ))}
          </div>
          {p && (
            <div className="segmented" role="group" aria-label="Chart scale">
              <button
                type="button"
                aria-pressed={showLines}
                onClick={() => setShowLines(true)}
                title="Keep the position's lines in view when they are near the price"
              >
                with lines
              </button>
              <button type="button" aria-pressed={!showLines} onClick={() => setShowLines(false)} title="Zoom on the price">
                price
              </button>
            </div>
          )}
        </div>
      }
    >
      <div className="chart-legend muted small">
        {p ? (
          <>
            <span className="legend legend-entry">entry {fmtPrice(p.entry)}</span>
            <span className="legend legend-liq">
              liq. {fmtPrice(p.liquidation)} ({fmtPct(p.distancePct, 1)} away)
            </span>
            {p.stoploss > 0 && <span className="legend legend-sl">stop-loss {fmtPrice(p.stoploss)}</span>}
            {p.takeprofit > 0 && <span className="legend legend-tp">take-profit {fmtPrice(p.takeprofit)}</span>}
            <span>
              {p.side} ${p.quantity.toLocaleString('en-US')} · {p.leverage}×
            </span>
          </>
        ) : (
          <span>No running position: entry, liquidation, stop-loss and take-profit lines appear here when you have one.</span>
        )}
        <span className="chart-tz" data-testid="chart-tz">
          Times in {zone}
          {zone === 'UTC' ? '' : '; UTC on hover'}
        </span>
      </div>
      <ChartBoundary>
        <Suspense fallback={<div className="chart-box chart-loading">Loading chart…</div>}>
          <PriceChart position={p} theme={props.theme} showLines={showLines} range={range} />
        </Suspense>
      </ChartBoundary>
      <p className="attribution small muted">
        Chart by{' '}
        <a href="https://www.tradingview.com/" target="_blank" rel="noreferrer noopener">
          TradingView
        </a>{' '}
        Lightweight Charts™
      </p>
    </Panel>
  )
}
