/** Why the numbers are ageing: the reason from the gateway's status frames (or the HTTP fallback's meta). */
import { useRealtime } from '../../lib/realtime-react.ts'
import { useNow } from '../../lib/use-now.ts'
import { fmtDuration } from '../../lib/format.ts'
import { describeReason } from './status-reasons.ts'
import { CHANNEL_NAME, SCOPE_CHANNELS, channelAgeMs } from '../../lib/channel-age.ts'

const SCOPE: Record<string, string> = {
  account: 'Account and positions',
  ticker: 'Market prices',
  all: 'The exchange',
}

/** the page's own connection trouble (the chip says it briefly; this says what it means) */
export function TransportBanner() {
  const transport = useRealtime((s) => s.transport)
  const pollWaitMs = useRealtime((s) => s.pollWaitMs)
  const every = pollWaitMs > 0 ? ` every ${Math.round(pollWaitMs / 1000)} s` : ''
  if (transport === 'silent')
    return (
      <div className="banner banner-transport" data-testid="transport-banner" data-kind="silent">
        <span className="banner-icon" aria-hidden="true">
          ⚠
        </span>
        <p>
          The live connection is open but silent: no price or heartbeat has arrived. Values are fetched over HTTP{every} until it answers or
          is replaced.
        </p>
      </div>
    )
  if (transport === 'polling')
    return (
      <div className="banner banner-transport" data-testid="transport-banner">
        <span className="banner-icon" aria-hidden="true">
          ↻
        </span>
        <p>
          The live connection is down. Values are fetched over HTTP{every} while the page reconnects; each panel shows how old its numbers
          are.
        </p>
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
  const channels = useRealtime((s) => s.channels)
  const now = useNow()
  const entries = Object.entries(upstream).filter(([, u]) => u.state !== 'ok')
  if (entries.length === 0) return null
  // the age of each affected channel, computed exactly as its panel computes it (one source of truth)
  const ages = (scope: string) =>
    (SCOPE_CHANNELS[scope] ?? SCOPE_CHANNELS.all!)
      .map((c) => ({ c, age: channelAgeMs(channels[c]?.sourceTs, now, offset) }))
      .filter((x): x is { c: (typeof x)['c']; age: number } => x.age !== null)
  return (
    <div
      className={`banner ${entries.some(([, u]) => u.state === 'down') ? 'banner-down' : 'banner-degraded'}`}
      data-testid="status-banner"
    >
      <span className="banner-icon" aria-hidden="true">
        ⚠
      </span>
      <div>
        {entries.map(([scope, u]) => {
          const list = ages(scope)
          return (
            <p key={scope}>
              <strong>
                {SCOPE[scope] ?? 'The exchange'} {u.state === 'down' ? 'not updating' : 'updating slowly'}:
              </strong>{' '}
              <span data-testid="status-reason" data-reason={u.reason ?? ''}>
                {describeReason(u.reason)}
              </span>
              {list.length > 0 ? (
                <>
                  {' '}
                  — last data:{' '}
                  {list.map((x, i) => (
                    <span key={x.c} data-testid={`banner-age-${x.c}`}>
                      {i > 0 ? ', ' : ''}
                      {CHANNEL_NAME[x.c]} {fmtDuration(x.age)} ago
                    </span>
                  ))}
                  .
                </>
              ) : (
                '.'
              )}
            </p>
          )
        })}
        <p className="small">The last values stay on screen, marked STALE once they are older than the freshness limit.</p>
      </div>
    </div>
  )
}
