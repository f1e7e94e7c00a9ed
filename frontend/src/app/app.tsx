/** The app shell: public config, theme, and either the login page or the dashboard. */
import { useEffect, useState, useSyncExternalStore } from 'react'
import { ApiContext } from '../lib/api-context.ts'
import type { ApiClient } from '../lib/api-client.ts'
import { loadPublicConfig, type PublicConfig } from '../config/public-config.ts'
import type { SessionStore } from '../features/session/session-store.ts'
import { useTheme } from './theme.ts'
import { LoginPage } from './pages/login-page.tsx'
import { DashboardPage } from './pages/dashboard-page.tsx'

export function App({ api, session }: { api: ApiClient; session: SessionStore }) {
  const state = useSyncExternalStore(session.subscribe, session.getState)
  const [config, setConfig] = useState<PublicConfig | null>(null)
  const [theme, toggleTheme] = useTheme()

  useEffect(() => {
    void loadPublicConfig().then(setConfig)
    void session.restore()
  }, [session])

  if (!config || state.status === 'loading') {
    return (
      <div className="splash" role="status" aria-live="polite">
        Loading…
      </div>
    )
  }
  return (
    <ApiContext.Provider value={api}>
      {state.status === 'authenticated' && state.user ? (
        <DashboardPage api={api} session={session} user={state.user} config={config} theme={theme} onToggleTheme={toggleTheme} />
      ) : (
        <LoginPage session={session} notice={state.notice} config={config} theme={theme} onToggleTheme={toggleTheme} />
      )}
    </ApiContext.Provider>
  )
}
