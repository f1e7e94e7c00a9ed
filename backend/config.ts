/**
 * The one environment schema: it is both the validator and the `Config` type.
 * Nothing outside this module reads `process.env` (tests pass their own env objects).
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync, chmodSync, existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'
import Type, { type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import Value from 'typebox/value'

const Int = (def: number, min: number, max: number, description: string) =>
  Type.Integer({ default: def, minimum: min, maximum: max, description })

export const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  PORT: Int(3000, 0, 65535, 'listen port (0 = any free port)'),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  /** human-readable logs (pino-pretty); default: when stdout is a terminal. Ignored in production (JSON) */
  LOG_PRETTY: Type.Optional(Type.Boolean()),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  DATA_DIR: Type.String({ default: './data', minLength: 1 }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  WORKERS: Type.String({
    default: '1',
    pattern: '^(auto|[1-9][0-9]{0,2})$',
    description: 'gateway processes on one port (node:cluster): a number, or auto = one per core; above 1 needs DATABASE_URL',
  }),
  REDIS_LEASE_MS: Int(
    5000,
    200,
    600000,
    'with REDIS_URL: lifetime of a polling lease; a stalled or crashed holder is replaced within about two of them',
  ),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  /** base64 of exactly 32 bytes */
  CREDENTIALS_KEY: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$' })),
  /** previous keys still accepted for decryption during rotation: "id:base64,id:base64" */
  CREDENTIALS_OLD_KEYS: Type.Optional(Type.String()),
  LNM_NETWORK: Type.Union([Type.Literal('demo'), Type.Literal('mainnet'), Type.Literal('signet')], { default: 'demo' }),
  LNM_API_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  LNM_STREAM_URL: Type.Optional(Type.String({ pattern: '^wss?://' })),
  POLL_INTERVAL_MS: Int(5000, 250, 600000, 'account/positions polling period per account'),
  LNM_SIGNED_CALLS_PER_SEC: Int(
    5,
    1,
    1000,
    "the gateway's throttle of signed exchange calls per API key; LN Markets allows 5/s per key: raise it only where the exchange allows more (a local simulator)",
  ),
  LNM_PUBLIC_CALLS_PER_SEC: Int(
    1,
    1,
    1000,
    "the gateway's throttle of public exchange calls (ticker, candles, time); LN Markets documents 1/s for unauthenticated calls: raise it only where the exchange allows more",
  ),
  TICKER_INTERVAL_MS: Int(2000, 250, 600000, 'REST ticker polling period when the stream is down'),
  UPSTREAM_BREAKER_OPEN_MS: Int(
    10000,
    500,
    600000,
    "after 5 consecutive exchange failures, refuse calls this long before a caller's request is the probe (a public GET /ping probes every POLL_INTERVAL_MS / 3 meanwhile)",
  ),
  CANDLES_CACHE_MS: Int(
    10000,
    1000,
    600000,
    'the newest candles are served from the gateway cache this long before the exchange is asked again',
  ),
  STALE_AFTER_MS: Int(30000, 1000, 3600000, 'data older than this is never pushed as fresh'),
  PRIVATE_STREAMS_PER_NODE: Int(
    31,
    0,
    31,
    'authenticated Stream v1 connections per node, given to the most-watched accounts (0 = REST polling only). LN Markets allows 32 stream connections per IP and the public ticker stream takes one; nodes sharing one IP share the 32',
  ),
  PRIVATE_STREAM_STARTS_PER_MIN: Int(
    12,
    1,
    20,
    'private-stream connection attempts (starts and reconnects) per minute on this machine, shared by its workers. LN Markets allows 20 authenticate per IP per minute',
  ),
  PUSH_RECONCILE_MS: Int(30000, 250, 600000, 'REST reconciliation period of an account while its private stream is healthy'),
  POLLER_GRACE_MS: Int(15000, 0, 3600000, 'keep polling an account this long after its last subscriber left'),
  MAX_CONNECTIONS: Int(25000, 1, 1000000, 'global WebSocket admission limit'),
  MAX_CONNECTIONS_PER_USER: Int(50, 1, 100000, 'per-user WebSocket admission limit'),
  WS_AUTH_TIMEOUT_MS: Int(10000, 100, 120000, 'time allowed for the first auth message'),
  WS_UNAUTH_PER_ADDRESS: Int(32, 1, 1000000, 'sockets not yet authenticated per client address (apart from MAX_CONNECTIONS)'),
  WS_UNAUTH_MAX: Int(2000, 1, 1000000, 'sockets not yet authenticated in all (apart from MAX_CONNECTIONS)'),
  WS_UPGRADES_PER_MIN: Int(600, 0, 1000000, 'WebSocket upgrade requests per client address per minute (0 = no limit)'),
  WS_HEARTBEAT_MS: Int(25000, 100, 600000, 'WebSocket ping period'),
  WS_MAX_MESSAGE_BYTES: Int(16384, 256, 10485760, 'largest inbound WebSocket message'),
  WS_MAX_BUFFERED_BYTES: Int(1048576, 1024, 1073741824, 'per-socket outbound buffer cap before collapsing/closing'),
  WS_RATE_LIMIT_PER_SEC: Int(20, 1, 10000, 'inbound messages per second per socket'),
  SHUTDOWN_DRAIN_MS: Int(2000, 0, 60000, 'window over which sockets are closed with 1001 on shutdown'),
  ACCESS_TOKEN_TTL_S: Int(900, 5, 86400, 'access token lifetime'),
  REFRESH_REUSE_GRACE_MS: Int(
    10000,
    0,
    60000,
    'the token rotated last may be presented again this soon (concurrent tabs) without revoking the session',
  ),
  REFRESH_TOKEN_TTL_S: Int(2592000, 60, 31536000, 'refresh session lifetime'),
  AUTH_RATE_LIMIT_IP_PER_MIN: Int(30, 1, 1000000, 'register/login attempts per client IP per minute'),
  AUTH_RATE_LIMIT_USER_PER_MIN: Int(
    10,
    1,
    1000000,
    'login attempts per username from one address per minute (and registrations per username)',
  ),
  AUTH_SLOWDOWN_USER_PER_MIN: Int(
    30,
    1,
    1000000,
    'login attempts per username from all addresses per minute before each further one is slowed down',
  ),
  MAX_EVENT_LOOP_DELAY_MS: Int(1000, 0, 600000, 'answer 503 while the event loop lags more than this (0 = off)'),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 8 })),
  CORS_ORIGINS: Type.Optional(Type.String({ description: 'comma-separated allowed origins; unset = same-origin only' })),
  TRUST_PROXY: Type.Boolean({ default: false }),
  SIM_PORT: Int(3100, 0, 65535, 'simulator port (standalone; demo mode uses a free port when 0)'),
  SIM_ACCOUNTS_FILE: Type.Optional(Type.String()),
  /** enables the simulator's fault-injection admin route (demo and test only) */
  SIM_ADMIN: Type.Boolean({ default: true }),
})

export type Env = Static<typeof EnvSchema>

export type Mode = 'demo' | 'live'

export interface Config extends Env {
  mode: Mode
  /** WORKERS resolved: 1 = one process (no cluster) */
  workers: number
  /** in a cluster worker: its slot, 0…workers-1 (set by the primary), else 0 */
  workerIndex: number
  dataDir: string
  jwtSecret: string
  credentialsKey: { id: string; key: Buffer }
  credentialsOldKeys: Array<{ id: string; key: Buffer }>
  apiUrl: string | undefined
  streamUrl: string | undefined
  corsOrigins: string[]
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

const compiled = Compile(EnvSchema)

const NETWORK_URLS = {
  mainnet: { api: 'https://api.lnmarkets.com/v3', stream: 'wss://stream.lnmarkets.com/v1' },
  signet: { api: 'https://api.signet.lnmarkets.com/v3', stream: 'wss://stream.signet.lnmarkets.com/v1' },
} as const

/** a short, stable key id: first 8 hex chars of sha256(key) */
export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8)
}

function decodeKey(b64: string, name: string): Buffer {
  const key = Buffer.from(b64, 'base64')
  if (key.length !== 32) throw new ConfigError(`${name}: must be base64 of exactly 32 bytes (got ${key.length})`)
  return key
}

/** dev secrets live in DATA_DIR/secrets.json (0600) so restarts keep sessions and stored credentials readable */
function devSecrets(dataDir: string): { JWT_SECRET: string; CREDENTIALS_KEY: string } {
  const file = join(dataDir, 'secrets.json')
  const read = (): { JWT_SECRET: string; CREDENTIALS_KEY: string } | null => {
    if (!existsSync(file)) return null
    let parsed: { JWT_SECRET?: unknown; CREDENTIALS_KEY?: unknown } | null
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as typeof parsed | null
    } catch {
      // never regenerate over it: stored credentials and sessions depend on these keys
      throw new ConfigError(
        `invalid configuration: DATA_DIR holds an unreadable ${file}; fix or remove it (removing it makes stored credentials unreadable)`,
      )
    }
    if (typeof parsed?.JWT_SECRET === 'string' && typeof parsed.CREDENTIALS_KEY === 'string') {
      return { JWT_SECRET: parsed.JWT_SECRET, CREDENTIALS_KEY: parsed.CREDENTIALS_KEY }
    }
    throw new ConfigError(`invalid configuration: ${file} lacks JWT_SECRET or CREDENTIALS_KEY; fix or remove it`)
  }
  const existing = read()
  if (existing) return existing
  mkdirSync(dataDir, { recursive: true })
  const secrets = { JWT_SECRET: randomBytes(48).toString('base64url'), CREDENTIALS_KEY: randomBytes(32).toString('base64') }
  try {
    // 'wx': two processes starting at once on a fresh DATA_DIR must not each write their own keys
    writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
  } catch (err) {
    if ((err as { code?: string }).code === 'EEXIST') return read() ?? secrets
    throw err
  }
  chmodSync(file, 0o600)
  return secrets
}

/**
 * Validate an environment and derive the runtime config.
 * Throws ConfigError with one line naming the variable and what is wrong.
 */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const known = Object.keys(EnvSchema.properties)
  const raw: Record<string, unknown> = {}
  for (const k of known) {
    const v = source[k]
    if (v !== undefined && v !== '') raw[k] = v
  }
  const env = Value.Default(EnvSchema, Value.Convert(EnvSchema, raw)) as Record<string, unknown>
  if (!compiled.Check(env)) {
    const errors = [...compiled.Errors(env)]
    const first = errors.find((e) => e.instancePath !== '') ?? errors[0]
    const name = first?.instancePath.replace(/^\//, '').split('/')[0] || 'environment'
    const got = source[name]
    const hint =
      name === 'CREDENTIALS_KEY' || name === 'JWT_SECRET' || name === 'METRICS_TOKEN' || name === 'DATABASE_URL' || name === 'REDIS_URL'
        ? ''
        : got !== undefined
          ? ` (got ${JSON.stringify(got)})`
          : ''
    const schema = (EnvSchema.properties as Record<string, { description?: string }>)[name]
    throw new ConfigError(
      `invalid configuration: ${name} ${first?.message ?? 'is invalid'}${hint}${schema?.description ? ` — ${schema.description}` : ''}`,
    )
  }
  const e = env
  const dataDir = resolve(e.DATA_DIR)
  const production = e.NODE_ENV === 'production'

  let jwtSecret = e.JWT_SECRET
  let credKey = e.CREDENTIALS_KEY
  if (!jwtSecret || !credKey) {
    if (production) {
      throw new ConfigError(`invalid configuration: ${!jwtSecret ? 'JWT_SECRET' : 'CREDENTIALS_KEY'} is required when NODE_ENV=production`)
    }
    const dev = devSecrets(dataDir)
    jwtSecret ??= dev.JWT_SECRET
    credKey ??= dev.CREDENTIALS_KEY
  }
  // production never falls into demo mode (the simulator and its public demo/demo login) by omission
  if (production && !source.LNM_NETWORK && e.LNM_API_URL === undefined) {
    throw new ConfigError(
      'invalid configuration: LNM_NETWORK is required when NODE_ENV=production (mainnet or signet; demo runs the built-in simulator with the public demo login)',
    )
  }
  const key = decodeKey(credKey, 'CREDENTIALS_KEY')
  const oldKeys: Array<{ id: string; key: Buffer }> = []
  for (const part of (e.CREDENTIALS_OLD_KEYS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const b64 = part.includes(':') ? part.slice(part.indexOf(':') + 1) : part
    const k = decodeKey(b64, 'CREDENTIALS_OLD_KEYS')
    oldKeys.push({ id: keyId(k), key: k })
  }

  const live = e.LNM_NETWORK !== 'demo' || e.LNM_API_URL !== undefined
  let apiUrl = e.LNM_API_URL
  let streamUrl = e.LNM_STREAM_URL
  if (e.LNM_NETWORK !== 'demo') {
    apiUrl ??= NETWORK_URLS[e.LNM_NETWORK].api
    streamUrl ??= NETWORK_URLS[e.LNM_NETWORK].stream
  }
  for (const [name, url] of [
    ['LNM_API_URL', apiUrl],
    ['LNM_STREAM_URL', streamUrl],
  ] as const) {
    if (url !== undefined && !URL.canParse(url)) throw new ConfigError(`invalid configuration: ${name} is not a valid URL`)
  }
  if (apiUrl !== undefined && !/\/v3\/?$/.test(new URL(apiUrl).pathname)) {
    throw new ConfigError(`invalid configuration: LNM_API_URL must end with /v3 (got ${JSON.stringify(apiUrl)})`)
  }

  const workers = e.WORKERS === 'auto' ? Math.min(999, availableParallelism()) : Number(e.WORKERS)
  if (workers > 1 && e.DATABASE_URL === undefined) {
    throw new ConfigError('WORKERS>1 needs DATABASE_URL: the embedded database is single-process')
  }
  if (workers > 1 && !live) {
    throw new ConfigError('WORKERS>1 needs LNM_NETWORK or LNM_API_URL: the demo simulator runs inside one process')
  }

  return {
    ...e,
    mode: live ? 'live' : 'demo',
    workers,
    workerIndex: Math.max(0, Math.min(workers - 1, Number(source.LNM_GATEWAY_WORKER_INDEX) || 0)),
    dataDir,
    jwtSecret,
    credentialsKey: { id: keyId(key), key },
    credentialsOldKeys: oldKeys,
    apiUrl: apiUrl?.replace(/\/$/, ''),
    streamUrl,
    corsOrigins: (e.CORS_ORIGINS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  }
}
