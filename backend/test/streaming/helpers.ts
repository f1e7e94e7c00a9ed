/**
 * WebSocket test clients for /ws. `WsClient` keeps every frame (for protocol tests); `open()` waits for the
 * upgrade. Frames are parsed JSON; `next(pred)` waits for the first matching frame not yet consumed.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'
import type { FuturesTrade } from '../../schemas/ws-protocol.ts'

export interface CloseInfo {
  code: number
  reason: string
}

export class WsClient {
  readonly frames: any[] = []
  private cursor = 0
  private waiters: Array<() => void> = []
  readonly closed: Promise<CloseInfo>
  closeInfo: CloseInfo | null = null
  /** receive time (ms) of each frame, same index as `frames` */
  readonly at: number[] = []

  constructor(
    readonly ws: WebSocket,
    readonly keep = true,
  ) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() }
        resolve(this.closeInfo)
        this.wake()
      })
    })
    ws.on('error', () => {})
    ws.on('message', (data, isBinary) => {
      if (isBinary) return
      let f: any
      try {
        f = JSON.parse(data.toString())
      } catch {
        return
      }
      this.frames.push(f)
      this.at.push(Date.now())
      this.wake()
    })
  }

  static open(url: string, opts: { token?: string; headers?: Record<string, string> } = {}): Promise<WsClient> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`
    const ws = new WebSocket(url, { headers, perMessageDeflate: false })
    const c = new WsClient(ws)
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(c))
      ws.once('unexpected-response', (_req, res) => {
        let body = ''
        res.on('data', (d: Buffer) => (body += d.toString()))
        res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body })))
      })
      ws.once('error', reject)
    })
  }

  /** open + auth by first message; resolves after the connection frame */
  static async authed(url: string, token: string): Promise<WsClient> {
    const c = await WsClient.open(url)
    c.send({ type: 'auth', request_id: 'auth-1', token })
    await c.next((f) => f.type === 'connection', 5000)
    return c
  }

  private wake() {
    const w = this.waiters
    this.waiters = []
    for (const fn of w) fn()
  }

  send(obj: unknown) {
    this.ws.send(JSON.stringify(obj))
  }

  /** the first frame after the cursor matching pred; consumes up to it */
  async next(pred: (f: any) => boolean, timeoutMs = 3000): Promise<any> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      for (let i = this.cursor; i < this.frames.length; i++) {
        if (pred(this.frames[i])) {
          this.cursor = i + 1
          return this.frames[i]
        }
      }
      const left = deadline - Date.now()
      if (left <= 0)
        throw new Error(
          `timeout waiting for frame; got ${JSON.stringify(this.frames.slice(this.cursor).map((f) => (f.type === 'data_update' ? `${f.type}:${f.channel}` : f)))}`,
        )
      if (this.closeInfo) throw new Error(`socket closed ${this.closeInfo.code} ${this.closeInfo.reason} while waiting`)
      await new Promise<void>((r) => {
        const t = setTimeout(r, left)
        this.waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
  }

  /** frames matching pred received so far (does not consume) */
  all(pred: (f: any) => boolean): any[] {
    return this.frames.filter(pred)
  }

  async waitClose(timeoutMs = 5000): Promise<CloseInfo> {
    let t: NodeJS.Timeout | undefined
    const r = await Promise.race([
      this.closed,
      new Promise<null>((res) => {
        t = setTimeout(() => res(null), timeoutMs)
      }),
    ])
    clearTimeout(t)
    if (!r) throw new Error(`socket not closed within ${timeoutMs} ms`)
    return r
  }

  close(code = 1000) {
    this.ws.close(code)
  }
}

export { sleep }

export interface UntilOptions {
  /** what is waited for, named in the timeout error (default: the condition's source) */
  what?: string
  /** poll interval, ms */
  stepMs?: number
}

/**
 * Polls `cond` until it holds and resolves `true`; when it still does not hold after `timeoutMs` it THROWS
 * `until: timed out after N ms waiting for <what>`, which fails the test. So `await until(cond)` on its own is
 * a checked wait, and `t.ok(await until(cond), 'label')` still reads as an assertion. Pass a string as the
 * third argument for `{ what }`. For a wait whose timeout is a legitimate outcome, use `holdsWithin`.
 */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, opts: string | UntilOptions = {}): Promise<true> {
  const { what, stepMs } = typeof opts === 'string' ? { what: opts, stepMs: undefined } : opts
  if (await holdsWithin(cond, timeoutMs, stepMs)) return true
  throw new Error(`until: timed out after ${timeoutMs} ms waiting for ${what ?? cond.toString()}`)
}

/**
 * Polls `cond` for up to `timeoutMs`; resolves whether it came to hold. A timeout is NOT an error here: the
 * caller must assert or branch on the result (e.g. to report measurements in its own assertion message).
 */
export async function holdsWithin(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await cond()) return true
    await sleep(stepMs)
  }
  return cond()
}

/** sum of a metric's values matching labels (counters, gauges; histograms: pass the full sample name) */
export async function metricValue(
  registry: { getMetricsAsJSON(): Promise<Array<{ name: string; values: Array<{ value: number; labels: object; metricName?: string }> }>> },
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  for (const m of await registry.getMetricsAsJSON()) {
    const values = m.values.filter((v) => (v.metricName ?? m.name) === name)
    if (!values.length) continue
    return values
      .filter((v) => Object.entries(labels).every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val))
      .reduce((a, v) => a + v.value, 0)
  }
  return 0
}

export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!
}

/** the HTTP status of a refused upgrade (101 when it was accepted) */
/** the first message of a raw `ws` socket (the server's `connection` frame once authenticated); rejects on an error */
export function firstMessage(ws: WebSocket): Promise<unknown> {
  return new Promise((resolve, reject) => {
    ws.once('message', resolve)
    ws.once('error', reject)
  })
}

export async function upgradeStatus(url: string, token: string): Promise<number> {
  try {
    const c = await WsClient.open(url, { token })
    c.close()
    return 101
  } catch (err) {
    return (err as { status?: number }).status ?? 0
  }
}

/** a whole closed isolated trade (closed `closedAgoMs` before `now`); `o` overrides any field */
export function trade(id: string, closedAgoMs: number, now: number, o: Partial<FuturesTrade> = {}): FuturesTrade {
  const at = new Date(now - closedAgoMs).toISOString()
  return {
    id,
    type: 'market',
    side: 'buy',
    quantity: 100,
    margin: 1000,
    leverage: 10,
    price: 100_000,
    entryPrice: 100_000,
    entryMargin: 1000,
    exitPrice: 101_000,
    liquidation: 90_000,
    stoploss: 0,
    takeprofit: 0,
    pl: 100,
    openingFee: 2,
    closingFee: 3,
    maintenanceMargin: 10,
    sumFundingFees: 0,
    open: false,
    running: false,
    closed: true,
    canceled: false,
    createdAt: at,
    filledAt: at,
    closedAt: at,
    ...o,
  }
}
