/** The chart's panel: freshness, which position is drawn, the attribution, and the lazily loaded chart. */
import { lazy, Suspense } from 'react'
import { Panel } from '../components/freshness.tsx'
import { useRealtime } from '../../../lib/realtime-react.ts'
import { fmtPrice } from '../../../lib/format.ts'
import type { PositionRow } from '../positions/position-math.ts'

const PriceChart = lazy(() => import('./price-chart.tsx'))

export function ChartPanel(props: { position: PositionRow | null; theme: string }) {
  const ticker = useRealtime((s) => s.channels.ticker)
  const p = props.position
  return (
    <Panel id="chart" title="Live price" sourceTs={ticker?.sourceTs} className="panel-chart">
      <div className="chart-legend muted small">
        {p ? (
          <>
            <span className="legend legend-entry">entry {fmtPrice(p.entry)}</span>
            <span className="legend legend-liq">liq. {fmtPrice(p.liquidation)}</span>
            <span>
              {p.side} ${p.quantity.toLocaleString('en-US')} · {p.leverage}×
            </span>
          </>
        ) : (
          <span>No position selected</span>
        )}
      </div>
      <Suspense fallback={<div className="chart-box chart-loading">Loading chart…</div>}>
        <PriceChart position={p} theme={props.theme} />
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
