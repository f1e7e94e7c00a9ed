/**
 * The in-page alerts: two live regions that are always in the page (a region added together with its text is
 * often not announced) — polite for most alerts, assertive for a liquidation, a lost connection or the exchange
 * going down, which a screen reader should say at once.
 */
import type { AlertEvent } from './alert-engine.ts'

function Toast(props: { alert: AlertEvent; onDismiss: (id: string) => void }) {
  const a = props.alert
  return (
    <div className={`toast toast-${a.urgency} toast-${a.kind}`} data-testid="alert-toast" data-kind={a.kind}>
      <div className="toast-text">
        <strong>{a.title}</strong>
        <span> {a.body}</span>
      </div>
      <button type="button" className="toast-close" onClick={() => props.onDismiss(a.id)} aria-label={`Dismiss: ${a.title}`}>
        ×
      </button>
    </div>
  )
}

export function AlertToasts(props: { toasts: readonly AlertEvent[]; onDismiss: (id: string) => void }) {
  const urgent = props.toasts.filter((t) => t.urgency === 'assertive')
  const polite = props.toasts.filter((t) => t.urgency === 'polite')
  return (
    <div className="toasts" data-testid="alert-toasts">
      <div role="alert" aria-live="assertive" aria-atomic="false" className="toast-stack">
        {urgent.map((t) => (
          <Toast key={t.id} alert={t} onDismiss={props.onDismiss} />
        ))}
      </div>
      <div role="status" aria-live="polite" aria-atomic="false" className="toast-stack">
        {polite.map((t) => (
          <Toast key={t.id} alert={t} onDismiss={props.onDismiss} />
        ))}
      </div>
    </div>
  )
}
