/** The chart's panel: freshness, which position is drawn, the attribution, and the lazily loaded chart. */
import { lazy, Suspense, useState } from 'react'
import { Panel } from '../components/freshness.tsx'
import { useRealtime } from '../../../lib/realtime-react.ts'
import { fmtPct, fmtPrice } from '../../../lib/format.ts'
import type { PositionRow } from '../positions/position-math.ts'

const PriceChart = lazy(() => import('./price-chart.tsx'))

export function ChartPanel(props: { position: PositionRow | null; theme: string }) {
  const ticker = useRealtime((s) => s.channels.ticker)
  const p = props.position
  const [showLines, setShowLines] = useState(true)
  return (
    <Panel
      id="chart"
      title="Live price"
      sourceTs={ticker?.sourceTs}
      className="panel-chart"
      actions={
        p ? (
          <div className="segmented" role="group" aria-label="Chart scale">
            <button type="button" aria-pressed={showLines} onClick={() => setShowLines(true)} title="Keep the entry and liquidation lines in view">
              with lines
            </button>
            <button type="button" aria-pressed={!showLines} onClick={() => setShowLines(false)} title="Zoom on the live price">
              price
            </button>
          </div>
        ) : undefined
      }
    >
      <div className="chart-legend muted small">
        {p ? (
          <>
            <span className="legend legend-entry">entry {fmtPrice(p.entry)}</span>
            <span className="legend legend-liq">
              liq. {fmtPrice(p.liquidation)} ({fmtPct(p.distancePct, 1)} away)
            </span>
            <span>
              {p.side} ${p.quantity.toLocaleString('en-US')} · {p.leverage}×
            </span>
          </>
        ) : (
          <span>No running position: entry and liquidation lines appear here when you have one.</span>
        )}
      </div>
      <Suspense fallback={<div className="chart-box chart-loading">Loading chart…</div>}>
        <PriceChart position={p} theme={props.theme} showLines={showLines} />
      </Suspense>
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
