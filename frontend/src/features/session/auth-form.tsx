/** Sign in / create account, with every API error said plainly and, in demo mode, the demo login. */
import { useRef, useState, type FormEvent, type KeyboardEvent } from 'react'
import { describeError, splitSentences } from './error-messages.ts'
import type { SessionStore } from './session-store.ts'

type Mode = 'login' | 'register'

export function AuthForm(props: {
  session: SessionStore
  notice: string | null
  demoLogin?: { username: string; password: string } | undefined
}) {
  const [mode, setMode] = useState<Mode>('login')
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)

  const run = async (m: Mode, u: string, p: string) => {
    setBusy(true)
    setError(null)
    props.session.clearNotice()
    try {
      if (m === 'login') await props.session.login(u, p)
      else await props.session.register(u, p)
    } catch (e) {
      setError(describeError(e, m))
      setBusy(false)
    }
  }

  const submit = (e: FormEvent) => {
    e.preventDefault()
    if (!username.trim() || !password) {
      setError('Enter a username and a password.')
      return
    }
    if (mode === 'register' && !/^[A-Za-z0-9_.-]{3,32}$/.test(username.trim())) {
      setError('Usernames are 3–32 letters, digits, _ . or -.')
      return
    }
    void run(mode, username.trim(), password)
  }

  const switchTo = (m: Mode) => {
    setMode(m)
    setError(null)
  }
  const tabRefs = { login: useRef<HTMLButtonElement>(null), register: useRef<HTMLButtonElement>(null) }
  // WAI-ARIA tabs: arrow keys (and Home/End) move between the tabs and select them
  const onTabKey = (e: KeyboardEvent<HTMLButtonElement>) => {
    const order: Mode[] = ['login', 'register']
    const i = order.indexOf(mode)
    let next: Mode | null = null
    if (e.key === 'ArrowRight' || e.key === 'ArrowDown') next = order[(i + 1) % order.length]!
    else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') next = order[(i + order.length - 1) % order.length]!
    else if (e.key === 'Home') next = order[0]!
    else if (e.key === 'End') next = order[order.length - 1]!
    if (!next) return
    e.preventDefault()
    switchTo(next)
    tabRefs[next].current?.focus()
  }
  const lines = error ? splitSentences(error) : []

  return (
    <div className="auth-card">
      <div className="tabs" role="tablist" aria-label="Account">
        <button
          type="button"
          role="tab"
          id="tab-login"
          ref={tabRefs.login}
          aria-selected={mode === 'login'}
          aria-controls="auth-panel"
          tabIndex={mode === 'login' ? 0 : -1}
          onKeyDown={onTabKey}
          onClick={() => switchTo('login')}
        >
          Sign in
        </button>
        <button
          type="button"
          role="tab"
          id="tab-register"
          ref={tabRefs.register}
          aria-selected={mode === 'register'}
          aria-controls="auth-panel"
          tabIndex={mode === 'register' ? 0 : -1}
          onKeyDown={onTabKey}
          onClick={() => switchTo('register')}
        >
          Create account
        </button>
      </div>
      {props.notice && (
        <p className="form-notice" role="alert" data-testid="session-notice">
          {props.notice}
        </p>
      )}
      <form onSubmit={submit} id="auth-panel" role="tabpanel" aria-labelledby={mode === 'login' ? 'tab-login' : 'tab-register'} noValidate>
        <label>
          Username
          <input
            name="username"
            autoComplete="username"
            autoCapitalize="none"
            spellCheck={false}
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            data-testid="username"
            required
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={mode === 'login' ? 'current-password' : 'new-password'}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            data-testid="password"
            aria-describedby={mode === 'register' ? 'pw-hint' : undefined}
            required
          />
        </label>
        {mode === 'register' && (
          <p id="pw-hint" className="small muted">
            Username: 3–32 letters, digits, _ . -. Password: at least 8 characters and 4 different ones, not digits only, not containing the
            username, not a common password. Your LN Markets API key is added after signing up.
          </p>
        )}
        {error && (
          <div className="form-error" role="alert" data-testid="auth-error">
            {lines.length > 1 ? (
              <ul className="error-list">
                {lines.map((l) => (
                  <li key={l} data-testid="auth-error-rule">
                    {l}
                  </li>
                ))}
              </ul>
            ) : (
              error
            )}
          </div>
        )}
        <button type="submit" className="primary wide" disabled={busy} data-testid="auth-submit">
          {busy ? 'Please wait…' : mode === 'login' ? 'Sign in' : 'Create account'}
        </button>
      </form>
      {props.demoLogin && (
        <div className="demo-login">
          <p className="small">
            Demo mode: every number comes from the built-in LN Markets simulator. Sign in as <code>{props.demoLogin.username}</code> /{' '}
            <code>{props.demoLogin.password}</code>.
          </p>
          <button
            type="button"
            className="wide"
            disabled={busy}
            data-testid="demo-login"
            onClick={() => void run('login', props.demoLogin!.username, props.demoLogin!.password)}
          >
            Open the demo account
          </button>
        </div>
      )}
    </div>
  )
}
