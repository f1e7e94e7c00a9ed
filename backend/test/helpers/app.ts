/**
 * Builds a real gateway for a test: listening on a loopback port, embedded PGlite in a temp dir,
 * demo mode with the in-process simulator. Logs are captured so tests can check them for secrets.
 */
import { rmSync } from 'node:fs'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildApp, type BuildOptions } from '../../app.ts'
import { loadConfig, type Config } from '../../config.ts'
import type { SimAccountInput, Simulator } from '../../simulator/index.ts'
import { seedPGliteDataDir } from './db.ts'
import { testTmpDir } from './tmp.ts'

type Tap = { teardown(fn: () => unknown): void }

export class LogCapture extends Writable {
  readonly lines: string[] = []
  override _write(chunk: Buffer, _enc: string, cb: () => void) {
    this.lines.push(chunk.toString('utf8'))
    cb()
  }
  get text(): string {
    return this.lines.join('')
  }
  entries(): Array<Record<string, unknown>> {
    return this.text
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>
        } catch {
          return { raw: l }
        }
      })
  }
}

export interface HttpResult<T = any> {
  status: number
  headers: Headers
  body: T
  text: string
  setCookie: string[]
}

export interface TestUser {
  userId: string
  username: string
  password: string
  token: string
  expiresAt: number
  /** `name=value` of the refresh cookie */
  cookie: string
}

export interface TestApp {
  app: FastifyInstance
  config: Config
  baseUrl: string
  wsUrl: string
  logs: LogCapture
  sim: Simulator
  dataDir: string
  http<T = any>(
    method: string,
    path: string,
    o?: { token?: string; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string>; cookie?: string },
  ): Promise<HttpResult<T>>
  register(username?: string, password?: string): Promise<{ userId: string; username: string; password: string }>
  login(username: string, password: string): Promise<TestUser>
  /** a new user (registered + logged in) holding the credentials of simulator account `accountIndex` */
  userWithCredentials(accountIndex?: number): Promise<TestUser>
  close(): Promise<void>
}

/**
 * log2 of scrypt's N for the passwords of test apps: 2^8 (32 KiB, well under a millisecond) instead of production's
 * 2^15 (32 MiB, tens of ms), which made every register and login the most expensive step of many tests. The
 * production default and verification of other costs are proven in auth.test.ts.
 */
export const TEST_PASSWORD_HASH_COST = 8

let seq = 0
export const uniqueName = (prefix = 'u') => `${prefix}${process.pid}_${Date.now().toString(36)}_${seq++}`

/**
 * The gateway's exchange throttles for tests against a simulator that allows 1000 calls a second: 20 signed calls
 * per key (4x the exchange's 5/s) and 10 public ones (10x its 1/s). A poll of 3-5 signed calls then takes
 * ~0.15-0.25 s, so tests can shrink poll periods and windows in proportion and keep their counts' meaning.
 * `FAST_EXCHANGE_LIMITS` is the build option's `exchangeClient.limits`, `FAST_EXCHANGE_ENV` the same for a
 * spawned gateway.
 */
export const FAST_EXCHANGE_LIMITS = { authPerSec: 20, publicPerSec: 10 }
export const FAST_EXCHANGE_ENV = {
  LNM_SIGNED_CALLS_PER_SEC: String(FAST_EXCHANGE_LIMITS.authPerSec),
  LNM_PUBLIC_CALLS_PER_SEC: String(FAST_EXCHANGE_LIMITS.publicPerSec),
}

/** simulator accounts for tests: `n` traders with deterministic keys and one running position each */
export function testAccounts(n: number): SimAccountInput[] {
  return Array.from({ length: n }, (_, i) => ({
    username: `trader${i}`,
    key: `test-key-${i}-0123456789`,
    secret: `test-secret-${i}-abcdefghijklmnop`,
    passphrase: `pass-${i}`,
    balance: 1_000_000 + i * 1000,
    positions: [{ side: i % 2 ? 'sell' : 'buy', quantity: 100 + i, leverage: 10 }],
  }))
}

export async function startTestApp(t: Tap, env: Record<string, string> = {}, opts: BuildOptions = {}): Promise<TestApp> {
  // a DATA_DIR given by the caller (a restart on the same directory, a cluster node) is the caller's to seed and remove
  const ownDir = !env.DATA_DIR
  // on tmpfs when there is one: copying the seeded database to disk (and removing it) was most of an app's kernel time
  const dataDir = env.DATA_DIR || testTmpDir('lnm-gw-test-')
  // a copy of a migrated embedded database: building one from scratch costs seconds per test; an app on
  // PostgreSQL never opens it
  if (ownDir && !env.DATABASE_URL) await seedPGliteDataDir(dataDir)
  const removeDir = () => {
    if (ownDir) rmSync(dataDir, { recursive: true, force: true })
  }
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    PORT: '0',
    SIM_PORT: '0',
    LOG_LEVEL: 'info',
    AUTH_RATE_LIMIT_IP_PER_MIN: '1000',
    AUTH_RATE_LIMIT_USER_PER_MIN: '1000',
    AUTH_SLOWDOWN_USER_PER_MIN: '1000',
    // tests open many sockets from one loopback address; the /ws admission tests set their own limits
    WS_UNAUTH_PER_ADDRESS: '10000',
    WS_UPGRADES_PER_MIN: '0',
    // each test opens a fresh embedded database, which stalls this process's event loop for a moment
    MAX_EVENT_LOOP_DELAY_MS: '0',
    // tests measure REST polling unless they ask for exchange push (private-push.test.ts sets a budget)
    PRIVATE_STREAMS_PER_NODE: '0',
    ...env,
  })
  const logs = new LogCapture()
  const app = await buildApp(config, { logStream: logs, passwordHashCost: TEST_PASSWORD_HASH_COST, ...opts })
  try {
    await app.listen({ port: 0, host: '127.0.0.1' })
  } catch (err) {
    await app.close().catch(() => {})
    removeDir()
    throw err
  }
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr ? addr.port : 0
  const baseUrl = `http://127.0.0.1:${port}`
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await app.close()
    removeDir()
  }
  t.teardown(close)

  async function http<T = any>(
    method: string,
    path: string,
    o: { token?: string; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string>; cookie?: string } = {},
  ): Promise<HttpResult<T>> {
    const headers: Record<string, string> = { ...(o.headers ?? {}) }
    if (o.token) headers.authorization = `Bearer ${o.token}`
    if (o.cookie) headers.cookie = o.cookie
    let body: string | Buffer | undefined
    if (o.rawBody !== undefined) body = o.rawBody
    else if (o.body !== undefined) {
      body = JSON.stringify(o.body)
      headers['content-type'] ??= 'application/json'
    }
    const res = await fetch(baseUrl + path, {
      method,
      headers,
      ...(body !== undefined && { body: typeof body === 'string' ? body : new Uint8Array(body) }),
    })
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {
      /* not JSON */
    }
    return { status: res.status, headers: res.headers, body: parsed as T, text, setCookie: res.headers.getSetCookie() }
  }

  async function register(username = uniqueName(), password = `pw-${Math.random().toString(36).slice(2)}-Long`) {
    const r = await http('POST', '/api/auth/register', { body: { username, password } })
    if (r.status !== 201) throw new Error(`register failed: ${r.status} ${r.text}`)
    return { userId: r.body.user.id as string, username, password }
  }

  async function login(username: string, password: string): Promise<TestUser> {
    const r = await http('POST', '/api/auth/login', { body: { username, password } })
    if (r.status !== 200) throw new Error(`login failed: ${r.status} ${r.text}`)
    const cookie = r.setCookie.map((c) => c.split(';')[0]!).find((c) => c.startsWith('lnm_refresh=')) ?? ''
    const me = await http('GET', '/api/me', { token: r.body.accessToken })
    return { userId: me.body.id, username, password, token: r.body.accessToken, expiresAt: r.body.expiresAt, cookie }
  }

  async function userWithCredentials(accountIndex = 0): Promise<TestUser> {
    const u = await register()
    const user = await login(u.username, u.password)
    const acc = app.exchange.simulator!.accounts[accountIndex]!
    const r = await http('PUT', '/api/credentials', {
      token: user.token,
      body: { apiKey: acc.key, apiSecret: acc.secret, passphrase: acc.passphrase },
    })
    if (r.status !== 200) throw new Error(`credentials failed: ${r.status} ${r.text}`)
    return user
  }

  return {
    app,
    config,
    baseUrl,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    logs,
    sim: app.exchange.simulator!,
    dataDir,
    http,
    register,
    login,
    userWithCredentials,
    close,
  }
}
