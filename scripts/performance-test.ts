/**
 * npm run performance-test [-- --connections 20 --ticks 40 --rate 2 --poll-ms 1000]
 *
 * In the spirit of the original design's test (which reported 12.6 ms mean latency on 20 connections):
 * the same ticker snapshot delivered two ways, measured on the same run —
 *  - WebSocket push: C dashboards on /ws; latency = frame received − sourceTs (the simulator's price time);
 *  - HTTP: C clients calling GET /api/dashboard; (a) the request's round trip, and (b) for clients polling
 *    every --poll-ms, how old the snapshot is when a poll first shows it (received − sourceTs).
 * The simulator, the gateway and the WebSocket clients run in separate processes; HTTP clients run here.
 * Writes bench/results/performance-<date>.json.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from 'undici'
import { intArg, numArg, parseArgs } from './lib/args.ts'
import { describeMachine, machineLine } from './lib/machine.ts'
import { LoadGen } from './lib/loadgen.ts'
import { ROOT, sleep, stopChild } from './lib/proc.ts'
import { makeSimAccounts, startSim } from './lib/servers.ts'
import { PriceDriver } from './lib/ticker.ts'
import { fmt, round, Samples, summarize, table, type Summary } from './lib/stats.ts'
import { provisionUsers, startGateway, type Gateway } from './lib/gateway.ts'

const args = parseArgs()
const C = intArg(args, 'connections', 20, 1, 2000)
const nTicks = intArg(args, 'ticks', 40, 1, 10_000)
const rate = numArg(args, 'rate', 2, 0.1, 50)
const pollMs = intArg(args, 'poll-ms', 1000, 10, 60_000)
const started = new Date()
const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`)
const nowMs = () => performance.timeOrigin + performance.now()

async function main(): Promise<void> {
  const machine = describeMachine()
  log(`performance-test on ${machineLine(machine)}: ${C} WebSocket vs ${C} HTTP clients, ${nTicks} price changes at ${rate}/s`)
  const dir = mkdtempSync(join(tmpdir(), 'lnm-perf-'))
  const accounts = makeSimAccounts(1, 'perf')
  const sim = await startSim(dir, accounts)
  const driver = new PriceDriver(`http://127.0.0.1:${sim.port}`)
  let gw: Gateway | null = null
  let lg: LoadGen | null = null
  const pool = { p: null as Pool | null }
  const result: Record<string, any> = {
    kind: 'lnm-gateway performance-test',
    startedAt: started.toISOString(),
    machine,
    settings: { connections: C, ticks: nTicks, rate, pollMs },
  }
  try {
    gw = await startGateway({ apiUrl: sim.url, streamUrl: sim.streamUrl, env: { POLL_INTERVAL_MS: '5000', TICKER_INTERVAL_MS: '600000' } })
    const user = (await provisionUsers(gw.origin, accounts, 1))[0]!
    lg = await LoadGen.start(1, false)
    const conn = await lg.connect({
      kind: 'gateway',
      url: gw.wsUrl,
      count: C,
      tokens: [user.token],
      authVia: 'message',
      concurrency: 20,
      reset: true,
    })
    log(`${conn.connected} WebSocket dashboards connected`)
    pool.p = new Pool(gw.origin, { connections: C, pipelining: 1 })
    const headers = { authorization: `Bearer ${user.token}` }
    const rtt = new Samples()
    const staleness = new Samples()
    const get = async (): Promise<{ seq: number; sourceTs: number }> => {
      const t0 = nowMs()
      const r = await pool.p!.request({ method: 'GET', path: '/api/dashboard', headers })
      const body = (await r.body.json()) as { meta?: { channels?: { ticker?: { seq: number; sourceTs: number } } } }
      const t1 = nowMs()
      rtt.add(t1 - t0)
      const m = body.meta?.channels?.ticker
      return { seq: m?.seq ?? -1, sourceTs: m?.sourceTs ?? 0 }
    }
    // warm both paths
    for (let i = 0; i < C; i++) await get()
    rtt.clear()
    const durationMs = (nTicks / rate) * 1000
    await lg.measure()
    let running = true
    const pollers = Array.from({ length: C }, async (_, i) => {
      let lastSeq = -1
      await sleep((pollMs / C) * i) // spread the polls over the period, as independent browsers would be
      while (running) {
        const t = nowMs()
        try {
          const s = await get()
          if (lastSeq >= 0 && s.seq > lastSeq && s.sourceTs > 0) staleness.add(nowMs() - s.sourceTs)
          lastSeq = s.seq
        } catch {
          /* counted by its absence */
        }
        const wait = pollMs - (nowMs() - t)
        if (wait > 0) await sleep(wait)
      }
    })
    const d = await driver.run(rate, durationMs)
    await sleep(Math.max(500, pollMs))
    running = false
    await Promise.all(pollers)
    const ws = await lg.pause()
    const httpRtt = summarize([rtt.values()], rtt.max, rtt.count)
    const httpStale = summarize([staleness.values()], staleness.max, staleness.count)
    const s = (x: Summary) => ({ n: x.n, mean: round(x.mean, 2), p50: round(x.p50, 2), p99: round(x.p99, 2), max: round(x.max, 2) })
    Object.assign(result, {
      ticks: d,
      websocket: {
        connections: conn.connected,
        frames: ws.dataFrames.ticker ?? 0,
        gaps: ws.gaps,
        pushLatency: s(ws.latencySource),
        sendToClient: s(ws.latency),
      },
      http: { clients: C, requests: rtt.count, roundTrip: s(httpRtt), pollingStaleness: s(httpStale) },
    })
    const rows = [
      ['figure (ms)', 'mean', 'p50', 'p99', 'max', 'n'],
      [
        `WebSocket push: price change → client (${C} sockets)`,
        fmt(ws.latencySource.mean, 2),
        fmt(ws.latencySource.p50, 2),
        fmt(ws.latencySource.p99, 2),
        fmt(ws.latencySource.max, 2),
        String(ws.latencySource.n),
      ],
      [
        'HTTP GET /api/dashboard round trip',
        fmt(httpRtt.mean, 2),
        fmt(httpRtt.p50, 2),
        fmt(httpRtt.p99, 2),
        fmt(httpRtt.max, 2),
        String(httpRtt.n),
      ],
      [
        `HTTP polling every ${pollMs} ms: price change → client`,
        fmt(httpStale.mean, 2),
        fmt(httpStale.p50, 2),
        fmt(httpStale.p99, 2),
        fmt(httpStale.max, 2),
        String(httpStale.n),
      ],
    ]
    result.table = rows
    process.stdout.write(
      `\nlnm-gateway performance-test — ${machineLine(machine)}\n\n${table(rows)}\n\n` +
        `mean WebSocket push latency: ${fmt(ws.latencySource.mean, 2)} ms; polling every ${pollMs} ms shows a change ${fmt(httpStale.mean / ws.latencySource.mean, 1)}× later on average; ` +
        `one HTTP round trip alone takes ${fmt(httpRtt.mean / ws.latencySource.mean, 2)}× the push latency.\n`,
    )
  } finally {
    driver.stop()
    await driver.close().catch(() => {})
    await pool.p?.close().catch(() => {})
    if (lg) {
      await lg.closeAll(5000).catch(() => {})
      await lg.stop()
    }
    if (gw) await gw.stop()
    await stopChild(sim.proc)
    rmSync(dir, { recursive: true, force: true })
  }
  result.finishedAt = new Date().toISOString()
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
  const out = args.get('out') ?? join(ROOT, 'bench/results', `performance-${started.toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(out, JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n')
  process.stdout.write(`written: ${out}\n`)
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`performance-test failed: ${e.stack ?? e.message}\n`)
    process.exit(1)
  },
)
