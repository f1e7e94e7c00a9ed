/** The trader's dashboard: composes the connection, ticker, account, chart, alert, positions and key panels. */
import { useEffect, useMemo, useState } from 'react'
import { RealtimeClient, type DashboardFetchResult } from '../../lib/realtime-client.ts'
import { RealtimeContext, useRealtime } from '../../lib/realtime-react.ts'
import { ApiError, type ApiClient } from '../../lib/api-client.ts'
import { terminalReason } from '../../lib/frame-policy.ts'
import { wsUrl, type PublicConfig } from '../../config/public-config.ts'
import type { SessionStore, User } from '../../features/session/session-store.ts'
import { ConnectionAnnouncer, ConnectionChip, DemoBadge, UpstreamChip } from '../../features/connection/connection-chip.tsx'
import { StatusBanner, TransportBanner } from '../../features/connection/status-banner.tsx'
import { TickerBar } from '../../features/dashboard/ticker/ticker-bar.tsx'
import { BalanceCard } from '../../features/dashboard/account/balance-card.tsx'
import { ChartPanel } from '../../features/dashboard/chart/chart-panel.tsx'
import { PositionsTable } from '../../features/dashboard/positions/positions-table.tsx'
import { usePositionRows } from '../../features/dashboard/positions/use-position-rows.ts'
import { sortRows, DEFAULT_SORT } from '../../features/dashboard/positions/position-math.ts'
import { LiquidationAlert, useTabTitle } from '../../features/dashboard/alerts/liquidation-alert.tsx'
import { useFreshness } from '../../features/dashboard/components/freshness.tsx'
import { CredentialsPanel } from '../../features/credentials/credentials-panel.tsx'
import { OpenOrdersPanel } from '../../features/dashboard/account-data/open-orders.tsx'
import { CrossCard } from '../../features/dashboard/account-data/cross-card.tsx'
import { HistoryPanel } from '../../features/dashboard/account-data/history-panel.tsx'
import type { DashboardResponse } from '../../../../backend/schemas/ws-protocol.ts'
import { useAlertSettings } from '../../features/alerts/alert-settings.ts'
import { useAlertFeed } from '../../features/alerts/use-alert-feed.ts'
import { AlertToasts } from '../../features/alerts/alert-toasts.tsx'
import { AlertsPanel } from '../../features/alerts/alerts-panel.tsx'

function createClient(api: ApiClient, session: SessionStore, config: PublicConfig): RealtimeClient {
  return new RealtimeClient({
    url: wsUrl(),
    getToken: session.getToken,
    refreshToken: () => session.refresh(),
    staleAfterMs: config.staleAfterMs,
    events: { win: window, doc: document },
    onTerminal: (code, reason) => session.end(terminalReason(code, reason)),
    fetchDashboard: async (): Promise<DashboardFetchResult> => {
      try {
        const res = await api.raw<DashboardResponse>('GET', '/api/dashboard')
        if (!res.data) return { kind: 'error', network: false }
        return { kind: 'ok', body: res.data }
      } catch (e) {
        if (e instanceof ApiError) return { kind: 'error', network: e.status === 0, retryAfterMs: e.retryAfterMs }
        return { kind: 'error', network: true }
      }
    },
  })
}

export function DashboardPage(props: {
  api: ApiClient
  session: SessionStore
  user: User
  config: PublicConfig
  theme: string
  onToggleTheme: () => void
}) {
  const [client] = useState(() => createClient(props.api, props.session, props.config))
  useEffect(() => {
    const offToken = props.session.onToken((t) => client.setToken(t))
    client.start()
    return () => {
      offToken()
      client.stop()
    }
  }, [client, props.session])

  return (
    <RealtimeContext.Provider value={client}>
      <Dashboard {...props} client={client} />
    </RealtimeContext.Provider>
  )
}

function Dashboard(props: {
  api: ApiClient
  session: SessionStore
  user: User
  config: PublicConfig
  theme: string
  onToggleTheme: () => void
  client: RealtimeClient
}) {
  // alert settings live on the gateway (they follow the trader to another device)
  const alerts = useAlertSettings(props.api)
  const alertPct = alerts.settings.liquidationPct
  const feed = useAlertFeed(props.client, alerts.settings, alerts.markTriggered)
  const [selectedId, setSelectedId] = useState<string | null>(null)
  const { rows, cross, sourceTs } = usePositionRows()
  // a new account without an API key sees the market and the key form, nothing else
  const noKey = useRealtime((s) => s.hasCredentials === false)
  const ticker = useRealtime((s) => s.channels.ticker)
  const positionsFresh = useFreshness(sourceTs)
  const tickerFresh = useFreshness(ticker?.sourceTs)

  // the cross-margin position is watched by the liquidation alert like any isolated one
  const riskiestFirst = useMemo(() => sortRows(cross ? [...rows, cross] : rows, DEFAULT_SORT), [rows, cross])
  const selected = riskiestFirst.find((r) => r.id === selectedId) ?? riskiestFirst[0] ?? null
  const atRisk = useMemo(() => riskiestFirst.filter((r) => r.distancePct < alertPct), [riskiestFirst, alertPct])
  useTabTitle(atRisk, ticker?.data.lastPrice)

  return (
    <div className="app">
      <a className="skip-link" href="#positions-title">
        Skip to positions
      </a>
      <header className="topbar">
        <h1 className="brand">
          <span className="logo" aria-hidden="true">
            ⚡
          </span>
          <span className="brand-name">lnm-gateway</span>
          <span className="sr-only"> trading dashboard</span>
        </h1>
        <DemoBadge demo={props.config.mode === 'demo'} />
        <ConnectionChip />
        <UpstreamChip />
        <span className="spacer" />
        <button
          type="button"
          className="icon-btn"
          onClick={props.onToggleTheme}
          aria-label={`Switch to ${props.theme === 'dark' ? 'light' : 'dark'} theme`}
        >
          {props.theme === 'dark' ? '☀' : '☾'}
        </button>
        <span className="user" title="Signed in" data-testid="username-label">
          {props.user.username}
        </span>
        <button type="button" className="signout" onClick={() => void props.session.logout()} data-testid="logout">
          Sign out
        </button>
      </header>
      {/* the document order is the visual order (no CSS order): the keyboard follows what the eye sees */}
      <main id="main" className="main">
        <ConnectionAnnouncer />
        <TransportBanner />
        <StatusBanner />
        <TickerBar />
        {noKey && <CredentialsPanel prominent demo={props.config.mode === 'demo'} onChanged={() => props.client.resync('credentials')} />}
        <div className={`board ${noKey ? 'board-no-key' : ''} ${cross ? 'has-cross' : ''}`}>
          {!noKey && (
            <LiquidationAlert
              rows={riskiestFirst}
              thresholdPct={alertPct}
              onThreshold={(pct) => alerts.change(() => ({ liquidationPct: pct }), 600)}
              onPermission={(p) => p === 'granted' && alerts.change(() => ({ browserNotifications: true }))}
              notifyEnabled={alerts.settings.browserNotifications}
              staleParts={[...(positionsFresh.stale ? ['positions'] : []), ...(tickerFresh.stale ? ['prices'] : [])]}
            />
          )}
          {!noKey && <BalanceCard />}
          {!noKey && <CrossCard />}
          {!noKey && <PositionsTable alertPct={alertPct} selectedId={selected?.id ?? null} onSelect={setSelectedId} />}
          {!noKey && <OpenOrdersPanel />}
          <ChartPanel position={noKey ? null : selected} theme={props.theme} />
          {!noKey && <HistoryPanel />}
          <AlertsPanel handle={alerts} log={feed.log} lastPrice={ticker?.data.lastPrice} />
        </div>
        {!noKey && (
          <CredentialsPanel prominent={false} demo={props.config.mode === 'demo'} onChanged={() => props.client.resync('credentials')} />
        )}
      </main>
      <AlertToasts toasts={feed.toasts} onDismiss={feed.dismiss} />
      <footer className="footer small muted">
        {props.config.mode === 'demo'
          ? 'Demo mode: all values come from the built-in LN Markets simulator. '
          : 'Data from LN Markets via this gateway. '}
        Values older than {Math.round(props.config.staleAfterMs / 1000)} s are marked STALE.
      </footer>
    </div>
  )
}
