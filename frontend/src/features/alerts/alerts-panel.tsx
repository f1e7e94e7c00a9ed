/**
 * The alert settings (saved on the gateway, so they follow the trader to another device) and the log of the
 * alerts raised during this visit. A plain form: every control has a label, errors are sentences tied to their
 * field, and everything works from the keyboard.
 */
import { useState, type FormEvent } from 'react'
import { fmtPrice } from '../../lib/format.ts'
import type { AlertEvent, AlertNotify, PriceLevel } from './alert-engine.ts'
import { MAX_NOTE_LENGTH, MAX_PRICE_LEVELS, newLevelId, priceLevelProblem, type AlertSettingsHandle } from './alert-settings.ts'

const NOTIFY_LABELS: Array<[keyof AlertNotify, string]> = [
  ['connectionLoss', 'The live connection is lost (and when it is back)'],
  ['exchangeDown', 'LN Markets goes down (and when it is back)'],
  ['fills', 'An order is filled'],
  ['closes', 'A position is closed (by hand, stop-loss or take-profit)'],
  ['liquidations', 'A position is liquidated'],
]

const canNotify = typeof window !== 'undefined' && 'Notification' in window
const time = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' })

function levelText(l: PriceLevel): string {
  return `${l.direction === 'above' ? 'Above' : 'Below'} ${fmtPrice(l.price)}`
}

export function AlertsPanel(props: { handle: AlertSettingsHandle; log: readonly AlertEvent[]; lastPrice: number | undefined }) {
  const { settings, change, state, error } = props.handle
  const [priceText, setPriceText] = useState('')
  const [direction, setDirection] = useState<'above' | 'below'>('above')
  const [note, setNote] = useState('')
  const [problem, setProblem] = useState<string | null>(null)
  const [permission, setPermission] = useState<NotificationPermission | 'unsupported'>(() =>
    canNotify ? Notification.permission : 'unsupported',
  )

  const addLevel = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault()
    const p = priceLevelProblem(priceText, note, settings.priceLevels.length)
    setProblem(p)
    if (p) return
    const price = Number(priceText.trim().replace(/,/g, ''))
    const level: PriceLevel = { id: newLevelId(), price, direction, ...(note.trim() ? { note: note.trim() } : {}), triggeredAt: null }
    change((cur) => ({ priceLevels: [...cur.priceLevels, level] }))
    setPriceText('')
    setNote('')
  }

  const toggleBrowser = async (on: boolean) => {
    // asked here, in the handler of the trader's own click: browsers ignore a permission request made without one
    if (on && canNotify && Notification.permission === 'default') setPermission(await Notification.requestPermission())
    change(() => ({ browserNotifications: on }))
  }

  const wrongSide =
    props.lastPrice !== undefined && !problem && Number(priceText) > 0
      ? direction === 'above'
        ? props.lastPrice >= Number(priceText)
        : props.lastPrice <= Number(priceText)
      : false

  return (
    <section className="panel panel-alert-settings" aria-labelledby="alert-settings-title" data-testid="panel-alert-settings">
      <header className="panel-head">
        <h2 id="alert-settings-title">Alerts</h2>
        <span className="small muted" role="status" aria-live="polite" data-testid="alert-settings-state">
          {state === 'loading'
            ? 'Loading your settings…'
            : state === 'saving'
              ? 'Saving…'
              : state === 'saved'
                ? 'Saved for all your devices'
                : ''}
        </span>
      </header>
      <div className="panel-body alert-settings-body">
        {error && (
          <p className="field-error" role="alert" data-testid="alert-settings-error">
            {error}
          </p>
        )}
        <fieldset className="alert-fieldset">
          <legend>Tell me when</legend>
          {NOTIFY_LABELS.map(([key, label]) => (
            <label key={key} className="check">
              <input
                type="checkbox"
                checked={settings.notify[key]}
                data-testid={`notify-${key}`}
                onChange={(e) => {
                  const on = e.target.checked
                  change((cur) => ({ notify: { ...cur.notify, [key]: on } }))
                }}
              />
              {label}
            </label>
          ))}
          <label className="check">
            <input
              type="checkbox"
              checked={settings.browserNotifications}
              data-testid="notify-browser"
              disabled={permission === 'unsupported'}
              onChange={(e) => void toggleBrowser(e.target.checked)}
              aria-describedby="notify-browser-note"
            />
            Also as browser notifications while this tab is in the background
          </label>
          <p className="small muted" id="notify-browser-note" data-testid="notify-browser-note">
            {permission === 'unsupported'
              ? 'This browser cannot show notifications; alerts show on this page.'
              : permission === 'denied'
                ? 'Notifications are blocked for this site in the browser settings; alerts show on this page only.'
                : settings.browserNotifications && permission === 'granted'
                  ? 'On. While this page is in front of you, alerts show on the page only.'
                  : 'Alerts always show on this page.'}
          </p>
        </fieldset>

        <fieldset className="alert-fieldset">
          <legend>
            Price levels ({settings.priceLevels.length} of {MAX_PRICE_LEVELS})
          </legend>
          {settings.priceLevels.length > 0 ? (
            <ul className="level-list" data-testid="price-levels">
              {settings.priceLevels.map((l) => (
                <li key={l.id} data-testid="price-level">
                  <span>
                    <strong>{levelText(l)}</strong>
                    {l.note ? ` — ${l.note}` : ''}
                    <span className="small muted">
                      {' '}
                      {l.triggeredAt ? `· last crossed ${new Date(l.triggeredAt).toLocaleString('en-GB')}` : '· not crossed yet'}
                    </span>
                  </span>
                  <button
                    type="button"
                    className="link"
                    onClick={() => change((cur) => ({ priceLevels: cur.priceLevels.filter((x) => x.id !== l.id) }))}
                    aria-label={`Remove price level ${levelText(l)}`}
                  >
                    Remove
                  </button>
                </li>
              ))}
            </ul>
          ) : (
            <p className="small muted">No price levels yet. Add one to be told when the last price crosses it.</p>
          )}
          <form className="level-form" onSubmit={addLevel} noValidate data-testid="level-form">
            <label htmlFor="level-direction">When the price goes</label>
            <select
              id="level-direction"
              value={direction}
              onChange={(e) => setDirection(e.target.value === 'below' ? 'below' : 'above')}
              data-testid="level-direction"
            >
              <option value="above">above</option>
              <option value="below">below</option>
            </select>
            <label htmlFor="level-price">Price (USD)</label>
            <input
              id="level-price"
              inputMode="decimal"
              autoComplete="off"
              value={priceText}
              data-testid="level-price"
              aria-invalid={problem !== null}
              aria-describedby={problem ? 'level-error' : wrongSide ? 'level-hint' : undefined}
              onChange={(e) => {
                setPriceText(e.target.value)
                if (problem) setProblem(null)
              }}
            />
            <label htmlFor="level-note">Note (optional)</label>
            <input
              id="level-note"
              value={note}
              maxLength={MAX_NOTE_LENGTH}
              onChange={(e) => setNote(e.target.value)}
              data-testid="level-note"
            />
            <button type="submit" className="primary" data-testid="level-add">
              Add level
            </button>
          </form>
          {problem && (
            <p className="field-error" id="level-error" role="alert" data-testid="level-error">
              {problem}
            </p>
          )}
          {!problem && wrongSide && props.lastPrice !== undefined && (
            <p className="small muted" id="level-hint">
              The price ({fmtPrice(props.lastPrice)}) is already {direction} this level: it alerts after the price comes back and crosses
              it.
            </p>
          )}
        </fieldset>

        <div className="alert-log">
          <h3 id="alert-log-title">Recent alerts</h3>
          {props.log.length ? (
            // scrolls when long: focusable, so the keyboard can scroll it too
            <ol data-testid="alert-log" tabIndex={0} aria-labelledby="alert-log-title">
              {props.log.map((a) => (
                <li key={a.id} data-kind={a.kind}>
                  <span className="small muted">{time.format(a.at)}</span> <strong>{a.title}</strong> {a.body}
                </li>
              ))}
            </ol>
          ) : (
            <p className="small muted">No alerts during this visit yet.</p>
          )}
        </div>
      </div>
    </section>
  )
}
