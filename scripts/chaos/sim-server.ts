/**
 * The LN Markets simulator for the chaos suite, in its own process: the exchange's DOCUMENTED limits
 * (5 signed requests/s per key, 1 public request/s per address), the 1 s price walk on (so tickers and
 * positions move by themselves), fault injection through IPC (the same state `PUT /__sim/faults` sets).
 *
 * Every request that reaches it (answered, refused, faulted or held open) is kept, so the suite can count
 * at the exchange what the gateway sent: per key, the most requests in any sliding 1 s window.
 * env: SIM_ACCOUNTS_FILE. Tells its parent {ready, port, url, streamUrl}.
 */
import { loadAccountsFile, startSimulator } from '../../backend/simulator/index.ts'

const file = process.env.SIM_ACCOUNTS_FILE
const sim = await startSimulator({
  port: 0,
  host: '127.0.0.1',
  ...(file && { accounts: loadAccountsFile(file) }),
  admin: true,
  seed: 11,
  tickMs: 1000,
  initialPrice: 100_000,
  rateLimit: { publicPerSec: 1, authPerSec: 5 },
  streamIdleMs: 3_600_000,
})

/** every request seen, oldest first (the simulator's own log is bounded, so it is drained every 500 ms) */
const seen: Array<{ ts: number; key: string; path: string; status: number }> = []
const MAX_SEEN = 2_000_000
const drain = () => {
  const log = sim.stats.log()
  sim.stats.reset()
  for (const e of log)
    if (seen.length < MAX_SEEN) seen.push({ ts: e.ts, key: e.key ?? '(public)', path: `${e.method} ${e.path}`, status: e.status })
}
const timer = setInterval(drain, 500)

/** the most entries of one sorted list of times inside any window of `windowMs` */
function maxInWindow(ts: number[], windowMs: number): number {
  let best = 0
  let lo = 0
  for (let hi = 0; hi < ts.length; hi++) {
    while (ts[hi]! - ts[lo]! >= windowMs) lo++
    best = Math.max(best, hi - lo + 1)
  }
  return best
}

function rates(sinceMs: number, untilMs: number) {
  drain()
  const byKey = new Map<string, number[]>()
  const byStatus: Record<string, number> = {}
  const byPath: Record<string, number> = {}
  let total = 0
  for (const e of seen) {
    if (e.ts < sinceMs || e.ts > untilMs) continue
    total++
    byStatus[e.status] = (byStatus[e.status] ?? 0) + 1
    byPath[e.path] = (byPath[e.path] ?? 0) + 1
    let l = byKey.get(e.key)
    if (!l) byKey.set(e.key, (l = []))
    l.push(e.ts)
  }
  const perKey: Record<string, { total: number; maxPerSec: number }> = {}
  for (const [k, l] of byKey) {
    l.sort((a, b) => a - b)
    perKey[k] = { total: l.length, maxPerSec: maxInWindow(l, 1000) }
  }
  return { total, byStatus, byPath, perKey }
}

/**
 * per key, the longest time in [sinceMs, untilMs] without a request on one of `paths` (e.g. 'GET /v3/account'),
 * the window's edges included: how long an account went unpolled
 */
function gaps(paths: string[], sinceMs: number, untilMs: number) {
  drain()
  const want = new Set(paths)
  const byKey = new Map<string, number[]>()
  for (const e of seen) {
    if (e.ts < sinceMs || e.ts > untilMs || e.key === '(public)' || !want.has(e.path)) continue
    let l = byKey.get(e.key)
    if (!l) byKey.set(e.key, (l = []))
    l.push(e.ts)
  }
  const maxGapMs: Record<string, number> = {}
  for (const [k, l] of byKey) {
    l.sort((a, b) => a - b)
    let g = l[0]! - sinceMs
    for (let i = 1; i < l.length; i++) g = Math.max(g, l[i]! - l[i - 1]!)
    maxGapMs[k] = Math.max(g, untilMs - l[l.length - 1]!)
  }
  return { maxGapMs }
}

process.on('message', (m: any) => {
  const reply = (body: Record<string, unknown>) => process.send?.({ id: m.id, ...body })
  try {
    switch (m?.op) {
      case 'faults':
        sim.faults.set(m.faults)
        reply({ faults: sim.faults.get() })
        break
      case 'faultsReset':
        sim.faults.reset()
        reply({ faults: sim.faults.get() })
        break
      case 'rates':
        reply(rates(m.sinceMs ?? 0, m.untilMs ?? Number.MAX_SAFE_INTEGER))
        break
      case 'gaps':
        reply(gaps(m.paths ?? [], m.sinceMs ?? 0, m.untilMs ?? Date.now()))
        break
      case 'streamStats':
        reply(sim.streamStats())
        break
      case 'now':
        reply({ now: Date.now() })
        break
      default:
        reply({ error: `unknown op ${String(m?.op)}` })
    }
  } catch (e) {
    reply({ error: (e as Error).message })
  }
})
const stop = () => {
  clearInterval(timer)
  void sim.close().finally(() => process.exit(0))
}
process.on('disconnect', stop)
process.on('SIGTERM', stop)
process.send?.({ ready: true, port: sim.port, url: sim.url, streamUrl: sim.streamUrl })
