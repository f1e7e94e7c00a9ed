/**
 * Running positions with LN Markets' columns, a totals row, sortable (riskiest first by default).
 * At phone width each row becomes a card (the labels come from data-label).
 */
import { useMemo, useState } from 'react'
import { Panel } from '../components/freshness.tsx'
import { fmtInt, fmtPct, fmtPrice, fmtSignedPct, fmtSignedSats } from '../../../lib/format.ts'
import { DEFAULT_SORT, markExplanation, sortRows, totalsOf, type PositionRow, type Sort, type SortKey } from './position-math.ts'
import { usePositionRows } from './use-position-rows.ts'

interface Column {
  key: SortKey
  label: string
  title?: string
  render: (r: PositionRow) => string
  numeric: boolean
  /** left out of the phone cards (still in the table on wider screens) */
  phone?: false
}

export const COLUMNS: Column[] = [
  { key: 'side', label: 'Side', render: (r) => (r.side === 'long' ? 'Long' : 'Short'), numeric: false },
  { key: 'quantity', label: 'Quantity', title: 'USD', render: (r) => `$${fmtInt(r.quantity)}`, numeric: true },
  { key: 'entry', label: 'Entry', render: (r) => fmtPrice(r.entry), numeric: true },
  {
    key: 'markPrice',
    label: 'Mark',
    title: 'The price the P&L estimate uses: bid for a long, ask for a short',
    render: (r) => fmtPrice(r.markPrice),
    numeric: true,
    phone: false,
  },
  { key: 'liquidation', label: 'Liquidation', render: (r) => fmtPrice(r.liquidation), numeric: true },
  {
    key: 'distancePct',
    label: 'Dist. to liq.',
    title: 'How far the price must move against you to liquidate',
    render: (r) => fmtPct(r.distancePct),
    numeric: true,
  },
  { key: 'leverage', label: 'Leverage', render: (r) => `${r.leverage.toFixed(r.leverage % 1 ? 1 : 0)}×`, numeric: true },
  { key: 'margin', label: 'Margin', title: 'sats', render: (r) => fmtInt(r.margin), numeric: true },
  {
    key: 'pl',
    label: 'P&L (sats)',
    title: "Gross P&L: the exchange's figure, with the live estimate under it between polls",
    render: (r) => fmtSignedSats(r.exchangePl),
    numeric: true,
  },
  { key: 'fees', label: 'Fees', title: 'Opening + closing trading fees, sats', render: (r) => fmtInt(r.fees), numeric: true, phone: false },
  {
    key: 'funding',
    label: 'Funding',
    title: 'Funding paid (negative: received), sats',
    render: (r) => fmtSignedSats(r.funding),
    numeric: true,
    phone: false,
  },
  { key: 'netPl', label: 'Net P&L', title: 'P&L − fees − funding, sats', render: (r) => fmtSignedSats(r.netPl), numeric: true },
  { key: 'plPct', label: 'P&L %', render: (r) => fmtSignedPct(r.plPct), numeric: true },
  { key: 'stoploss', label: 'Stop-loss', render: (r) => (r.stoploss > 0 ? fmtPrice(r.stoploss) : '—'), numeric: true, phone: false },
  {
    key: 'takeprofit',
    label: 'Take-profit',
    render: (r) => (r.takeprofit > 0 ? fmtPrice(r.takeprofit) : '—'),
    numeric: true,
    phone: false,
  },
]

const plClass = (v: number) => (v > 0 ? 'pos' : v < 0 ? 'neg' : '')

export function PositionsTable(props: { alertPct: number; selectedId: string | null; onSelect: (id: string) => void }) {
  const { rows, cross, sourceTs, loaded, lastPrice } = usePositionRows()
  const [sort, setSort] = useState<Sort>(DEFAULT_SORT)
  const sorted = useMemo(() => sortRows(rows, sort), [rows, sort])
  // the cross position is counted in the totals (its own card shows its details)
  const totals = useMemo(() => totalsOf(cross ? [...rows, cross] : rows), [rows, cross])

  const toggle = (key: SortKey) =>
    setSort((s) => (s.key === key ? { key, dir: s.dir === 'asc' ? 'desc' : 'asc' } : { key, dir: key === 'distancePct' ? 'asc' : 'desc' }))

  const est = (
    <span className="badge badge-est" title="Estimated from the live price until the exchange's next value arrives">
      est.
    </span>
  )

  return (
    <Panel id="positions" title={`Running positions${loaded ? ` (${rows.length})` : ''}`} sourceTs={sourceTs} className="panel-positions">
      {!loaded ? (
        <p className="empty">Waiting for positions…</p>
      ) : rows.length === 0 ? (
        <p className="empty" data-testid="positions-empty">
          No running positions.
        </p>
      ) : (
        <div className="table-wrap">
          <table className="positions" data-testid="positions-table">
            <caption className="sr-only">
              Running positions, sorted by {COLUMNS.find((c) => c.key === sort.key)?.label}{' '}
              {sort.dir === 'asc' ? 'ascending' : 'descending'}. Select a row to chart it.
            </caption>
            <thead>
              <tr>
                {COLUMNS.map((c) => (
                  <th
                    key={c.key}
                    scope="col"
                    className={c.numeric ? 'num' : ''}
                    aria-sort={sort.key === c.key ? (sort.dir === 'asc' ? 'ascending' : 'descending') : 'none'}
                  >
                    <button type="button" className="sort" onClick={() => toggle(c.key)} title={c.title}>
                      {c.label}
                      <span aria-hidden="true" className="sort-mark">
                        {sort.key === c.key ? (sort.dir === 'asc' ? '▲' : '▼') : ''}
                      </span>
                    </button>
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {sorted.map((r) => {
                const risky = r.distancePct < props.alertPct
                return (
                  <tr
                    key={r.id}
                    data-testid="position-row"
                    data-position-id={r.id}
                    className={`${risky ? 'risky' : ''} ${props.selectedId === r.id ? 'selected' : ''}`}
                    aria-selected={props.selectedId === r.id}
                    tabIndex={0}
                    onClick={() => props.onSelect(r.id)}
                    onKeyDown={(e) => {
                      if (e.key === 'Enter' || e.key === ' ') {
                        e.preventDefault()
                        props.onSelect(r.id)
                      }
                    }}
                  >
                    {COLUMNS.map((c) => (
                      <td
                        key={c.key}
                        data-label={c.label}
                        data-col={c.key}
                        title={c.key === 'markPrice' ? markExplanation(r, lastPrice) : undefined}
                        className={[
                          c.phone === false ? 'hide-phone' : '',
                          c.numeric ? 'num' : '',
                          c.key === 'side' ? `side side-${r.side}` : '',
                          c.key === 'pl'
                            ? plClass(r.exchangePl)
                            : c.key === 'plPct'
                              ? plClass(r.pl)
                              : c.key === 'netPl'
                                ? plClass(r.netPl)
                                : '',
                          c.key === 'distancePct' && risky ? 'danger' : '',
                        ].join(' ')}
                      >
                        {c.key === 'pl' ? <span data-testid="pl-exchange">{c.render(r)}</span> : c.render(r)}
                        {c.key === 'pl' && r.plEstimated && (
                          <span className="pl-est" data-testid="pl-estimate" title={markExplanation(r, lastPrice)}>
                            est. {fmtSignedSats(r.pl)} @ {r.markSource}
                          </span>
                        )}
                        {c.key === 'netPl' && r.plEstimated && est}
                      </td>
                    ))}
                  </tr>
                )
              })}
            </tbody>
            <tfoot>
              <tr data-testid="positions-totals" className="totals">
                <th scope="row" data-label="Totals" data-testid="totals-label">
                  Totals ({rows.length}
                  {cross ? ' + cross' : ''})
                </th>
                <td className="num" data-label="Quantity">
                  ${fmtInt(totals.quantity)}
                </td>
                <td className="num hide-card" />
                <td className="num hide-card" />
                <td className="num hide-card" />
                <td className="num" data-label="Closest liq.">
                  {fmtPct(totals.minDistancePct)}
                </td>
                <td className="num hide-card" />
                <td className="num" data-label="Margin">
                  {fmtInt(totals.margin)}
                </td>
                <td className={`num ${plClass(totals.pl)}`} data-label="P&L (sats)">
                  {fmtSignedSats(totals.pl)}
                  {totals.plEstimated && est}
                </td>
                <td className="num hide-phone" data-label="Fees">
                  {fmtInt(totals.fees)}
                </td>
                <td className="num hide-phone" data-label="Funding">
                  {fmtSignedSats(totals.funding)}
                </td>
                <td className={`num ${plClass(totals.netPl)}`} data-label="Net P&L" data-testid="totals-net">
                  {fmtSignedSats(totals.netPl)}
                  {totals.plEstimated && est}
                </td>
                <td className={`num ${plClass(totals.pl)}`} data-label="P&L %">
                  {fmtSignedPct(totals.plPct)}
                </td>
                <td className="num hide-card" />
                <td className="num hide-card" />
              </tr>
            </tfoot>
          </table>
        </div>
      )}
    </Panel>
  )
}
