/**
 * The gateway under test, started as its own process(es) from backend/server.ts in live mode against the
 * bench simulator, plus the provisioning of bench users (register → login → PUT /api/credentials).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from 'undici'
import { captureOutput, ROOT, stopChild, sleep, track } from './proc.ts'
import { freePort, sourceAddresses, waitHttp } from './net.ts'
import type { SimAccount } from './servers.ts'

export interface Gateway {
  origin: string
  wsUrl: string
  port: number
  /** every process whose CPU and RSS count as the gateway's */
  pids: () => number[]
  proc: ChildProcess
  dataDir: string
  /** the environment it runs with (JWT_SECRET: the HTTP reference checks the same tokens) */
  env: Record<string, string>
  output: () => string
  stop(): Promise<void>
}

/**
 * The node flags production starts the gateway with (`npm start`, the Dockerfile's CMD; a test keeps the three
 * equal): a 4 MB young generation instead of V8's 16 MB, −21 MiB of idle RSS, no cost measurable on fan-out.
 */
export const PRODUCTION_NODE_ARGS: readonly string[] = ['--max-semi-space-size=4']

export interface GatewayOptions {
  apiUrl: string
  streamUrl: string
  env?: Record<string, string>
  /** extra node flags, after PRODUCTION_NODE_ARGS (a later V8 flag wins) */
  nodeArgs?: string[]
  /** >1: the gateway's own cluster, `WORKERS=<n>`: n worker processes behind one port (needs DATABASE_URL in env) */
  workers?: number
  startTimeoutMs?: number
}

/** environment of a bench gateway: live mode against the bench simulator, limits sized for the load, quiet logs */
export function gatewayEnv(port: number, dataDir: string, o: GatewayOptions): Record<string, string> {
  return {
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    JWT_SECRET: randomBytes(48).toString('base64url'),
    CREDENTIALS_KEY: randomBytes(32).toString('base64'),
    LNM_API_URL: o.apiUrl,
    LNM_STREAM_URL: o.streamUrl,
    MAX_CONNECTIONS: '100000',
    MAX_CONNECTIONS_PER_USER: '100000',
    ACCESS_TOKEN_TTL_S: '7200',
    AUTH_RATE_LIMIT_IP_PER_MIN: '100000',
    AUTH_RATE_LIMIT_USER_PER_MIN: '100000',
    AUTH_SLOWDOWN_USER_PER_MIN: '100000',
    // every load-generator socket comes from 127.0.0.1
    WS_UNAUTH_PER_ADDRESS: '100000',
    WS_UNAUTH_MAX: '100000',
    WS_UPGRADES_PER_MIN: '0',
    ...o.env,
  }
}

/** the pids of a process' children (Linux /proc): the workers of a WORKERS>1 gateway */
function childPids(pid: number): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid && readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'node')
        out.push(Number(d))
    } catch {
      /* gone */
    }
  }
  return out
}

export async function startGateway(o: GatewayOptions): Promise<Gateway> {
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), 'lnm-bench-'))
  const env = gatewayEnv(port, dataDir, o)
  const workers = o.workers ?? 1
  // what `npm start` runs: the compiled gateway (rebuilt here, ≈ 0.5 s, so it matches the sources)
  const built = spawnSync(process.execPath, [join(ROOT, 'scripts/build-backend.mjs')], { cwd: ROOT, encoding: 'utf8' })
  if (built.status !== 0) throw new Error(`could not compile the gateway: ${built.stderr}`)
  const proc = track(
    spawn(process.execPath, [...PRODUCTION_NODE_ARGS, ...(o.nodeArgs ?? []), join(ROOT, 'dist/backend/server.js')], {
      cwd: ROOT,
      env: { ...process.env, ...env, ...(workers > 1 ? { WORKERS: String(workers) } : {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  )
  const output = captureOutput(proc, 20_000)
  const origin = `http://127.0.0.1:${port}`
  const exited = new Promise<never>((_, rej) =>
    proc.once('exit', (c, s) => rej(new Error(`gateway exited (${c ?? s}) during start:\n${output()}`))),
  )
  await Promise.race([waitHttp(`${origin}/health/live`, o.startTimeoutMs ?? 120_000, (s) => s === 200), exited])
  // the primary prints its listening line once every worker listens; the workers are its children
  if (workers > 1) {
    const until = Date.now() + 60_000
    while (!/listening on/.test(output()) && Date.now() < until) await sleep(100)
  }
  const workerPids = () => (workers > 1 ? childPids(proc.pid as number) : [])
  return {
    origin,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    port,
    pids: () => [proc.pid as number, ...workerPids()],
    proc,
    dataDir,
    env,
    output,
    async stop() {
      await stopChild(proc, 12_000)
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export interface BenchUser {
  username: string
  token: string
  account: SimAccount
}

async function call(
  c: Client,
  method: 'POST' | 'PUT' | 'GET',
  path: string,
  body: unknown,
  token?: string,
): Promise<{ status: number; json: any }> {
  const r = await c.request({
    method,
    path,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  })
  const text = await r.body.text()
  let json: any
  try {
    json = JSON.parse(text)
  } catch {
    json = text
  }
  return { status: r.statusCode, json }
}

/**
 * Registers one user per simulator account, logs in and stores the account's credentials. Each user's
 * calls come from its own loopback source address (127.0.1.x …): the per-IP limits on register/login and
 * on PUT /api/credentials (10/min) then never bite, whatever the number of accounts.
 */
export async function provisionUsers(
  origin: string,
  accounts: SimAccount[],
  concurrency = 6,
  runId = randomBytes(3).toString('hex'),
): Promise<BenchUser[]> {
  const addrs = sourceAddresses(accounts.length, 252)
  const out: BenchUser[] = new Array(accounts.length)
  let next = 0
  const worker = async () => {
    while (next < accounts.length) {
      const i = next++
      const a = accounts[i]!
      const c = new Client(origin, { ...(addrs[i] !== undefined && { localAddress: addrs[i] }), pipelining: 1 })
      try {
        const username = `u${runId}x${i}`
        const password = `Bench!${randomBytes(6).toString('hex')}`
        for (let attempt = 0; ; attempt++) {
          const reg = await call(c, 'POST', '/api/auth/register', { username, password })
          if (reg.status === 201 || reg.status === 409) break
          if (attempt >= 5) throw new Error(`register ${username}: ${reg.status} ${JSON.stringify(reg.json)}`)
          await sleep(500 * (attempt + 1))
        }
        let token = ''
        for (let attempt = 0; ; attempt++) {
          const login = await call(c, 'POST', '/api/auth/login', { username, password })
          if (login.status === 200) {
            token = login.json.accessToken
            break
          }
          if (attempt >= 5) throw new Error(`login ${username}: ${login.status} ${JSON.stringify(login.json)}`)
          await sleep(500 * (attempt + 1))
        }
        for (let attempt = 0; ; attempt++) {
          const put = await call(c, 'PUT', '/api/credentials', { apiKey: a.key, apiSecret: a.secret, passphrase: a.passphrase }, token)
          if (put.status === 200) break
          if (attempt >= 5) throw new Error(`PUT /api/credentials for ${username}: ${put.status} ${JSON.stringify(put.json)}`)
          await sleep(500 * (attempt + 1))
        }
        out[i] = { username, token, account: a }
      } finally {
        await c.close()
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, accounts.length) }, worker))
  return out
}

/** one Prometheus sample value (first series whose name and labels start with `prefix`) */
export function promValue(text: string, prefix: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(prefix)) {
      const v = Number(line.slice(line.lastIndexOf(' ') + 1))
      if (Number.isFinite(v)) return v
    }
  }
  return NaN
}

export async function metrics(origin: string): Promise<string> {
  const r = await fetch(`${origin}/metrics`, { signal: AbortSignal.timeout(10_000) })
  return r.text()
}
