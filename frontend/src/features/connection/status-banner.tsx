/** Why the numbers are ageing: the reason from the gateway's status frames (or the HTTP fallback's meta). */
import { useRealtime } from '../../lib/realtime-react.ts'
import { useNow } from '../../lib/use-now.ts'
import { fmtDuration } from '../../lib/format.ts'
import { describeReason } from './status-reasons.ts'

const SCOPE: Record<string, string> = {
  account: 'Account and positions',
  ticker: 'Market prices',
  all: 'The exchange',
}

/** the page's own connection trouble (the chip says it briefly; this says what it means) */
export function TransportBanner() {
  const transport = useRealtime((s) => s.transport)
  if (transport === 'polling')
    return (
      <div className="banner banner-transport" data-testid="transport-banner">
        <span className="banner-icon" aria-hidden="true">
          ↻
        </span>
        <p>The live connection is down. Values are fetched over HTTP every 30 s while the page reconnects; each panel shows how old its numbers are.</p>
      </div>
    )
  if (transport === 'reconnecting')
    return (
      <div className="banner banner-transport" data-testid="transport-banner">
        <span className="banner-icon" aria-hidden="true">
          ↻
        </span>
        <p>The live connection was lost. Reconnecting…</p>
      </div>
    )
  if (transport === 'offline')
    return (
      <div className="banner banner-offline" data-testid="transport-banner">
        <span className="banner-icon" aria-hidden="true">
          ⚠
        </span>
        <p>The gateway cannot be reached. The values below are the last ones received and are not updating.</p>
      </div>
    )
  return null
}

export function StatusBanner() {
  const upstream = useRealtime((s) => s.upstream)
  const offset = useRealtime((s) => s.serverOffsetMs)
  const now = useNow()
  const entries = Object.entries(upstream).filter(([, u]) => u.state !== 'ok')
  if (entries.length === 0) return null
  return (
    <div className={`banner ${entries.some(([, u]) => u.state === 'down') ? 'banner-down' : 'banner-degraded'}`} data-testid="status-banner">
      <span className="banner-icon" aria-hidden="true">
        ⚠
      </span>
      <div>
        {entries.map(([scope, u]) => (
          <p key={scope}>
            <strong>
              {SCOPE[scope] ?? 'The exchange'} {u.state === 'down' ? 'not updating' : 'updating slowly'}:
            </strong>{' '}
            <span data-testid="status-reason" data-reason={u.reason ?? ''}>
              {describeReason(u.reason)}
            </span>
            {u.lastSuccessTs ? <> — last good data {fmtDuration(now + offset - u.lastSuccessTs)} ago.</> : '.'}
          </p>
        ))}
        <p className="small">The last values stay on screen, greyed and marked STALE once they are older than the freshness limit.</p>
      </div>
    </div>
  )
}
