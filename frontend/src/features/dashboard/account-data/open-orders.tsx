/**
 * Orders waiting to fill: isolated limit trades (positions.open) and cross orders (cross.openOrders), each with
 * side, quantity, price, leverage, margin, age and distance from the market.
 */
import { Panel } from '../components/freshness.tsx'
import { useRealtime } from '../../../lib/realtime-react.ts'
import { useNow } from '../../../lib/use-now.ts'
import { fmtDuration, fmtInt, fmtPct, fmtPrice } from '../../../lib/format.ts'
import type { FuturesTrade } from '../../../../../backend/schemas/ws-protocol.ts'
import { isLongSide, type CrossOrder } from './types.ts'

export interface OrderRow {
  id: string
  scope: 'isolated' | 'cross'
  side: 'long' | 'short'
  quantity: number
  price: number
  leverage: number | null
  margin: number | null
  createdAt: number
  /** % the market must move to reach the order price (positive: not reached yet) */
  distancePct: number
}

export function orderRows(isolated: readonly FuturesTrade[], cross: readonly CrossOrder[], lastPrice: number | undefined): OrderRow[] {
  const dist = (side: 'long' | 'short', price: number) =>
    lastPrice && lastPrice > 0
      ? side === 'long'
        ? ((lastPrice - price) / lastPrice) * 100
        : ((price - lastPrice) / lastPrice) * 100
      : Number.NaN
  const rows: OrderRow[] = [
    ...isolated.map((t): OrderRow => {
      const side = t.side === 'buy' ? 'long' : 'short'
      return {
        id: t.id,
        scope: 'isolated',
        side,
        quantity: t.quantity,
        price: t.price,
        leverage: t.leverage,
        margin: t.margin,
        createdAt: Date.parse(t.createdAt),
        distancePct: dist(side, t.price),
      }
    }),
    ...cross
      .filter((o) => o.open)
      .map((o): OrderRow => {
        const side = isLongSide(o.side) ? 'long' : 'short'
        return {
          id: o.id,
          scope: 'cross',
          side,
          quantity: o.quantity,
          price: o.price,
          leverage: null,
          margin: null,
          createdAt: Date.parse(o.createdAt),
          distancePct: dist(side, o.price),
        }
      }),
  ]
  return rows.sort((a, b) => Math.abs(a.distancePct) - Math.abs(b.distancePct) || a.id.localeCompare(b.id))
}

export function OrdersTable(props: { rows: OrderRow[]; now: number }) {
  if (props.rows.length === 0)
    return (
      <p className="empty" data-testid="orders-empty">
        No open orders.
      </p>
    )
  return (
    <div className="table-wrap">
      <table className="positions orders" data-testid="orders-table">
        <caption className="sr-only">Open orders, closest to the market first</caption>
        <thead>
          <tr>
            {['Kind', 'Side', 'Quantity', 'Price', 'Leverage', 'Margin', 'Age', 'From market'].map((h, i) => (
              <th key={h} scope="col" className={i > 1 ? 'num' : ''}>
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((r) => (
            <tr key={`${r.scope}-${r.id}`} data-testid="order-row" data-scope={r.scope}>
              <td data-label="Kind">{r.scope === 'cross' ? 'Cross' : 'Isolated limit'}</td>
              <td data-label="Side" className={`side side-${r.side}`}>
                {r.side === 'long' ? 'Buy' : 'Sell'}
              </td>
              <td className="num" data-label="Quantity">
                ${fmtInt(r.quantity)}
              </td>
              <td className="num" data-label="Price">
                {fmtPrice(r.price)}
              </td>
              <td className="num" data-label="Leverage">
                {r.leverage ? `${r.leverage}×` : 'cross'}
              </td>
              <td className="num" data-label="Margin">
                {r.margin !== null ? fmtInt(r.margin) : '—'}
              </td>
              <td className="num" data-label="Age">
                {Number.isFinite(r.createdAt) ? fmtDuration(props.now - r.createdAt) : '—'}
              </td>
              <td className="num" data-label="From market" data-testid="order-distance">
                {fmtPct(r.distancePct)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

export function OpenOrdersPanel() {
  const positions = useRealtime((s) => s.channels.positions)
  const cross = useRealtime((s) => s.channels.cross)
  const last = useRealtime((s) => s.channels.ticker?.data.lastPrice)
  const offset = useRealtime((s) => s.serverOffsetMs)
  const now = useNow()
  const rows = orderRows(positions?.data.open ?? [], cross?.data.openOrders ?? [], last)
  return (
    <Panel id="orders" title={`Open orders${positions ? ` (${rows.length})` : ''}`} sourceTs={positions?.sourceTs} className="panel-orders">
      {positions ? <OrdersTable rows={rows} now={now + offset} /> : <p className="empty">Waiting for orders…</p>}
    </Panel>
  )
}
