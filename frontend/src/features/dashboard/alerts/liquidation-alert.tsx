/**
 * The liquidation-risk alert: below the distance the user sets it shows in the page, in the tab title,
 * and as a browser notification when the user allowed them.
 */
import { useEffect, useRef, useState } from 'react'
import { fmtPct, fmtPrice } from '../../../lib/format.ts'
import type { PositionRow } from '../positions/position-math.ts'

const canNotify = typeof window !== 'undefined' && 'Notification' in window

export function useTabTitle(atRisk: PositionRow[], lastPrice: number | undefined): void {
  useEffect(() => {
    const price = lastPrice ? `${fmtPrice(lastPrice)} · ` : ''
    const worst = atRisk[0]
    document.title = worst ? `⚠ LIQ ${fmtPct(worst.distancePct, 1)} · ${price}lnm-gateway` : `${price}lnm-gateway`
  }, [atRisk, lastPrice])
  useEffect(() => () => void (document.title = 'lnm-gateway'), [])
}

export function LiquidationAlert(props: {
  rows: PositionRow[]
  thresholdPct: number
  onThreshold: (pct: number) => void
  stale: boolean
}) {
  const atRisk = props.rows.filter((r) => r.distancePct < props.thresholdPct).sort((a, b) => a.distancePct - b.distancePct)
  const [permission, setPermission] = useState<NotificationPermission | 'unsupported'>(canNotify ? Notification.permission : 'unsupported')
  const notified = useRef(new Set<string>())
  // what is being typed ("0", "0.", "") may not be a valid threshold yet: only valid values are applied
  const [draft, setDraft] = useState(String(props.thresholdPct))

  useEffect(() => {
    const ids = new Set(atRisk.map((r) => r.id))
    // forget positions that left the danger zone, so they alert again if they come back
    for (const id of notified.current) if (!ids.has(id)) notified.current.delete(id)
    if (permission !== 'granted') return
    for (const r of atRisk) {
      if (notified.current.has(r.id)) continue
      notified.current.add(r.id)
      try {
        new Notification('Liquidation risk', {
          body: `${r.side} $${r.quantity.toLocaleString('en-US')} is ${fmtPct(r.distancePct)} from liquidation at ${fmtPrice(r.liquidation)}`,
          tag: `liq-${r.id}`,
        })
      } catch {
        /* some browsers only allow notifications from a service worker */
      }
    }
  }, [atRisk, permission])

  const ask = async () => {
    if (!canNotify) return
    setPermission(await Notification.requestPermission())
  }

  return (
    <section className="panel panel-alerts" aria-labelledby="alerts-title" data-testid="panel-alerts">
      <header className="panel-head">
        <h2 id="alerts-title">Liquidation alert</h2>
      </header>
      <div className="panel-body">
        <div className="alert-settings">
          <label htmlFor="liq-threshold">Warn when a position is closer than</label>
          <span className="input-suffix">
            <input
              id="liq-threshold"
              type="number"
              inputMode="decimal"
              min={0.5}
              max={90}
              step={0.5}
              value={draft}
              data-testid="liq-threshold"
              aria-invalid={!(Number(draft) > 0 && Number(draft) <= 90)}
              onChange={(e) => {
                setDraft(e.target.value)
                const v = Number(e.target.value)
                if (e.target.value !== '' && Number.isFinite(v) && v > 0 && v <= 90) props.onThreshold(v)
              }}
              onBlur={() => setDraft(String(props.thresholdPct))}
            />
            <span aria-hidden="true">%</span>
          </span>
          <span>to liquidation</span>
        </div>
        <p className="small muted">
          {permission === 'granted' ? (
            'Browser notifications are on.'
          ) : permission === 'denied' ? (
            'Browser notifications are blocked for this site.'
          ) : permission === 'unsupported' ? (
            'This browser cannot show notifications; the alert shows here and in the tab title.'
          ) : (
            <button type="button" className="link" onClick={() => void ask()}>
              Also notify me when this tab is in the background
            </button>
          )}
        </p>
        {atRisk.length > 0 ? (
          <div className="liq-alert" data-testid="liq-alert">
            {/* the alert text changes only with the count, not with every tick of the distances below */}
            <p role="alert" className="liq-alert-title">
              <strong>
                {atRisk.length} position{atRisk.length > 1 ? 's' : ''} within {props.thresholdPct} % of liquidation
                {props.stale ? ' (prices are STALE)' : ''}
              </strong>
            </p>
            <ul>
              {atRisk.slice(0, 4).map((r) => (
                <li key={r.id}>
                  {r.side} ${r.quantity.toLocaleString('en-US')} at {r.leverage}× — {fmtPct(r.distancePct)} away (liq. {fmtPrice(r.liquidation)})
                </li>
              ))}
            </ul>
          </div>
        ) : (
          <p className="ok-note small" data-testid="liq-ok">
            {props.rows.length ? `All positions are more than ${props.thresholdPct} % from liquidation.` : 'No running positions to watch.'}
          </p>
        )}
      </div>
    </section>
  )
}
