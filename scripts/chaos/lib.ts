/**
 * The chaos suite's parts: the cell result and its checks, a restartable gateway process, the chaos
 * simulator, a PostgreSQL instance and a Redis server of the suite's own, small HTTP helpers and bounded waits.
 * Everything started here is registered and killed when the suite exits (normally, on failure or on Ctrl-C):
 * child processes through scripts/lib/proc.ts, daemons (postgres) through `onExit`.
 */
import type { ChildProcess } from 'node:child_process'
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { gatewayEnv, type GatewayOptions } from '../lib/gateway.ts'
import { freePort, waitHttp } from '../lib/net.ts'
import { captureOutput, forkTs, rpc, sleep, spawnTs, stopChild, track, waitMessage } from '../lib/proc.ts'
import type { SimAccount } from '../lib/servers.ts'

// ---------- results ----------

export interface CellResult {
  id: string
  name: string
  held: boolean
  /** one line of the main figures, for the table */
  summary: string
  /** the checks, each with what it compared */
  checks: Array<{ what: string; ok: boolean; detail: string }>
  figures: Record<string, unknown>
  seconds: number
  error?: string
}

/** the checks of one cell: every one must pass for the cell to hold */
export class Checks {
  readonly list: CellResult['checks'] = []
  ok(ok: boolean, what: string, detail: string): boolean {
    this.list.push({ what, ok, detail })
    return ok
  }
  get held(): boolean {
    return this.list.length > 0 && this.list.every((c) => c.ok)
  }
  failed(): string[] {
    return this.list.filter((c) => !c.ok).map((c) => `${c.what} (${c.detail})`)
  }
}

export const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`)

/** poll `pred` every `everyMs` until it is true or `timeoutMs` passed: the elapsed ms, or null on timeout */
export async function waitFor(pred: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<number | null> {
  const t0 = Date.now()
  for (;;) {
    if (await pred()) return Date.now() - t0
    if (Date.now() - t0 >= timeoutMs) return null
    await sleep(everyMs)
  }
}

// ---------- synchronous clean-up at exit (daemons that are not our children) ----------

const exitHooks = new Set<() => void>()
let exitHooked = false
export function onExit(fn: () => void): () => void {
  if (!exitHooked) {
    exitHooked = true
    process.on('exit', () => {
      for (const f of exitHooks) {
        try {
          f()
        } catch {
          /* best effort */
        }
      }
    })
  }
  exitHooks.add(fn)
  return () => exitHooks.delete(fn)
}

// ---------- the simulator ----------

export interface ChaosSim {
  proc: ChildProcess
  url: string
  streamUrl: string
  faults(f: Record<string, unknown>): Promise<void>
  reset(): Promise<void>
  rates(
    sinceMs: number,
    untilMs?: number,
  ): Promise<{
    total: number
    byStatus: Record<string, number>
    byPath: Record<string, number>
    perKey: Record<string, { total: number; maxPerSec: number }>
  }>
  /** per key, the longest time in the window without a request on one of `paths` ('GET /v3/account', …) */
  gaps(paths: string[], sinceMs: number, untilMs?: number): Promise<{ maxGapMs: Record<string, number> }>
  /** the simulator's Stream v1 counters (connections, authenticate, refusals per limit, privateDrops) */
  streamStats(): Promise<{
    connections: number
    authenticate: number
    refusedSockets: number
    refusedConnections: number
    refusedAuthenticate: number
    privateDrops: number
    open: number
    authenticated: number
  }>
  stop(): Promise<void>
}

export async function startChaosSim(dir: string, accounts: SimAccount[]): Promise<ChaosSim> {
  const file = join(dir, `sim-accounts-${randomBytes(3).toString('hex')}.json`)
  writeFileSync(file, JSON.stringify(accounts))
  const proc = forkTs('scripts/chaos/sim-server.ts', [], { env: { SIM_ACCOUNTS_FILE: file } })
  const out = captureOutput(proc)
  let msg: any
  try {
    msg = await waitMessage<any>(proc, (m) => m && m.ready === true, 30_000, 'chaos simulator start')
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${out()}`, { cause: e })
  }
  return {
    proc,
    url: msg.url,
    streamUrl: msg.streamUrl,
    faults: async (f) => {
      await rpc(proc, { op: 'faults', faults: f }, 10_000)
    },
    reset: async () => {
      await rpc(proc, { op: 'faultsReset' }, 10_000)
    },
    rates: (sinceMs, untilMs) => rpc(proc, { op: 'rates', sinceMs, untilMs }, 30_000),
    gaps: (paths, sinceMs, untilMs) => rpc(proc, { op: 'gaps', paths, sinceMs, untilMs }, 30_000),
    streamStats: () => rpc(proc, { op: 'streamStats' }, 10_000),
    stop: () => stopChild(proc),
  }
}

/** the highest per-key rate (private keys) and the public rate, from a `rates` answer */
export function peakRates(r: Awaited<ReturnType<ChaosSim['rates']>>): { privateMaxPerSec: number; publicMaxPerSec: number; keys: number } {
  let priv = 0
  let pub = 0
  let keys = 0
  for (const [k, v] of Object.entries(r.perKey)) {
    if (k === '(public)') pub = v.maxPerSec
    else {
      keys++
      priv = Math.max(priv, v.maxPerSec)
    }
  }
  return { privateMaxPerSec: priv, publicMaxPerSec: pub, keys }
}

// ---------- a restartable gateway process ----------

export class GatewayProc {
  proc: ChildProcess | null = null
  output: () => string = () => ''
  readonly origin: string
  readonly wsUrl: string
  exits: Array<{ code: number | null; signal: string | null; at: number }> = []

  private constructor(
    readonly port: number,
    readonly env: Record<string, string>,
    readonly dataDir: string,
    private readonly nodeArgs: string[],
  ) {
    this.origin = `http://127.0.0.1:${port}`
    this.wsUrl = `ws://127.0.0.1:${port}/ws`
  }

  /** a gateway in live mode against `o.apiUrl`; the same secrets, port and DATA_DIR on every (re)start */
  static async create(o: GatewayOptions & { dataDir?: string }): Promise<GatewayProc> {
    const port = await freePort()
    const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'lnm-chaos-gw-'))
    return new GatewayProc(port, gatewayEnv(port, dataDir, o), dataDir, o.nodeArgs ?? [])
  }

  /** another node of the same cluster: same secrets and database, its own port */
  async sibling(): Promise<GatewayProc> {
    const port = await freePort()
    return new GatewayProc(port, { ...this.env, PORT: String(port) }, this.dataDir, this.nodeArgs)
  }

  get alive(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null
  }
  get pid(): number {
    return this.proc?.pid ?? 0
  }

  async start(timeoutMs = 180_000): Promise<number> {
    const t0 = Date.now()
    const proc = spawnTs('backend/server.ts', [], { env: this.env, nodeArgs: this.nodeArgs })
    this.proc = proc
    this.output = captureOutput(proc, 20_000)
    proc.once('exit', (code, signal) => this.exits.push({ code, signal, at: Date.now() }))
    const exited = new Promise<never>((_, rej) =>
      proc.once('exit', (c, s) => rej(new Error(`gateway exited (${c ?? s}) during start:\n${this.output().slice(-3000)}`))),
    )
    await Promise.race([waitHttp(`${this.origin}/health/live`, timeoutMs, (s) => s === 200), exited])
    return Date.now() - t0
  }

  /** send a signal; resolves with the exit and how long it took (ms), or null when it outlived `timeoutMs` */
  async signal(sig: NodeJS.Signals, timeoutMs = 15_000): Promise<{ code: number | null; signal: string | null; ms: number } | null> {
    const proc = this.proc
    if (!proc || !this.alive) return { code: proc?.exitCode ?? null, signal: proc?.signalCode ?? null, ms: 0 }
    const t0 = performance.now()
    const exit = new Promise<{ code: number | null; signal: string | null }>((r) =>
      proc.once('exit', (code, signal) => r({ code, signal })),
    )
    proc.kill(sig)
    const r = await Promise.race([exit, sleep(timeoutMs).then(() => null)])
    return r ? { ...r, ms: Math.round(performance.now() - t0) } : null
  }

  async stop(): Promise<void> {
    await stopChild(this.proc ?? undefined, 12_000)
  }

  removeData(): void {
    rmSync(this.dataDir, { recursive: true, force: true })
  }
}

// ---------- HTTP ----------

const agents = new Map<string, Agent>()
function agentFor(localAddress: string | undefined): Agent {
  const k = localAddress ?? ''
  let a = agents.get(k)
  if (!a) agents.set(k, (a = new Agent({ connect: localAddress ? { localAddress } : {}, keepAliveTimeout: 2000 })))
  return a
}

export async function closeAgents(): Promise<void> {
  await Promise.all([...agents.values()].map((a) => a.close().catch(() => {})))
  agents.clear()
}

export interface ApiAnswer {
  status: number
  json: any
  error?: string
}

/** one API call; a transport error is status 0 with the error's code (never throws) */
export async function api(
  origin: string,
  method: string,
  path: string,
  body?: unknown,
  // token, localAddress: undefined = none (no Authorization; the default source address)
  opts: { token?: string | undefined; localAddress?: string | undefined; timeoutMs?: number } = {},
): Promise<ApiAnswer> {
  try {
    const r = await request(`${origin}${path}`, {
      method: method as 'GET',
      dispatcher: agentFor(opts.localAddress),
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      headersTimeout: opts.timeoutMs ?? 15_000,
      bodyTimeout: opts.timeoutMs ?? 15_000,
    })
    const text = await r.body.text()
    let json: any = text
    try {
      json = JSON.parse(text)
    } catch {
      /* not JSON */
    }
    return { status: r.statusCode, json }
  } catch (e) {
    return { status: 0, json: null, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message }
  }
}

export const statusKey = (a: ApiAnswer) =>
  a.status === 0 ? `error ${a.error}` : `${a.status}${a.json?.error?.code ? ` ${a.json.error.code}` : ''}`

export function countInto(into: Record<string, number>, k: string): void {
  into[k] = (into[k] ?? 0) + 1
}

// ---------- PostgreSQL of the suite's own (initdb + pg_ctl on a free port) ----------

/** the newest PostgreSQL's binaries (/usr/lib/postgresql/<version>/bin), '' when none is installed */
export function postgresBinDir(): string {
  try {
    return execFileSync('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1'], { encoding: 'utf8' }).trim()
  } catch {
    return ''
  }
}

export class PgInstance {
  private constructor(
    readonly bin: string,
    readonly dir: string,
    readonly port: number,
    readonly socketDir: string,
  ) {}

  get adminUrl(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`
  }
  url(db: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`
  }

  private pg(tool: string, args: string[], timeoutMs = 60_000): string {
    const asPostgres = process.getuid?.() === 0
    const cmd = asPostgres ? 'runuser' : join(this.bin, tool)
    const argv = asPostgres ? ['-u', 'postgres', '--', join(this.bin, tool), ...args] : args
    return execFileSync(cmd, argv, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] })
  }

  /** initdb in a fresh directory owned by `postgres` (initdb refuses root), trust auth on loopback only */
  static async create(): Promise<PgInstance> {
    const bins = postgresBinDir()
    if (!bins) throw new Error('no PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)')
    const root = mkdtempSync(join(tmpdir(), 'lnm-chaos-pg-'))
    chmodSync(root, 0o755)
    const dir = join(root, 'data')
    const socketDir = join(root, 'sock')
    for (const d of [dir, socketDir]) execFileSync('mkdir', ['-p', d])
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
      for (const d of [root, dir, socketDir]) chownSync(d, uid, gid)
    }
    chmodSync(dir, 0o700)
    const port = await freePort()
    const inst = new PgInstance(bins, dir, port, socketDir)
    onExit(() => inst.killNow())
    inst.pg('initdb', ['-D', dir, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8'], 120_000)
    writeFileSync(
      join(dir, 'postgresql.auto.conf'),
      `listen_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${socketDir}'\nfsync = on\nmax_connections = 200\n`,
    )
    inst.start()
    return inst
  }

  start(): void {
    this.pg('pg_ctl', ['-D', this.dir, '-l', join(this.dir, '..', 'pg.log'), '-w', '-t', '60', 'start'])
  }

  /** `fast`: disconnect every client and stop cleanly */
  stop(mode: 'fast' | 'immediate' = 'fast'): void {
    this.pg('pg_ctl', ['-D', this.dir, '-m', mode, '-w', '-t', '60', 'stop'])
  }

  createDb(name: string): string {
    this.pg('psql', [
      '-h',
      '127.0.0.1',
      '-p',
      String(this.port),
      '-U',
      'postgres',
      '-d',
      'postgres',
      '-qAt',
      '-c',
      `CREATE DATABASE ${name}`,
    ])
    return this.url(name)
  }

  /** synchronous, for exit: SIGQUIT to the postmaster (immediate shutdown), then remove the directory */
  killNow(): void {
    try {
      const pid = Number(readFileSync(join(this.dir, 'postmaster.pid'), 'utf8').split('\n')[0])
      if (pid > 0) process.kill(pid, 'SIGQUIT')
    } catch {
      /* not running */
    }
  }

  destroy(): void {
    try {
      this.stop('immediate')
    } catch {
      this.killNow()
    }
    rmSync(join(this.dir, '..'), { recursive: true, force: true })
  }
}

// ---------- Redis of the suite's own ----------

export class RedisServer {
  proc: ChildProcess | null = null
  private constructor(readonly port: number) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  static async create(): Promise<RedisServer> {
    const r = new RedisServer(await freePort())
    await r.start()
    return r
  }

  async start(): Promise<void> {
    const proc = track(
      spawn(
        'redis-server',
        [
          '--port',
          String(this.port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--daemonize',
          'no',
          '--loglevel',
          'warning',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    )
    this.proc = proc
    const out = captureOutput(proc)
    const ok = await waitFor(() => this.ping() === 'PONG', 15_000, 100)
    if (ok === null) throw new Error(`redis-server on :${this.port} did not answer PING:\n${out()}`)
  }

  /** redis-cli PING: 'PONG' when the server answers, 'down' otherwise */
  ping(): string {
    try {
      return execFileSync('redis-cli', ['-p', String(this.port), 'ping'], {
        encoding: 'utf8',
        timeout: 2000,
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim()
    } catch {
      return 'down'
    }
  }

  /** SIGKILL: gone at once, as a crash */
  async kill(): Promise<void> {
    const p = this.proc
    if (!p || p.exitCode !== null || p.signalCode !== null) return
    const exited = new Promise<void>((r) => p.once('exit', () => r()))
    p.kill('SIGKILL')
    await exited
  }
}

export { sleep }
