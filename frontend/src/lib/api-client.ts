/**
 * The one HTTP client: JSON in and out, the bearer token, one transparent retry after refreshing an
 * expired access token, and every failure turned into an ApiError with the server's code and message.
 */

export interface ApiErrorBody {
  error?: { code?: string; message?: string }
}

export class ApiError extends Error {
  override name = 'ApiError'
  constructor(
    /** HTTP status, 0 when the server could not be reached */
    readonly status: number,
    readonly code: string,
    message: string,
    /** from Retry-After on 429/503, ms */
    readonly retryAfterMs?: number,
  ) {
    super(message)
  }
}

export interface RequestOptions {
  body?: unknown
  /** send the bearer token (default true) */
  auth?: boolean
  headers?: Record<string, string>
  signal?: AbortSignal
}

export interface RawResponse<T> {
  status: number
  data: T | null
  headers: Headers
}

type Refresher = () => Promise<string | null>

function retryAfterMs(headers: Headers): number | undefined {
  const v = headers.get('retry-after')
  if (!v) return undefined
  const s = Number(v)
  if (Number.isFinite(s)) return Math.max(0, s * 1000)
  const at = Date.parse(v)
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined
}

export class ApiClient {
  private token: string | null = null
  private refresher: Refresher | null = null

  constructor(private readonly baseUrl = '') {}

  setToken(token: string | null): void {
    this.token = token
  }

  getToken(): string | null {
    return this.token
  }

  /** how to get a new access token when one is rejected (the session store does it with the refresh cookie) */
  setRefresher(refresher: Refresher | null): void {
    this.refresher = refresher
  }

  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.raw<T>(method, path, opts)
    return res.data as T
  }

  /** like json() but also returns 304s and headers (for ETags) */
  async raw<T>(method: string, path: string, opts: RequestOptions = {}): Promise<RawResponse<T>> {
    const auth = opts.auth ?? true
    let res = await this.send(method, path, opts, auth)
    if (res.status === 401 && auth && this.refresher) {
      const token = await this.refresher()
      if (token) res = await this.send(method, path, opts, auth)
    }
    if (res.status === 304) return { status: 304, data: null, headers: res.headers }
    const text = await res.text()
    let body: unknown = null
    if (text) {
      try {
        body = JSON.parse(text)
      } catch {
        body = null
      }
    }
    if (!res.ok) {
      const err = (body as ApiErrorBody | null)?.error
      throw new ApiError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? res.statusText, retryAfterMs(res.headers))
    }
    return { status: res.status, data: body as T, headers: res.headers }
  }

  private async send(method: string, path: string, opts: RequestOptions, auth: boolean): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers }
    if (opts.body !== undefined) headers['content-type'] = 'application/json'
    if (auth && this.token) headers.authorization = `Bearer ${this.token}`
    try {
      return await fetch(this.baseUrl + path, {
        method,
        headers,
        body: opts.body === undefined ? null : JSON.stringify(opts.body),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: opts.signal ?? null,
      })
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e
      throw new ApiError(0, 'network', 'The gateway could not be reached.')
    }
  }
}
