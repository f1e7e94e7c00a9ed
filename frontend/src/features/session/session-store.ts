/**
 * The signed-in session: the access token lives in memory only (the refresh token is an httpOnly cookie
 * the page never sees); it is refreshed before it expires and every listener (the realtime client's
 * in-band auth) gets the new one.
 */
import { ApiError, type ApiClient } from '../../lib/api-client.ts'
import { TOKEN_REFRESH_MARGIN_MS } from '../../config/constants.ts'

export interface User {
  id: string
  username: string
  createdAt: string
}

interface TokenResponse {
  accessToken: string
  /** ISO time or epoch ms */
  expiresAt: string | number
}

export type SessionStatus = 'loading' | 'anonymous' | 'authenticated'

export interface SessionState {
  status: SessionStatus
  user: User | null
  /** a sentence for the login page: why the user is there (session ended, server closed the feed…) */
  notice: string | null
}

type Listener = (s: SessionState) => void
type TokenListener = (token: string) => void

export class SessionStore {
  private state: SessionState = { status: 'loading', user: null, notice: null }
  private readonly listeners = new Set<Listener>()
  private readonly tokenListeners = new Set<TokenListener>()
  private refreshTimer: ReturnType<typeof setTimeout> | null = null
  private refreshing: Promise<string | null> | null = null

  constructor(private readonly api: ApiClient) {
    api.setRefresher(() => this.refresh())
  }

  getState = (): SessionState => this.state
  subscribe = (l: Listener): (() => void) => {
    this.listeners.add(l)
    return () => this.listeners.delete(l)
  }
  onToken(l: TokenListener): () => void {
    this.tokenListeners.add(l)
    return () => this.tokenListeners.delete(l)
  }
  getToken = (): string | null => this.api.getToken()

  /** on page load: a refresh cookie may still hold a session */
  async restore(): Promise<void> {
    try {
      const token = await this.refresh()
      if (token) {
        await this.loadUser()
        return
      }
    } catch {
      /* fall through to the login page */
    }
    if (this.state.status === 'loading') this.set({ status: 'anonymous', user: null })
  }

  async login(username: string, password: string): Promise<void> {
    const res = await this.api.json<TokenResponse>('POST', '/api/auth/login', { body: { username, password }, auth: false })
    this.acceptToken(res)
    await this.loadUser()
  }

  async register(username: string, password: string): Promise<void> {
    await this.api.json<unknown>('POST', '/api/auth/register', { body: { username, password }, auth: false })
    await this.login(username, password)
  }

  /** ends the session on the server (best effort) and here */
  async logout(notice: string | null = null): Promise<void> {
    const token = this.api.getToken()
    if (token) {
      try {
        await this.api.json('POST', '/api/auth/logout', { auth: true })
      } catch {
        /* the local session ends anyway */
      }
    }
    this.end(notice)
  }

  /** the server ended the session (terminal close code, refresh refused): back to login with the reason */
  end(notice: string | null): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer)
    this.refreshTimer = null
    this.api.setToken(null)
    this.set({ status: 'anonymous', user: null, notice })
  }

  clearNotice(): void {
    if (this.state.notice) this.set({ notice: null })
  }

  /** a new access token from the refresh cookie; concurrent callers share one request */
  refresh(): Promise<string | null> {
    this.refreshing ??= (async () => {
      try {
        // refresh tokens rotate and a reused one ends the session: tabs of this browser share the cookie,
        // so they take turns (Web Locks) instead of racing with the same token
        const call = () => this.api.json<TokenResponse>('POST', '/api/auth/refresh', { auth: false })
        const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined
        const res = locks ? await locks.request('lnm-gateway-token-refresh', call) : await call()
        this.acceptToken(res)
        return res.accessToken
      } catch (e) {
        // only a refusal ends the session; the network, rate limits or a busy server just mean "try again soon"
        const refused = e instanceof ApiError && (e.status === 401 || e.status === 403)
        if (!refused) {
          if (this.state.status === 'authenticated') this.retryRefreshSoon(e instanceof ApiError ? e.retryAfterMs : undefined)
          return null
        }
        if (this.state.status === 'authenticated') this.end('Your session has ended. Please sign in again.')
        return null
      } finally {
        this.refreshing = null
      }
    })()
    return this.refreshing
  }

  private retryRefreshSoon(afterMs = 10_000): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer)
    this.refreshTimer = setTimeout(() => void this.refresh(), Math.min(Math.max(afterMs, 2_000), 60_000))
  }

  private async loadUser(): Promise<void> {
    const user = await this.api.json<User>('GET', '/api/me')
    this.set({ status: 'authenticated', user, notice: null })
  }

  private acceptToken(res: TokenResponse): void {
    this.api.setToken(res.accessToken)
    for (const l of this.tokenListeners) l(res.accessToken)
    const raw = typeof res.expiresAt === 'number' ? res.expiresAt : Date.parse(res.expiresAt)
    const expiresAt = raw < 1e12 ? raw * 1000 : raw // accept epoch seconds too
    if (this.refreshTimer) clearTimeout(this.refreshTimer)
    this.refreshTimer = null
    if (!Number.isFinite(expiresAt)) return
    const life = expiresAt - Date.now()
    const lead = Math.min(TOKEN_REFRESH_MARGIN_MS, life * 0.2)
    const at = Math.max(1000, life - lead)
    this.refreshTimer = setTimeout(() => void this.refresh(), at)
  }

  private set(patch: Partial<SessionState>): void {
    this.state = { ...this.state, ...patch }
    for (const l of this.listeners) l(this.state)
  }
}
