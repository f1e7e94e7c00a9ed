/** Test helpers for the exchange client: a local node:http server that records every request, fixtures, a tripwire. */
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { createHmac } from 'node:crypto'
import { Registry } from 'prom-client'
import { createMetrics } from '../../metrics.ts'
import { LnmClient, LnmError, type LnmClientOptions } from '../../exchange/client.ts'

export interface Recorded {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  body: string
  at: number
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string, n: number) => void

export interface LocalServer {
  /** http://127.0.0.1:port/v3 */
  url: string
  port: number
  requests: Recorded[]
  count(pathPrefix?: string): number
  setHandler(h: Handler): void
  close(): Promise<void>
}

export async function localServer(handler: Handler): Promise<LocalServer> {
  let h = handler
  const requests: Recorded[] = []
  const sockets = new Set<Socket>()
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: Date.now() })
      try {
        h(req, res, body, requests.length)
      } catch (e) {
        res.statusCode = 599
        res.end(String(e))
      }
    })
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/v3`,
    port,
    requests,
    count: (prefix?: string) => requests.filter((r) => !prefix || r.url.startsWith(prefix)).length,
    setHandler(nh) {
      h = nh
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

export function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

/** Server-side v3 verification (lnmarkets-api.md §8.1): raw body, else the raw search string exactly as received. */
export function verifySignature(req: Pick<http.IncomingMessage, 'method' | 'url' | 'headers'>, body: string, secret: string): boolean {
  const u = new URL(req.url ?? '/', 'http://x')
  const rawSearch = (req.url ?? '').includes('?') ? (req.url ?? '').slice((req.url ?? '').indexOf('?')) : ''
  const data = body !== '' ? body : rawSearch
  const prehash = `${req.headers['lnm-access-timestamp']}${(req.method ?? '').toLowerCase()}${u.pathname}${data}`
  const expected = createHmac('sha256', secret).update(prehash).digest('base64')
  return expected === req.headers['lnm-access-signature']
}

export const CREDS = { key: 'test-key-AAAA1111', secret: 'test-secret-BBBB2222+/=', passphrase: 'test-pass-CCCC3333' }
export const CREDS2 = { key: 'test-key-DDDD4444', secret: 'test-secret-EEEE5555', passphrase: 'test-pass-FFFF6666' }

export const ACCOUNT = {
  id: '00000000-0000-4000-8000-000000000001',
  username: 'satoshi',
  balance: 100000,
  syntheticUsdBalance: 0,
  feeTier: 1,
  email: null,
  linkingPublicKey: null,
}

export function trade(over: Record<string, unknown> = {}) {
  return {
    id: 'd0b9f9a0-4f6e-4a5a-8b7a-7f0f5f9a8a1e',
    type: 'market',
    side: 'buy',
    openingFee: 0,
    closingFee: 0,
    maintenanceMargin: 100,
    quantity: 1,
    margin: 1000,
    leverage: 10,
    price: 100000,
    liquidation: 90000,
    stoploss: 0,
    stoplossTrailingDistance: 0.1,
    takeprofit: 0,
    exitPrice: null,
    pl: 0,
    createdAt: '2026-01-01T00:00:00.000Z',
    filledAt: '2026-01-01T00:00:01.000Z',
    closedAt: null,
    entryPrice: 100000,
    entryMargin: 1000,
    open: false,
    running: true,
    canceled: false,
    closed: false,
    sumFundingFees: 0,
    sumCashInPl: 0,
    sumCashInMargin: 0,
    clientId: null,
    ...over,
  }
}

export const TICKER = {
  index: 67500.5,
  lastPrice: 67520,
  fundingRate: 0.0001,
  fundingTime: '2026-07-17T16:00:00.000Z',
  prices: [
    { minSize: 100000, maxSize: 500000, bidPrice: 67505, askPrice: 67535.5 },
    { minSize: 0, maxSize: 100000, bidPrice: 67515, askPrice: 67525 },
  ],
}

/** A well-behaved LN Markets v3 mock. `skewMs` shifts its clock; signed calls are verified (±30 s). */
export function lnmHandler(opts: { skewMs?: () => number; secret?: string } = {}): Handler {
  return (req, res, body) => {
    const u = new URL(req.url ?? '/', 'http://x')
    const now = Date.now() + (opts.skewMs?.() ?? 0)
    const p = u.pathname.replace(/^\/v3/, '')
    if (p === '/ping') return json(res, 200, '"pong"')
    if (p === '/time') return json(res, 200, { time: new Date(now).toISOString() })
    if (p === '/futures/ticker') return json(res, 200, TICKER)
    if (p === '/futures/candles')
      return json(res, 200, {
        data: [{ time: '2026-01-01T00:00:00.000Z', open: 1, high: 2, low: 0.5, close: 1.5, volume: 10 }],
        nextCursor: null,
      })
    if (p === '/oracle/index') return json(res, 200, [{ index: 67500, time: '2026-01-01T00:00:00.000Z' }])
    if (p === '/oracle/last-price') return json(res, 200, [{ lastPrice: 67520, time: '2026-01-01T00:00:00.000Z' }])
    // private
    const ts = Number(req.headers['lnm-access-timestamp'])
    if (!Number.isFinite(ts)) return json(res, 401, { code: 'apiKeyMissing', message: 'missing timestamp' })
    if (ts > now + 30_000) return json(res, 401, { code: 'apiKeyTimestampTurfu', message: 'Your request too far in the future' })
    if (now - ts > 30_000) return json(res, 401, { code: 'apiKeyTimestampExpired', message: 'Your request is too old' })
    const secret = req.headers['lnm-access-key'] === CREDS2.key ? CREDS2.secret : (opts.secret ?? CREDS.secret)
    if (!verifySignature(req, body, secret)) return json(res, 401, { code: 'apiKeyInvalidSignature', message: 'Signature is not valid' })
    if (p === '/account') return json(res, 200, ACCOUNT)
    if (p === '/futures/isolated/trades/running') return json(res, 200, [trade()])
    if (p === '/futures/isolated/trades/open')
      return json(res, 200, [trade({ id: 'o1', type: 'limit', open: true, running: false, filledAt: null, entryPrice: null })])
    if (p === '/futures/isolated/trades/closed')
      return json(res, 200, {
        data: [trade({ id: 'c1', running: false, closed: true, closedAt: '2026-01-02T00:00:00.000Z', exitPrice: 101000 })],
        nextCursor: null,
      })
    if (p === '/futures/isolated/trade' && req.method === 'POST') return json(res, 200, trade())
    return json(res, 404, { code: 'notFound', message: 'Not found' })
  }
}

/** Records uncaught exceptions / unhandled rejections during a test file. */
export function tripwire() {
  const seen: unknown[] = []
  const onErr = (e: unknown) => seen.push(e)
  process.on('uncaughtException', onErr)
  process.on('unhandledRejection', onErr)
  return {
    seen,
    stop() {
      process.off('uncaughtException', onErr)
      process.off('unhandledRejection', onErr)
    },
  }
}

/** Every 1 s sliding window over the timestamps: the biggest count. */
export function maxPerWindow(times: number[], windowMs = 1000): number {
  const s = [...times].sort((a, b) => a - b)
  let best = 0
  for (let i = 0, j = 0; i < s.length; i++) {
    while (s[i]! - s[j]! >= windowMs) j++
    best = Math.max(best, i - j + 1)
  }
  return best
}

export function collectingLogger() {
  const lines: string[] = []
  const log = (level: string) => (obj: object, msg?: string) => lines.push(`${level} ${JSON.stringify(obj)} ${msg ?? ''}`)
  return { lines, logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') } }
}

/** awaits a promise that must reject with an LnmError, and returns that error */
export async function rejects(p: Promise<unknown>): Promise<LnmError> {
  try {
    await p
  } catch (e) {
    if (e instanceof LnmError) return e
    throw e
  }
  throw new Error('expected a rejection')
}

/** an LnmClient (fast retries, throttles out of the way unless overridden) against a local server, closed in teardown */
export async function clientOnLocalServer(
  t: { teardown(fn: () => unknown): void },
  handler: Handler,
  opts: Partial<LnmClientOptions> = {},
) {
  const server = await localServer(handler)
  const metrics = createMetrics(new Registry())
  const client = new LnmClient({ baseUrl: server.url, metrics, limits: { publicPerSec: 1000, authPerSec: 1000 }, ...opts })
  t.teardown(async () => {
    await client.close()
    await server.close()
  })
  return { server, client, metrics }
}
