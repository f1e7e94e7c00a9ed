/**
 * The LN Markets simulator: REST v3 under /v3 and Stream v1 at /v1 on one real HTTP server, with the
 * exchange's auth, limits and maths, plus fault injection. Used by demo mode, by tests and standalone
 * (main.ts).
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { Engine, type CreateTradeBody, type TradeEvent } from './engine.ts'
import { createFaults } from './faults.ts'
import { createHttpHandler, type LogEntry } from './http.ts'
import { Market, nextFundingTime } from './market.ts'
import { TokenBuckets } from './rate-limit.ts'
import { createRng } from './rng.ts'
import { buildRoutes } from './routes.ts'
import { StreamServer, type StreamLimits } from './stream.ts'
import { SimError, type Faults, type SimAccountInput, type SimCrossInput, type SimHistoryInput } from './types.ts'

export type { Faults, SimAccountInput, SimCrossInput, SimHistoryInput, SimPositionInput } from './types.ts'
export type { StreamLimits } from './stream.ts'
export { SimError } from './types.ts'

export interface SimulatorOptions {
  port?: number
  host?: string
  accounts?: SimAccountInput[]
  seed?: number
  /** price walk period, default 1000; ≤ 0 disables the walk */
  tickMs?: number
  /** expose /__sim admin routes */
  admin?: boolean
  rateLimit?: { publicPerSec?: number; authPerSec?: number }
  log?: boolean
  /** Stream idle timeout (default 120 000 ms, as documented) */
  streamIdleMs?: number
  /** Stream per-IP limits (defaults as documented: 32 sockets, 500 new connections/hour, 20 authenticate/minute) */
  streamLimits?: Partial<StreamLimits>
  /** starting last price (default: seeded, 90 000–110 000) */
  initialPrice?: number
  /** annualised volatility of the walk (default 0.5) */
  volatility?: number
}

export interface Simulator {
  port: number
  /** http://host:port/v3 */
  url: string
  /** ws://host:port/v1 */
  streamUrl: string
  accounts: SimAccountInput[]
  /** add an account while running (demo mode's one-click credentials); its key must be new */
  addAccount(account: SimAccountInput): void
  faults: { set(f: Partial<Faults>): void; reset(): void; get(): Faults }
  stats: {
    requests(filter?: { path?: string; key?: string; sinceMs?: number }): number
    reset(): void
    log(): LogEntry[]
  }
  market: {
    price(): number
    index(): number
    setPrice(p: number): void
    tick(): void
    /** settle funding now (normally every 8 h at 00/08/16 UTC of the simulator clock) */
    settleFunding(): void
  }
  /** Stream v1 counters: connections, authenticate calls, refusals per limit, most sockets open at once */
  streamStats(): ReturnType<StreamServer['stats']>
  /** Stream v1 log: each upgrade attempt (wall ms, status) and each `authenticate` call (wall ms, the key it named) */
  streamEvents(): ReturnType<StreamServer['eventLog']>
  /** restart the Stream v1 server: drop every socket and refuse upgrades (503) for `refuseMs`; REST stays up */
  restartStream(refuseMs: number): void
  /** wallet events of an account (by username): the balance moves and `wallet/deposit|withdrawal` is pushed */
  wallet: {
    deposit(username: string, amount: number, network?: 'lightning' | 'bitcoin'): unknown
    withdraw(username: string, amount: number, network?: 'lightning' | 'bitcoin'): unknown
  }
  /** the simulator clock (wall clock + clockSkewMs), ms */
  now(): number
  /** close the listener and drop every socket: connection refused, like a full outage */
  pause(): Promise<void>
  /** listen again on the SAME port */
  resume(): Promise<void>
  close(): Promise<void>
}

const MAX_LOG = 10_000

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const host = opts.host ?? '127.0.0.1'
  const seed = opts.seed ?? 42
  const accounts = (opts.accounts ?? demoAccounts()).map((a) => ({
    ...a,
    ...(a.positions && { positions: a.positions.map((p) => ({ ...p })) }),
  }))
  const byKey = new Map(accounts.map((a) => [a.key, a]))
  if (byKey.size !== accounts.length) throw new Error('simulator: duplicate account key')

  // set once below; the engine's callbacks are created before it and check
  let stream: StreamServer | undefined = undefined
  const faults = createFaults((f) => {
    if (f.outage) stream?.dropAll()
    stream?.applyFaults(f)
  })
  const now = () => Date.now() + faults.get().clockSkewMs
  const market = new Market({
    seed,
    now,
    ...(opts.initialPrice !== undefined && { initialPrice: opts.initialPrice }),
    ...(opts.volatility !== undefined && { volatility: opts.volatility }),
  })
  const engine = new Engine(market, now, accounts, {
    trade: (owner: string, event: TradeEvent, t, extra) => stream?.publishTrade(owner, event, t, extra),
    crossOrder: (owner, event, o) => stream?.publishCrossOrder(owner, event, o),
    crossPosition: (owner, event, p) => stream?.publishCrossPosition(owner, event, p),
    wallet: (owner, kind, e) => stream?.publishWallet(owner, kind, e),
  })
  stream = new StreamServer({
    accounts: byKey,
    engine,
    market,
    now,
    faults: faults.get,
    rng: createRng(seed ^ 0x5eed),
    idleMs: opts.streamIdleMs ?? 120_000,
    ...(opts.streamLimits !== undefined && { limits: opts.streamLimits }),
  })

  const afterPrice = () => {
    engine.onPrice()
    stream.publishMarket()
  }
  // tickMs ≤ 0 disables the walk (prices then move only through setPrice/tick); setInterval caps at 2^31−1
  const tickMs = Math.min(opts.tickMs ?? 1000, 2_147_483_647)
  let lastTick = now()
  const tick = () => {
    const t = now()
    market.step(Math.max(1, Math.min(t - lastTick, 3_600_000)))
    lastTick = t
    afterPrice()
  }
  const setPrice = (p: number) => {
    if (!(Number.isFinite(p) && p > 0)) throw new SimError(400, 'badRequest', 'price must be a positive number')
    market.setPrice(p)
    afterPrice()
  }

  const keyOf = (username: unknown): string => {
    const a = typeof username === 'string' ? accounts.find((x) => x.username === username) : undefined
    if (!a) throw new SimError(404, 'notFound', 'no such username')
    return a.key
  }
  const walletAmount = (body: unknown): { username: unknown; amount: number; network: 'lightning' | 'bitcoin' } => {
    const b = (body ?? {}) as { username?: unknown; amount?: unknown; network?: unknown }
    if (!isSafeInt(b.amount) || b.amount < 1) throw new SimError(400, 'badRequest', 'amount must be a positive integer (sats)')
    if (b.network !== undefined && b.network !== 'lightning' && b.network !== 'bitcoin')
      throw new SimError(400, 'badRequest', "network must be 'lightning' or 'bitcoin'")
    return { username: b.username, amount: b.amount, network: b.network ?? 'lightning' }
  }

  const adminTrade = (body: unknown): { username: unknown; trade: CreateTradeBody } => {
    const b = (body ?? {}) as Record<string, unknown>
    const type = b.type ?? 'market'
    if (type !== 'market' && type !== 'limit') throw new SimError(400, 'badRequest', "type must be 'market' or 'limit'")
    if (b.side !== 'buy' && b.side !== 'sell') throw new SimError(400, 'badRequest', "side must be 'buy' or 'sell'")
    if (typeof b.leverage !== 'number' || !(b.leverage >= 1 && b.leverage <= 100))
      throw new SimError(400, 'badRequest', 'leverage must be a number from 1 to 100')
    if (!Number.isSafeInteger(b.quantity) || (b.quantity as number) < 1)
      throw new SimError(400, 'badRequest', 'quantity must be a positive integer (USD)')
    if (type === 'limit' && !(typeof b.price === 'number' && b.price > 0))
      throw new SimError(400, 'badRequest', 'a limit order needs a positive price')
    const trade: CreateTradeBody = {
      type,
      side: b.side,
      leverage: b.leverage,
      quantity: b.quantity as number,
      ...(type === 'limit' ? { price: b.price as number } : {}),
    }
    return { username: b.username, trade }
  }

  let log: LogEntry[] = []
  const held = new Set<ServerResponse>()
  const publicLimiter = new TokenBuckets(opts.rateLimit?.publicPerSec ?? 1)
  const authLimiter = new TokenBuckets(opts.rateLimit?.authPerSec ?? 5)
  const stats: Simulator['stats'] = {
    requests: (f = {}) =>
      log.filter(
        (e) =>
          (f.path === undefined || e.path === f.path) &&
          (f.key === undefined || e.key === f.key) &&
          (f.sinceMs === undefined || e.ts >= f.sinceMs),
      ).length,
    reset: () => {
      log = []
    },
    log: () => log.slice(),
  }

  const admin = opts.admin
    ? (method: string, path: string, body: unknown): unknown => {
        const route = `${method} ${path}`
        switch (route) {
          case 'GET /__sim/faults':
            return faults.get()
          case 'PUT /__sim/faults':
            faults.set(body as Partial<Faults>)
            return faults.get()
          case 'POST /__sim/faults/reset':
            faults.reset()
            return faults.get()
          case 'GET /__sim/stats': {
            const byPath: Record<string, number> = {}
            for (const e of log) byPath[e.path] = (byPath[e.path] ?? 0) + 1
            return { total: log.length, byPath, recent: log.slice(-100) }
          }
          case 'POST /__sim/stats/reset':
            stats.reset()
            return { ok: true }
          case 'GET /__sim/stream':
            return stream.stats()
          case 'POST /__sim/price': {
            const p = (body as { price?: unknown } | undefined)?.price
            setPrice(typeof p === 'number' ? p : NaN)
            return market.ticker()
          }
          case 'POST /__sim/tick':
            tick()
            return market.ticker()
          case 'POST /__sim/funding':
            return engine.settleFunding()
          case 'POST /__sim/wallet/deposit': {
            const w = walletAmount(body)
            return engine.deposit(keyOf(w.username), w.amount, w.network)
          }
          case 'POST /__sim/wallet/withdrawal': {
            const w = walletAmount(body)
            return engine.withdraw(keyOf(w.username), w.amount, w.network)
          }
          // a trader's own actions, for tests that need a fill or a close pushed by the exchange without signing requests
          case 'POST /__sim/trades': {
            const o = adminTrade(body)
            return engine.create(keyOf(o.username), o.trade)
          }
          case 'POST /__sim/trades/close': {
            const b = (body ?? {}) as { username?: unknown; id?: unknown }
            if (typeof b.id !== 'string') throw new SimError(400, 'badRequest', 'id must be a trade id')
            return engine.close(keyOf(b.username), b.id)
          }
          default:
            throw new SimError(404, 'notFound', `Route ${method}:${path} not found`)
        }
      }
    : undefined

  const handler = createHttpHandler({
    routes: buildRoutes({ engine, market, now }),
    accounts: byKey,
    now,
    faults: faults.get,
    rng: createRng(seed ^ 0xfa017),
    publicLimiter,
    authLimiter,
    held,
    ...(admin !== undefined && { admin }),
    ...(opts.log !== undefined && { log: opts.log }),
    record: (e) => {
      // never the key: it is a credential
      if (opts.log) console.log(`[simulator] ${e.method} ${e.path} ${e.status}`)
      log.push(e)
      if (log.length > MAX_LOG) log.splice(0, log.length - MAX_LOG)
    },
  })
  const server = createServer({ keepAliveTimeout: 5000 }, handler)
  const sockets = new Set<Socket>()
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.on('upgrade', (req, socket, head) => stream.handleUpgrade(req, socket, head))
  server.on('clientError', (_e, socket) => socket.destroy())

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve((server.address() as AddressInfo).port)
      })
    })
  const shut = () =>
    new Promise<void>((resolve) => {
      stream.dropAll()
      for (const r of held) r.destroy()
      held.clear()
      for (const s of sockets) s.destroy()
      if (!server.listening) return resolve()
      server.close(() => resolve())
    })

  const port = await listen(opts.port ?? 0)
  const timer = tickMs > 0 ? setInterval(tick, tickMs) : undefined
  timer?.unref()
  const urlHost = host.includes(':') ? `[${host}]` : host
  if (opts.log)
    console.log(`[simulator] listening on http://${urlHost}:${port} (next funding ${new Date(nextFundingTime(now())).toISOString()})`)

  let closed = false
  return {
    port,
    url: `http://${urlHost}:${port}/v3`,
    streamUrl: `ws://${urlHost}:${port}/v1`,
    accounts,
    addAccount: (input: SimAccountInput) => {
      if (byKey.has(input.key)) throw new Error('simulator: duplicate account key')
      const a = { ...input, ...(input.positions && { positions: input.positions.map((p) => ({ ...p })) }) }
      accounts.push(a)
      byKey.set(a.key, a)
      engine.addAccount(a)
    },
    faults,
    stats,
    market: {
      price: () => market.price(),
      index: () => market.index(),
      setPrice,
      tick,
      settleFunding: () => {
        engine.settleFunding()
      },
    },
    streamStats: () => stream.stats(),
    streamEvents: () => stream.eventLog(),
    restartStream: (refuseMs) => stream.restart(refuseMs),
    wallet: {
      deposit: (username, amount, network) => engine.deposit(keyOf(username), amount, network),
      withdraw: (username, amount, network) => engine.withdraw(keyOf(username), amount, network),
    },
    now,
    pause: shut,
    resume: async () => {
      if (closed) throw new Error('simulator: closed')
      if (!server.listening) await listen(port)
    },
    close: async () => {
      closed = true
      clearInterval(timer)
      await shut()
      stream.close()
    },
  }
}

const secret = () => randomBytes(24).toString('base64')

/**
 * the demo trader 'demo' (+ two more) with fresh random keys, balances, running positions, one open limit
 * order, a cross position with a resting cross order, and history (closed and canceled trades, funding
 * fees at past fixings, the filled cross order that opened the position)
 */
export function demoAccounts(): SimAccountInput[] {
  const mk = (username: string, balance: number, positions: NonNullable<SimAccountInput['positions']>): SimAccountInput => ({
    username,
    key: `sim-${username}-${randomBytes(6).toString('hex')}`,
    secret: secret(),
    passphrase: randomBytes(8).toString('hex'),
    balance,
    positions,
  })
  return [
    {
      ...mk('demo', 2_500_000, [
        { side: 'buy', quantity: 500, leverage: 10 },
        // the riskiest position, drawn on the chart by default: with a stop-loss and a take-profit
        { side: 'sell', quantity: 200, leverage: 25, stoplossPct: 2, takeprofitPct: 3 },
        { side: 'buy', quantity: 1000, leverage: 5 },
        { side: 'buy', quantity: 300, leverage: 20, type: 'limit' },
      ]),
      // every dashboard panel populated at first start: a cross position with a resting order, and history
      cross: { margin: 400_000, leverage: 10, side: 'buy', quantity: 2_000, orders: [{ side: 'sell', quantity: 500 }] },
      history: { closedTrades: 4 },
    },
    mk('alice', 1_000_000, [{ side: 'sell', quantity: 150, leverage: 10 }]),
    mk('bob', 50_000, []),
  ]
}

/** Number.isSafeInteger as a type guard (the lib's signature takes `unknown` but narrows nothing) */
const isSafeInt = (v: unknown): v is number => Number.isSafeInteger(v)

/** reads and validates a SIM_ACCOUNTS_FILE: a JSON array of {username,key,secret,passphrase,balance[,positions]} */
export function loadAccountsFile(path: string): SimAccountInput[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new Error(`SIM_ACCOUNTS_FILE ${path}: ${(e as Error).message}`, { cause: e })
  }
  const fail = (where: string, what: string): never => {
    throw new Error(`SIM_ACCOUNTS_FILE ${path}: ${where} ${what}`)
  }
  if (!Array.isArray(parsed) || parsed.length === 0) fail('root', 'must be a non-empty JSON array')
  const keys = new Set<string>()
  return (parsed as unknown[]).map((raw, i) => {
    const at = `[${i}]`
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(at, 'must be an object')
    const a = raw as Record<string, unknown>
    for (const k of Object.keys(a))
      if (!['username', 'key', 'secret', 'passphrase', 'balance', 'positions', 'cross', 'history'].includes(k))
        fail(`${at}.${k}`, 'is not a known field')
    for (const k of ['username', 'key', 'secret', 'passphrase'] as const) {
      if (typeof a[k] !== 'string' || a[k].length === 0) fail(`${at}.${k}`, 'must be a non-empty string')
    }
    if (keys.has(a.key as string)) fail(`${at}.key`, 'is duplicated')
    keys.add(a.key as string)
    if (!isSafeInt(a.balance) || a.balance < 0) fail(`${at}.balance`, 'must be a non-negative integer (sats)')
    let positions: SimAccountInput['positions']
    if (a.positions !== undefined) {
      if (!Array.isArray(a.positions)) fail(`${at}.positions`, 'must be an array')
      positions = (a.positions as unknown[]).map((rp, j) => {
        const pat = `${at}.positions[${j}]`
        if (typeof rp !== 'object' || rp === null) return fail(pat, 'must be an object')
        const p = rp as Record<string, unknown>
        for (const k of Object.keys(p))
          if (!['side', 'quantity', 'leverage', 'entryPrice', 'type', 'price', 'stoplossPct', 'takeprofitPct'].includes(k))
            fail(`${pat}.${k}`, 'is not a known field')
        if (p.side !== 'buy' && p.side !== 'sell') fail(`${pat}.side`, "must be 'buy' or 'sell'")
        if (!isSafeInt(p.quantity) || p.quantity < 1) fail(`${pat}.quantity`, 'must be a positive integer (USD)')
        if (typeof p.leverage !== 'number' || p.leverage < 1 || p.leverage > 100) fail(`${pat}.leverage`, 'must be a number in [1, 100]')
        if (p.type !== undefined && p.type !== 'market' && p.type !== 'limit') fail(`${pat}.type`, "must be 'market' or 'limit'")
        for (const k of ['entryPrice', 'price', 'stoplossPct', 'takeprofitPct'] as const) {
          if (p[k] !== undefined && (typeof p[k] !== 'number' || p[k] <= 0)) fail(`${pat}.${k}`, 'must be a positive number')
        }
        return p as unknown as NonNullable<SimAccountInput['positions']>[number]
      })
    }
    const cross = a.cross === undefined ? undefined : crossInput(a.cross, `${at}.cross`, fail)
    const history = a.history === undefined ? undefined : historyInput(a.history, `${at}.history`, fail)
    return {
      username: a.username as string,
      key: a.key as string,
      secret: a.secret as string,
      passphrase: a.passphrase as string,
      balance: a.balance as number,
      ...(positions ? { positions } : {}),
      ...(cross ? { cross } : {}),
      ...(history ? { history } : {}),
    }
  })
}

type Fail = (where: string, what: string) => never
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const onlyKeys = (o: Record<string, unknown>, keys: string[], at: string, fail: Fail) => {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`${at}.${k}`, 'is not a known field')
}
const side = (v: unknown, at: string, fail: Fail) => (v === 'buy' || v === 'sell' ? v : fail(at, "must be 'buy' or 'sell'"))
const posInt = (v: unknown, at: string, fail: Fail, what: string) =>
  isSafeInt(v) && v >= 1 ? v : fail(at, `must be a positive integer (${what})`)
const posNum = (v: unknown, at: string, fail: Fail) => (typeof v === 'number' && v > 0 ? v : fail(at, 'must be a positive number'))

function crossInput(raw: unknown, at: string, fail: Fail): SimCrossInput {
  if (!isObject(raw)) return fail(at, 'must be an object')
  onlyKeys(raw, ['margin', 'leverage', 'side', 'quantity', 'entryPrice', 'orders'], at, fail)
  const out: SimCrossInput = { margin: posInt(raw.margin, `${at}.margin`, fail, 'sats') }
  if (raw.leverage !== undefined)
    out.leverage =
      typeof raw.leverage === 'number' && raw.leverage >= 1 && raw.leverage <= 100
        ? raw.leverage
        : fail(`${at}.leverage`, 'must be a number in [1, 100]')
  if ((raw.side === undefined) !== (raw.quantity === undefined)) fail(at, 'needs both side and quantity, or neither')
  if (raw.side !== undefined) out.side = side(raw.side, `${at}.side`, fail)
  if (raw.quantity !== undefined) out.quantity = posInt(raw.quantity, `${at}.quantity`, fail, 'USD')
  if (raw.entryPrice !== undefined) out.entryPrice = posNum(raw.entryPrice, `${at}.entryPrice`, fail)
  if (raw.orders !== undefined) {
    if (!Array.isArray(raw.orders)) fail(`${at}.orders`, 'must be an array')
    out.orders = (raw.orders as unknown[]).map((o, i) => {
      const oat = `${at}.orders[${i}]`
      if (!isObject(o)) return fail(oat, 'must be an object')
      onlyKeys(o, ['side', 'quantity', 'price'], oat, fail)
      return {
        side: side(o.side, `${oat}.side`, fail),
        quantity: posInt(o.quantity, `${oat}.quantity`, fail, 'USD'),
        ...(o.price !== undefined ? { price: posNum(o.price, `${oat}.price`, fail) } : {}),
      }
    })
  }
  return out
}

function historyInput(raw: unknown, at: string, fail: Fail): SimHistoryInput {
  if (!isObject(raw)) return fail(at, 'must be an object')
  onlyKeys(raw, ['closedTrades', 'fundingSettlements'], at, fail)
  const n = (v: unknown, k: string) => (isSafeInt(v) && v >= 0 && v <= 500 ? v : fail(`${at}.${k}`, 'must be an integer in [0, 500]'))
  return {
    ...(raw.closedTrades !== undefined ? { closedTrades: n(raw.closedTrades, 'closedTrades') } : {}),
    ...(raw.fundingSettlements !== undefined ? { fundingSettlements: n(raw.fundingSettlements, 'fundingSettlements') } : {}),
  }
}
