/** The page a signed-out visitor sees. */
import { AuthForm } from '../../features/session/auth-form.tsx'
import type { SessionStore } from '../../features/session/session-store.ts'
import type { PublicConfig } from '../../config/public-config.ts'

export function LoginPage(props: {
  session: SessionStore
  notice: string | null
  config: PublicConfig
  theme: string
  onToggleTheme: () => void
}) {
  return (
    <div className="login-page">
      <header className="login-head">
        <div className="brand" aria-label="lnm-gateway">
          <span className="logo" aria-hidden="true">
            ⚡
          </span>
          lnm-gateway
        </div>
        {props.config.mode === 'demo' && (
          <span className="badge badge-demo" data-testid="demo-badge">
            DEMO
          </span>
        )}
        <button
          type="button"
          className="icon-btn"
          onClick={props.onToggleTheme}
          aria-label={`Switch to ${props.theme === 'dark' ? 'light' : 'dark'} theme`}
        >
          {props.theme === 'dark' ? '☀' : '☾'}
        </button>
      </header>
      <main className="login-main">
        <div className="pitch">
          <h1>Your LN Markets futures, live — and honest about it.</h1>
          <p>
            Balance, positions and P&amp;L pushed the moment they change. Every panel says how old its numbers are; when the connection or
            the exchange fails, you see it at once instead of trusting a frozen screen.
          </p>
        </div>
        <AuthForm session={props.session} notice={props.notice} demoLogin={props.config.demoLogin} />
      </main>
    </div>
  )
}
