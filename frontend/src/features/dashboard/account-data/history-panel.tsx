/**
 * History: closed and canceled trades and filled cross orders, newest first, with realised P&L, fees and
 * funding; realised P&L over 24 h / 7 d / 30 d; "load more" through GET /api/history; CSV of what is shown.
 */
import { useMemo, useState } from 'react'
import { Panel } from '../components/freshness.tsx'
import { useRealtime } from '../../../lib/realtime-react.ts'
import { useApi } from '../../../lib/api-context.ts'
import { fmtDateTime, fmtInt, fmtPrice, fmtSignedSats } from '../../../lib/format.ts'
import { describeError } from '../../session/error-messages.ts'
import type { ApiClient } from '../../../lib/api-client.ts'
import { isLongSide, type ClosedTrade, type CrossOrder, type HistorySnapshot, type RealizedWindow } from './types.ts'

export interface HistoryRow {
  key: string
  kind: 'closed' | 'canceled' | 'cross'
  /** ms */
  time: number
  side: 'long' | 'short'
  quantity: number
  entry: number | null
  exit: number | null
  pl: number
  fees: number
  funding: number
  net: number
}

export function closedRow(t: ClosedTrade): HistoryRow {
  const fees = t.openingFee + t.closingFee
  const funding = t.sumFundingFees
  const pl = t.canceled ? 0 : t.pl
  return {
    key: `trade-${t.id}`,
    kind: t.canceled ? 'canceled' : 'closed',
    time: Date.parse(t.closedAt ?? t.filledAt ?? t.createdAt),
    side: t.side === 'buy' ? 'long' : 'short',
    quantity: t.quantity,
    entry: t.entryPrice,
    exit: t.exitPrice,
    pl,
    fees,
    funding,
    net: pl - fees - funding,
  }
}

export function crossFilledRow(o: CrossOrder): HistoryRow {
  return {
    key: `cross-${o.id}`,
    kind: 'cross',
    time: Date.parse(o.filledAt ?? o.createdAt),
    side: isLongSide(o.side) ? 'long' : 'short',
    quantity: o.quantity,
    entry: o.price,
    exit: null,
    pl: 0,
    fees: o.tradingFee,
    funding: 0,
    net: -o.tradingFee,
  }
}

/** every row once (by key), newest first */
export function mergeHistory(...lists: HistoryRow[][]): HistoryRow[] {
  const byKey = new Map<string, HistoryRow>()
  for (const list of lists) for (const r of list) byKey.set(r.key, r)
  return [...byKey.values()].sort((a, b) => b.time - a.time || a.key.localeCompare(b.key))
}

const csvCell = (v: string | number | null): string => {
  const s = v === null ? '' : String(v)
  // a leading = + - @ would be a formula in a spreadsheet: quoted and prefixed
  const safe = /^[=+\-@]/.test(s) && typeof v !== 'number' ? `'${s}` : s
  return /[",\n]/.test(safe) || safe !== s ? `"${safe.replace(/"/g, '""')}"` : safe
}

/** the rows shown, as CSV (UTC ISO times, sats and USD as plain numbers) */
export function historyCsv(rows: readonly HistoryRow[]): string {
  const head = ['time_utc', 'kind', 'side', 'quantity_usd', 'entry_price', 'exit_price', 'pl_sats', 'fees_sats', 'funding_sats', 'net_sats']
  const lines = rows.map((r) =>
    [
      Number.isFinite(r.time) ? new Date(r.time).toISOString() : '',
      r.kind,
      r.side,
      r.quantity,
      r.entry,
      r.exit,
      r.pl,
      r.fees,
      r.funding,
      r.net,
    ]
      .map(csvCell)
      .join(','),
  )
  return `${[head.join(','), ...lines].join('\n')}\n`
}

interface Page<T> {
  data: T[]
  nextCursor: string | null
}

async function loadMore(
  api: ApiClient,
  kind: 'closed' | 'cross-filled',
  cursor: string | null,
): Promise<{ rows: HistoryRow[]; nextCursor: string | null }> {
  const q = new URLSearchParams({ kind })
  if (cursor) q.set('cursor', cursor)
  if (kind === 'closed') {
    const page = await api.json<Page<ClosedTrade>>('GET', `/api/history?${q}`)
    return { rows: page.data.map(closedRow), nextCursor: page.nextCursor }
  }
  const page = await api.json<Page<CrossOrder>>('GET', `/api/history?${q}`)
  return { rows: page.data.map(crossFilledRow), nextCursor: page.nextCursor }
}

export function RealizedStrip(props: { realized: HistorySnapshot['realized'] }) {
  const cells: Array<[string, RealizedWindow]> = [
    ['24 h', props.realized.day],
    ['7 d', props.realized.week],
    ['30 d', props.realized.month],
  ]
  return (
    <dl className="kv realized" data-testid="realized">
      {cells.map(([label, w]) => (
        <div key={label}>
          <dt>Realised {label}</dt>
          <dd
            className={w.net > 0 ? 'pos' : w.net < 0 ? 'neg' : ''}
            data-testid={`realized-${label.replace(' ', '')}`}
            title={`P&L ${fmtSignedSats(w.pl)} − fees ${fmtInt(w.tradingFees)} − funding ${fmtSignedSats(w.fundingFees)}`}
          >
            {fmtSignedSats(w.net)} sats
          </dd>
        </div>
      ))}
    </dl>
  )
}

export function HistoryTable(props: { rows: HistoryRow[] }) {
  if (props.rows.length === 0) return <p className="empty">No closed trades yet.</p>
  return (
    <div className="table-wrap">
      <table className="positions history" data-testid="history-table">
        <caption className="sr-only">Closed and canceled trades and filled cross orders, newest first</caption>
        <thead>
          <tr>
            {['Time', 'Kind', 'Side', 'Quantity', 'Entry', 'Exit', 'P&L', 'Fees', 'Funding', 'Net'].map((h, i) => (
              <th key={h} scope="col" className={i > 2 ? 'num' : ''}>
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((r) => (
            <tr key={r.key} data-testid="history-row" data-kind={r.kind}>
              <td data-label="Time">{fmtDateTime(r.time)}</td>
              <td data-label="Kind">{r.kind === 'cross' ? 'Cross fill' : r.kind === 'canceled' ? 'Canceled' : 'Closed'}</td>
              <td data-label="Side" className={`side side-${r.side}`}>
                {r.side === 'long' ? 'Long' : 'Short'}
              </td>
              <td className="num" data-label="Quantity">
                ${fmtInt(r.quantity)}
              </td>
              <td className="num" data-label="Entry">
                {r.entry ? fmtPrice(r.entry) : '—'}
              </td>
              <td className="num" data-label="Exit">
                {r.exit ? fmtPrice(r.exit) : '—'}
              </td>
              <td className={`num ${r.pl > 0 ? 'pos' : r.pl < 0 ? 'neg' : ''}`} data-label="P&L">
                {fmtSignedSats(r.pl)}
              </td>
              <td className="num" data-label="Fees">
                {fmtInt(r.fees)}
              </td>
              <td className="num" data-label="Funding">
                {fmtSignedSats(r.funding)}
              </td>
              <td className={`num ${r.net > 0 ? 'pos' : r.net < 0 ? 'neg' : ''}`} data-label="Net">
                {fmtSignedSats(r.net)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

export function HistoryPanel() {
  const api = useApi()
  const history = useRealtime((s) => s.channels.history)
  const [more, setMore] = useState<HistoryRow[]>([])
  const [cursors, setCursors] = useState<{ closed: string | null | undefined; cross: string | null | undefined }>({
    closed: undefined,
    cross: undefined,
  })
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const rows = useMemo(() => {
    const h = history?.data
    return mergeHistory(h ? h.closed.map(closedRow) : [], h ? h.crossFilled.map(crossFilledRow) : [], more)
  }, [history, more])
  if (!history) return null
  const exhausted = cursors.closed === null && cursors.cross === null

  const load = async () => {
    setBusy(true)
    setError(null)
    try {
      const [c, x] = await Promise.all([
        cursors.closed === null ? null : loadMore(api, 'closed', cursors.closed ?? null),
        cursors.cross === null ? null : loadMore(api, 'cross-filled', cursors.cross ?? null),
      ])
      setMore((m) => [...m, ...(c?.rows ?? []), ...(x?.rows ?? [])])
      setCursors({ closed: c ? c.nextCursor : null, cross: x ? x.nextCursor : null })
    } catch (e) {
      setError(describeError(e))
    } finally {
      setBusy(false)
    }
  }

  const download = () => {
    const blob = new Blob([historyCsv(rows)], { type: 'text/csv;charset=utf-8' })
    const a = document.createElement('a')
    a.href = URL.createObjectURL(blob)
    a.download = `lnm-history-${new Date().toISOString().slice(0, 10)}.csv`
    a.click()
    setTimeout(() => URL.revokeObjectURL(a.href), 1000)
  }

  return (
    <Panel
      id="history"
      title="History"
      channel="history"
      sourceTs={history.sourceTs}
      className="panel-history"
      actions={
        <button type="button" onClick={download} disabled={rows.length === 0} data-testid="history-csv">
          Export CSV
        </button>
      }
    >
      <RealizedStrip realized={history.data.realized} />
      <HistoryTable rows={rows} />
      <div className="row-actions">
        <button type="button" onClick={() => void load()} disabled={busy || exhausted} data-testid="history-more">
          {busy ? 'Loading…' : exhausted ? 'All history shown' : 'Load more'}
        </button>
      </div>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </Panel>
  )
}
