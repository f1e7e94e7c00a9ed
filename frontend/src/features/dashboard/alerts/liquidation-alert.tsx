/**
 * The liquidation-risk alert: below the distance the user sets it shows in the page, in the tab title,
 * and as a browser notification when the user allowed them.
 */
import { useEffect, useRef, useState } from 'react'
import { fmtPct, fmtPrice } from '../../../lib/format.ts'
import type { PositionRow } from '../positions/position-math.ts'
import { joinNames } from '../../../lib/channel-age.ts'

/** why a typed threshold cannot be used, said plainly; null when it can (0 < pct ≤ 90) */
export function thresholdProblem(text: string): string | null {
  const trimmed = text.trim()
  if (trimmed === '') return 'Enter a distance in %, for example 10.'
  const v = Number(trimmed)
  if (!Number.isFinite(v)) return 'The distance must be a number, for example 10.'
  if (v <= 0) return 'The distance must be more than 0 %: at 0 % the alert would only fire at liquidation itself.'
  if (v > 90) return 'The distance must be 90 % or less.'
  return null
}

/** "(positions are STALE)" — names exactly the channels whose data is stale */
export function staleNote(staleParts: readonly string[]): string {
  return staleParts.length
    ? ` (${joinNames(staleParts)} ${staleParts.length === 1 && !staleParts[0]!.endsWith('s') ? 'is' : 'are'} STALE)`
    : ''
}

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
  /** the trader answered the browser's notification question (asked from the button below) */
  onPermission?: (permission: NotificationPermission) => void
  /** the trader wants browser notifications (alert settings); default true */
  notifyEnabled?: boolean
  /** the names of the stale inputs ('positions', 'prices', …), empty when all are fresh */
  staleParts: readonly string[]
}) {
  const atRisk = props.rows.filter((r) => r.distancePct < props.thresholdPct).sort((a, b) => a.distancePct - b.distancePct)
  const [permission, setPermission] = useState<NotificationPermission | 'unsupported'>(() =>
    canNotify ? Notification.permission : 'unsupported',
  )
  const notified = useRef(new Set<string>())
  // what is being typed ("0", "0.", "") may not be a valid threshold yet: only valid values are applied
  const [draft, setDraft] = useState(String(props.thresholdPct))
  const problem = thresholdProblem(draft)
  // the threshold changed elsewhere (loaded from the gateway, saved on another device): show it
  useEffect(() => {
    setDraft((d) => (Number(d) === props.thresholdPct ? d : String(props.thresholdPct)))
  }, [props.thresholdPct])

  useEffect(() => {
    const ids = new Set(atRisk.map((r) => r.id))
    // forget positions that left the danger zone, so they alert again if they come back
    for (const id of notified.current) if (!ids.has(id)) notified.current.delete(id)
    if (permission !== 'granted' || props.notifyEnabled === false) return
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
  }, [atRisk, permission, props.notifyEnabled])

  const ask = async () => {
    if (!canNotify) return
    const answer = await Notification.requestPermission()
    setPermission(answer)
    props.onPermission?.(answer)
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
              aria-invalid={problem !== null}
              aria-describedby={problem ? 'liq-threshold-error' : undefined}
              onChange={(e) => {
                setDraft(e.target.value)
                if (thresholdProblem(e.target.value) === null) props.onThreshold(Number(e.target.value))
              }}
            />
            <span aria-hidden="true">%</span>
          </span>
          <span>to liquidation</span>
        </div>
        {problem && (
          <p className="field-error" id="liq-threshold-error" role="alert" data-testid="liq-threshold-error">
            {problem} The alert keeps using {props.thresholdPct} %.
          </p>
        )}
        <p className="small muted">
          {permission === 'granted' && props.notifyEnabled !== false ? (
            'Browser notifications are on.'
          ) : permission === 'granted' ? (
            <button type="button" className="link" onClick={() => props.onPermission?.('granted')}>
              Also notify me when this tab is in the background
            </button>
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
                {staleNote(props.staleParts)}
              </strong>
            </p>
            <ul>
              {atRisk.slice(0, 4).map((r) => (
                <li key={r.id}>
                  {r.side} ${r.quantity.toLocaleString('en-US')} at {r.leverage}× — {fmtPct(r.distancePct)} away (liq.{' '}
                  {fmtPrice(r.liquidation)})
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
