/**
 * Always visible: how this page gets its numbers right now — LIVE (WebSocket), POLLING (HTTP fallback,
 * with the countdown to the next poll), RECONNECTING or OFFLINE; plus DEMO and exchange-health badges.
 */
import { useRealtime } from '../../lib/realtime-react.ts'
import { useNow } from '../../lib/use-now.ts'
import type { Transport } from '../../lib/realtime-client.ts'
import { describeReason } from './status-reasons.ts'
import { pollCountdownSeconds } from '../../lib/frame-policy.ts'

const LABEL: Record<Transport, string> = {
  connecting: 'CONNECTING',
  live: 'LIVE',
  silent: 'SILENT',
  polling: 'POLLING',
  reconnecting: 'RECONNECTING',
  offline: 'OFFLINE',
  stopped: 'OFFLINE',
}

const EXPLAIN: Record<Transport, string> = {
  connecting: 'Opening the live connection',
  live: 'Live: values are pushed as they change',
  silent: 'The live connection is open but nothing arrives on it: refreshing over HTTP until it answers or is replaced',
  polling: 'Live connection lost: refreshing over HTTP while reconnecting',
  reconnecting: 'Live connection lost: reconnecting',
  offline: 'The gateway cannot be reached: values are not updating',
  stopped: 'Not connected',
}

export function ConnectionChip() {
  const transport = useRealtime((s) => s.transport)
  const nextPollAt = useRealtime((s) => s.nextPollAt)
  const nextReconnectAt = useRealtime((s) => s.nextReconnectAt)
  const pollWaitMs = useRealtime((s) => s.pollWaitMs)
  const silentSince = useRealtime((s) => s.silentSince)
  const now = useNow()
  let detail = ''
  if (transport === 'polling' && nextPollAt) detail = `next in ${pollCountdownSeconds(nextPollAt, now, pollWaitMs)} s`
  else if (transport === 'silent' && silentSince !== null) detail = `no data for ${Math.max(0, Math.round((now - silentSince) / 1000))} s`
  else if (transport === 'reconnecting' && nextReconnectAt && nextReconnectAt > now)
    detail = `retry in ${Math.ceil((nextReconnectAt - now) / 1000)} s`
  return (
    <span className={`chip chip-${transport}`} data-testid="conn-chip" data-state={transport} title={EXPLAIN[transport]}>
      <span className="dot" aria-hidden="true" />
      <span className="chip-label">{LABEL[transport]}</span>
      {detail && <span className="chip-detail"> ({detail})</span>}
    </span>
  )
}

/**
 * The one live region for connection news: it changes only when the state does (never with a countdown),
 * so a screen reader hears "POLLING" once, not every second.
 */
export function ConnectionAnnouncer() {
  const transport = useRealtime((s) => s.transport)
  const upstream = useRealtime((s) => s.upstream)
  const down = Object.entries(upstream)
    .filter(([, u]) => u.state !== 'ok')
    .map(
      ([scope, u]) =>
        `${scope === 'ticker' ? 'market prices' : scope === 'account' ? 'account and positions' : 'exchange'} ${u.state}: ${describeReason(u.reason)}`,
    )
  const message = `Connection ${LABEL[transport]}. ${EXPLAIN[transport]}.${down.length ? ` ${down.join('. ')}.` : ''}`
  return (
    <div className="sr-only" role="status" aria-live="polite" aria-atomic="true" data-testid="sr-announcer">
      {message}
    </div>
  )
}

export function UpstreamChip() {
  const upstream = useRealtime((s) => s.upstream)
  const worst = Object.values(upstream).reduce<'ok' | 'degraded' | 'down'>(
    (w, u) => (u.state === 'down' || w === 'down' ? 'down' : u.state === 'degraded' ? 'degraded' : w),
    'ok',
  )
  if (worst === 'ok') return null
  return (
    <span className={`chip chip-upstream-${worst}`} data-testid="upstream-chip" data-state={worst} title="The exchange behind the gateway">
      EXCHANGE {worst === 'down' ? 'DOWN' : 'SLOW'}
    </span>
  )
}

export function DemoBadge({ demo }: { demo: boolean }) {
  const source = useRealtime((s) => s.source)
  if (!demo && source !== 'simulator') return null
  return (
    <span
      className="badge badge-demo"
      data-testid="demo-badge"
      title="Demo mode: every value comes from the built-in LN Markets simulator, not the real exchange"
    >
      DEMO
    </span>
  )
}
