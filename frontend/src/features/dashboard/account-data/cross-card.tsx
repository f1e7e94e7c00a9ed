/** The cross-margin position: quantity, entry, leverage, margins, liquidation and distance, P&L and fees. */
import { Panel } from '../components/freshness.tsx'
import { useRealtime } from '../../../lib/realtime-react.ts'
import { fmtInt, fmtPct, fmtPrice, fmtSignedSats } from '../../../lib/format.ts'
import { crossRow } from '../positions/position-math.ts'
import type { FuturesCrossPosition } from './types.ts'

export function CrossFigures(props: {
  position: FuturesCrossPosition | null
  lastPrice: number | undefined
  bid?: number | undefined
  ask?: number | undefined
}) {
  const p = props.position
  const row = crossRow(p, props.lastPrice ? { price: props.lastPrice, bid: props.bid, ask: props.ask, sourceTs: 0 } : null)
  if (!p || !row)
    return (
      <p className="empty" data-testid="cross-empty">
        No cross-margin position.
      </p>
    )
  const items: Array<[string, string, string?]> = [
    ['Side', row.side === 'long' ? 'Long' : 'Short'],
    ['Quantity', `$${fmtInt(row.quantity)}`],
    ['Entry', fmtPrice(row.entry)],
    ['Leverage', `${p.leverage}×`],
    ['Margin', `${fmtInt(p.margin)} sats`],
    ['Running margin', `${fmtInt(p.runningMargin)} sats`],
    ['Maintenance margin', `${fmtInt(p.maintenanceMargin)} sats`],
    ['Liquidation', fmtPrice(row.liquidation)],
    ['Dist. to liq.', fmtPct(row.distancePct), 'cross-distance'],
    ['Total P&L', `${fmtSignedSats(p.totalPl)} sats`, 'cross-total-pl'],
    ['Delta P&L', `${fmtSignedSats(p.deltaPl)} sats`],
    ['Trading fees', `${fmtInt(p.tradingFees)} sats`],
    ['Funding', `${fmtSignedSats(p.fundingFees)} sats`],
    ['Net P&L', `${fmtSignedSats(row.netPl)} sats`, 'cross-net-pl'],
  ]
  return (
    <dl className="kv kv-grid" data-testid="cross-figures">
      {items.map(([k, v, id]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd data-testid={id}>{v}</dd>
        </div>
      ))}
    </dl>
  )
}

export function CrossCard() {
  const cross = useRealtime((s) => s.channels.cross)
  const t = useRealtime((s) => s.channels.ticker?.data)
  if (!cross) return null
  return (
    <Panel id="cross" title="Cross margin" channel="cross" sourceTs={cross.sourceTs} className="panel-cross panel-small">
      <CrossFigures position={cross.data.position} lastPrice={t?.lastPrice} bid={t?.bidPrice} ask={t?.askPrice} />
    </Panel>
  )
}
