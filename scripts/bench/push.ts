/**
 * Bench phase `push`: what the private Stream v1 saves and how fast it is, on loopback against the bench simulator.
 *
 * Two gateways run at once against the same simulator, with the default poll (5 s) and reconcile (30 s) periods,
 * each watching accounts of its own through one /ws dashboard per account: one with exchange push
 * (PRIVATE_STREAMS_PER_NODE = K + 1), one polling only (PRIVATE_STREAMS_PER_NODE = 0). After a settle period
 * (streams up, first loads and history done, and the first reconcile after the full fetch, which falls on the
 * account's 30 s phase at least 15 s later: 45 s) the simulator counts the signed REST requests of K accounts of each
 * over one window → requests per watched account per minute, side by side. The window is a whole minute by
 * default: the reconcile runs every 30 s and fetches `cross` every other round, so a shorter window counts 0 or 1
 * rounds depending on the phase. Meanwhile, on the push gateway's extra account (not counted), exchange events
 * (a market trade opened, then closed, through the simulator's REST API) are timed from the request to the
 * `positions` data_update that shows them on that account's dashboard socket.
 */
import WebSocket from 'ws'
import { authHeaders } from '../../backend/exchange/signing.ts'
import { provisionUsers, startGateway, type Gateway } from '../lib/gateway.ts'
import { rpc, sleep } from '../lib/proc.ts'
import type { Child, SimAccount } from '../lib/servers.ts'

export interface PushOptions {
  sim: Child & { url: string; streamUrl: string }
  /** 2K + 1 accounts: the first K + 1 for the push gateway (the last one for the events), the next K for the polling one */
  accounts: SimAccount[]
  k: number
  settleMs: number
  windowMs: number
  /** trades opened and closed (2 events each) */
  trades: number
}

export interface PushResult {
  accounts: number
  windowMs: number
  pollIntervalMs: number
  reconcileMs: number
  push: { perAccountPerMinute: number; perAccount: number[] }
  polling: { perAccountPerMinute: number; perAccount: number[] }
  /** push ÷ polling */
  ratio: number
  latency: { n: number; p50: number; p99: number; max: number; all: number[] }
}

const percentile = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!
}

/** a dashboard socket: authenticated, frames kept with their receive time */
async function dashboard(url: string, token: string): Promise<{ ws: WebSocket; frames: Array<{ f: any; at: number }> }> {
  const ws = new WebSocket(url, { perMessageDeflate: false })
  const frames: Array<{ f: any; at: number }> = []
  ws.on('message', (d) => {
    try {
      frames.push({ f: JSON.parse(d.toString()), at: Date.now() })
    } catch {
      /* not JSON */
    }
  })
  ws.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  ws.send(JSON.stringify({ type: 'auth', request_id: 'auth-1', token }))
  const until = Date.now() + 10_000
  while (!frames.some((x) => x.f.type === 'connection')) {
    if (Date.now() > until) throw new Error('bench push: no connection frame')
    await sleep(20)
  }
  return { ws, frames }
}

/** a signed REST call to the simulator (as a trader's app would make it) */
async function exchangeCall(base: string, acc: SimAccount, method: 'POST', path: string, body: unknown): Promise<any> {
  const url = new URL(`${base}${path}`)
  const text = JSON.stringify(body)
  const res = await fetch(url, {
    method,
    body: text,
    headers: { 'content-type': 'application/json', ...authHeaders(acc, Date.now(), method, url, text) },
  })
  const json = await res.json()
  if (res.status !== 200) throw new Error(`bench push: ${method} ${path} → ${res.status} ${JSON.stringify(json)}`)
  return json
}

/** open then close `o.trades` market trades on `acc`; ms from each request to the data_update that shows it */
async function fireEvents(o: PushOptions, acc: SimAccount, d: { frames: Array<{ f: any; at: number }> }): Promise<number[]> {
  const lat: number[] = []
  const waitFor = async (mark: number, pred: (f: any) => boolean): Promise<number | null> => {
    const until = Date.now() + 10_000
    for (;;) {
      const hit = d.frames.slice(mark).find((x) => x.f.type === 'data_update' && x.f.channel === 'positions' && pred(x.f))
      if (hit) return hit.at
      if (Date.now() > until) return null
      await sleep(2)
    }
  }
  const running = (f: any, id: string) => (f.data.running as Array<{ id: string }>).some((x) => x.id === id)
  // spread over most of the window
  const gap = Math.max(400, Math.floor((o.windowMs * 0.8) / (2 * o.trades)))
  for (let i = 0; i < o.trades; i++) {
    let mark = d.frames.length
    let t0 = Date.now()
    const trade = await exchangeCall(o.sim.url, acc, 'POST', '/futures/isolated/trade', {
      type: 'market',
      side: i % 2 ? 'sell' : 'buy',
      leverage: 10,
      quantity: 10,
    })
    const opened = await waitFor(mark, (f) => running(f, trade.id))
    if (opened !== null) lat.push(opened - t0)
    await sleep(gap)
    mark = d.frames.length
    t0 = Date.now()
    await exchangeCall(o.sim.url, acc, 'POST', '/futures/isolated/trade/close', { id: trade.id })
    const closed = await waitFor(mark, (f) => !running(f, trade.id))
    if (closed !== null) lat.push(closed - t0)
    await sleep(gap)
  }
  return lat
}

export async function pushRun(o: PushOptions, log: (s: string) => void): Promise<PushResult> {
  const pushAccounts = o.accounts.slice(0, o.k)
  const eventAccount = o.accounts[o.k]!
  const pollAccounts = o.accounts.slice(o.k + 1, 2 * o.k + 1)
  const env = (streams: number) => ({ PRIVATE_STREAMS_PER_NODE: String(streams), POLL_INTERVAL_MS: '5000', PUSH_RECONCILE_MS: '30000' })
  const gws: Gateway[] = []
  const sockets: WebSocket[] = []
  try {
    const [gPush, gPoll] = await Promise.all([
      startGateway({ apiUrl: o.sim.url, streamUrl: o.sim.streamUrl, env: env(o.k + 1) }),
      startGateway({ apiUrl: o.sim.url, streamUrl: o.sim.streamUrl, env: env(0) }),
    ])
    gws.push(gPush, gPoll)
    const [uPush, uPoll] = await Promise.all([
      provisionUsers(gPush.origin, [...pushAccounts, eventAccount]),
      provisionUsers(gPoll.origin, pollAccounts),
    ])
    const dashPush = await Promise.all(uPush.map((u) => dashboard(gPush.wsUrl, u.token)))
    const dashPoll = await Promise.all(uPoll.map((u) => dashboard(gPoll.wsUrl, u.token)))
    sockets.push(...dashPush.map((d) => d.ws), ...dashPoll.map((d) => d.ws))
    log(`  ${o.k} accounts with push, ${o.k} polling only; settling ${o.settleMs / 1000} s (streams up, first loads, history)`)
    await sleep(o.settleMs)

    // REST requests per account over one window; the exchange events run meanwhile on the extra account
    const from = Date.now()
    const events = fireEvents(o, eventAccount, dashPush[o.k]!)
    await sleep(o.windowMs)
    const r = await rpc(o.sim.proc, { op: 'requests', sinceMs: from }, 10_000)
    const minutes = (Date.now() - from) / 60_000
    const byKey = r.byKey as Record<string, number>
    const per = (accs: SimAccount[]) => accs.map((a) => (byKey[a.key] ?? 0) / minutes)
    const push = per(pushAccounts)
    const polling = per(pollAccounts)
    const avg = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length
    log(`  upstream REST requests per watched account per minute: push ${avg(push).toFixed(1)}, polling only ${avg(polling).toFixed(1)}`)
    const lat = await events
    const latency = { n: lat.length, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), max: Math.max(...lat), all: lat }
    log(
      `  exchange event → dashboard data_update: n=${latency.n} p50 ${latency.p50} ms, p99 ${latency.p99} ms, max ${latency.max} ms (${2 * o.trades - lat.length} missed)`,
    )
    return {
      accounts: o.k,
      windowMs: o.windowMs,
      pollIntervalMs: 5000,
      reconcileMs: 30_000,
      push: { perAccountPerMinute: avg(push), perAccount: push },
      polling: { perAccountPerMinute: avg(polling), perAccount: polling },
      ratio: avg(push) / avg(polling),
      latency,
    }
  } finally {
    for (const s of sockets) s.terminate()
    await Promise.all(gws.map((g) => g.stop()))
  }
}
