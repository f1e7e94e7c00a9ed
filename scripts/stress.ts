/**
 * npm run stress -- --connections N [--accounts A] [--duration S] [--rate T] [--ramp R] [--gateway-workers W]
 *                   [--clients C] [--redis-url URL] [--database-url URL] [--retries 5] [--out FILE]
 *
 * N authenticated dashboards (A accounts, N/A sockets each) ramp up at R connections/s while the simulator's
 * price ticks T times a second, hold for S seconds receiving updates, then close cleanly. Reports the
 * connection success rate, connect-time percentiles, frames received against frames expected, seq gaps,
 * latency percentiles, the gateway's RSS and CPU, and how the sockets and the gateway closed.
 * Writes bench/results/stress-<date>.json.
 *
 * Sizing on this kind of machine: a process may hold at most `ulimit -Hn` descriptors (20 000 here, and
 * CAP_SYS_RESOURCE is not available to raise it), so above ~19 500 sockets the gateway runs with `WORKERS=W`
 * (its own node:cluster mode: W processes behind one port, one poller per account for the machine through the
 * in-host bus) sharing one PostgreSQL database (a fresh database on the local server, dropped afterwards, unless
 * --database-url is given); with --redis-url the workers use that Redis bus instead. Client sockets are
 * spread over several load-generator processes and over 127.0.0.2… source addresses, so no process runs
 * out of descriptors and no address out of ephemeral ports.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRunDatabase, type RunDatabase } from './lib/pg-database.ts'
import { intArg, numArg, parseArgs } from './lib/args.ts'
import { describeMachine, machineLine } from './lib/machine.ts'
import { LoadGen } from './lib/loadgen.ts'
import { sourceAddresses } from './lib/net.ts'
import { fdLimits, procSampleAll, ROOT, rpc, sleep, stopChild, systemCpu, systemCpuPercent } from './lib/proc.ts'
import { makeSimAccounts, startSim } from './lib/servers.ts'
import { PriceDriver } from './lib/ticker.ts'
import { fmt, markdownTable, round, table, type Summary } from './lib/stats.ts'
import { metrics, promValue, provisionUsers, startGateway, type Gateway } from './lib/gateway.ts'

const args = parseArgs()
const N = intArg(args, 'connections', 1000, 1, 200_000)
const A = intArg(args, 'accounts', Math.min(500, Math.max(1, Math.ceil(N / 100))), 1, 5000)
const holdS = numArg(args, 'duration', 30, 1, 600)
const ticks = numArg(args, 'rate', 1, 0.1, 100)
const ramp = numArg(args, 'ramp', N >= 5000 ? 1000 : 500, 1, 100_000)
const fd = fdLimits()
const perProcess = Number.isFinite(fd.hard) ? Math.max(1000, fd.hard - 500) : 1_000_000
const gwWorkers = intArg(args, 'gateway-workers', Math.max(1, Math.ceil(N / perProcess)), 1, 16)
const clients = intArg(args, 'clients', Math.max(2, Math.ceil(N / 8000)), 1, 16)
/** a dashboard refused with 503/1013 (load shedding) retries with backoff; the first-attempt refusals are reported */
const retries = intArg(args, 'retries', 5, 0, 20)
const started = new Date()
const outFile = args.get('out') ?? join(ROOT, 'bench/results', `stress-${started.toISOString().replace(/[:.]/g, '-')}.json`)
const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`)

function createDatabase(): Promise<RunDatabase> {
  return createRunDatabase({
    given: args.get('database-url'),
    prefix: 'lnm_stress',
    why: `${N} connections need ${gwWorkers} gateway processes (fd limit ${fd.hard} per process), which share a PostgreSQL database`,
  })
}

async function main(): Promise<void> {
  const machine = describeMachine()
  log(`stress on ${machineLine(machine)}`)
  log(
    `${N} connections over ${A} accounts, ramp ${ramp}/s, hold ${holdS} s at ${ticks} ticks/s; gateway processes: ${gwWorkers}, load generators: ${clients} + 1 probe (fd limit ${fd.hard}/process)`,
  )
  if (N > clients * 19_000)
    throw new Error(`--clients ${clients} cannot hold ${N} sockets under the fd limit: use --clients ${Math.ceil(N / 19_000)}`)
  const dir = mkdtempSync(join(tmpdir(), 'lnm-stress-'))
  const accounts = makeSimAccounts(A, 'stress')
  const sim = await startSim(dir, accounts)
  const driver = new PriceDriver(`http://127.0.0.1:${sim.port}`)
  let gw: Gateway | null = null
  let db: RunDatabase | null = null
  let lg: LoadGen | null = null
  const result: Record<string, any> = {
    kind: 'lnm-gateway stress',
    startedAt: started.toISOString(),
    machine,
    settings: {
      connections: N,
      accounts: A,
      holdS,
      ticksPerSec: ticks,
      rampPerSec: ramp,
      gatewayProcesses: gwWorkers,
      loadGenerators: clients,
      probe: 1,
    },
  }
  const samples: Array<{ t: number; cpuPct: number; rssBytes: number; machineCpuPct: number }> = []
  let sampler: NodeJS.Timeout | null = null
  let stopRequested = false
  process.once('SIGINT', () => {
    stopRequested = true
  })
  try {
    const env: Record<string, string> = { POLL_INTERVAL_MS: '5000', TICKER_INTERVAL_MS: '600000', WS_HEARTBEAT_MS: '25000' }
    if (gwWorkers > 1) {
      db = await createDatabase()
      env.DATABASE_URL = db.url
      // WORKERS: the workers share polling and fan-out through the primary (in-host bus), or through Redis when asked
      const redis = args.get('redis-url')
      if (redis) env.REDIS_URL = redis
      result.settings.redis = redis
        ? redis.replace(/\/\/[^@]*@/, '//…@')
        : 'none (in-host bus: the cluster primary relays and grants one poller per account)'
      log(`gateway cluster bus: ${result.settings.redis}`)
    } else if (args.get('database-url')) env.DATABASE_URL = args.get('database-url') as string
    gw = await startGateway({ apiUrl: sim.url, streamUrl: sim.streamUrl, env, workers: gwWorkers, nodeArgs: ['--max-old-space-size=4096'] })
    log(`gateway up: pids ${gw.pids().join(', ')} on :${gw.port}`)
    const users = await provisionUsers(gw.origin, accounts, 6)
    log(`${users.length} users provisioned`)
    const tokens = users.map((u) => u.token)
    lg = await LoadGen.start(clients, true)
    const localAddresses = sourceAddresses(Math.max(4, Math.ceil(N / 5000)))

    const rssBeforeRamp = procSampleAll(gw.pids()).rssBytes
    let prev = procSampleAll(gw.pids())
    let prevSys = systemCpu()
    const baseline = prev
    sampler = setInterval(() => {
      if (!gw) return
      const s = procSampleAll(gw.pids())
      const sys = systemCpu()
      samples.push({
        t: round((s.t - baseline.t) / 1000, 1),
        cpuPct: round(((s.cpuS - prev.cpuS) / ((s.t - prev.t) / 1000)) * 100, 1),
        rssBytes: s.rssBytes,
        machineCpuPct: round(systemCpuPercent(prevSys, sys), 1),
      })
      prev = s
      prevSys = sys
    }, 1000)

    // ramp (the price already moving, as in real life)
    const driving = driver.run(ticks, (N / ramp + holdS + 120) * 1000)
    log(`ramping up ${N} dashboards at ${ramp}/s…`)
    const probeN = Math.min(200, Math.max(10, Math.round(N / 100)))
    const t0 = Date.now()
    const conn = await lg.connect(
      {
        kind: 'gateway',
        url: gw.wsUrl,
        count: N,
        tokens,
        authVia: 'message',
        localAddresses,
        ratePerSec: ramp,
        concurrency: 64,
        timeoutMs: 30_000,
        reset: true,
        retries,
      },
      probeN,
    )
    const rampS = (Date.now() - t0) / 1000
    const afterRamp = await lg.report()
    log(
      `ramp done: ${conn.connected}/${N} connected in ${rampS.toFixed(1)} s; connect p50 ${fmt(afterRamp.connect.p50, 1)} ms, p99 ${fmt(afterRamp.connect.p99, 1)} ms` +
        (Object.keys(afterRamp.failures).length ? `; failures ${JSON.stringify(afterRamp.failures)}` : '') +
        (Object.keys(afterRamp.retried).length ? `; first attempts refused then retried ${JSON.stringify(afterRamp.retried)}` : ''),
    )
    const m0 = await metrics(gw.origin).catch(() => '')
    result.gatewayOpenAfterRamp = promValue(m0, 'lnm_gateway_ws_connections_open')

    // hold
    await sleep(1500)
    await rpc(sim.proc, { op: 'reset' }, 10_000)
    const simT0 = Date.now()
    const openAtHold = await lg.measure()
    const ha = procSampleAll(gw.pids())
    const sysA = systemCpu()
    log(`holding ${holdS} s with ${openAtHold} open…`)
    const holdEnd = Date.now() + holdS * 1000
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by the SIGINT handler
    while (Date.now() < holdEnd && !stopRequested) await sleep(Math.min(1000, holdEnd - Date.now()))
    const hb = procSampleAll(gw.pids())
    const sysB = systemCpu()
    const held = await lg.pause()
    const upstream = await rpc(sim.proc, { op: 'requests' }, 10_000)
    const upstreamPerMin = (upstream.total as number) / ((Date.now() - simT0) / 60_000)
    driver.stop()
    const drive = await driving
    const holdWall = (hb.t - ha.t) / 1000
    const tickerFrames = held.dataFrames.ticker ?? 0
    const expected = Math.round(ticks * holdWall) * held.open
    log(
      `hold: ${held.open} still open, ${tickerFrames.toLocaleString('en-US')} ticker frames (≈${expected.toLocaleString('en-US')} expected), gaps ${held.gaps}, ` +
        `latency p50 ${fmt(held.latencySource.p50, 2)} / p99 ${fmt(held.latencySource.p99, 2)} ms`,
    )

    // close cleanly: clients first (1000), then the gateway (SIGTERM, 1001 drain)
    const c0 = Date.now()
    const closed = await lg.closeAll(15_000)
    const clientCloseMs = Date.now() - c0
    await sleep(500)
    const m1 = await metrics(gw.origin).catch(() => '')
    const openAfterClose = promValue(m1, 'lnm_gateway_ws_connections_open')
    const peakRss = Math.max(...samples.map((s) => s.rssBytes))
    const gwStop0 = Date.now()
    const gwProc = gw.proc
    const exitCode = new Promise<number | null>((r) => gwProc.once('exit', (c) => r(c)))
    await gw.stop()
    const gwExit = await exitCode
    const gatewayStopMs = Date.now() - gwStop0
    gw = null

    const lat = (s: Summary | null) =>
      s
        ? {
            n: s.n,
            p50: round(s.p50, 2),
            p90: round(s.p90, 2),
            p99: round(s.p99, 2),
            p999: round(s.p999, 2),
            max: round(s.max, 2),
            mean: round(s.mean, 2),
          }
        : null
    Object.assign(result, {
      connections: {
        requested: N,
        connected: conn.connected,
        successRate: conn.connected / N,
        rampSeconds: round(rampS, 1),
        failures: afterRamp.failures,
        firstAttemptRefusals: afterRamp.retried,
        connectedAfterRetry: afterRamp.connectedAfterRetry,
        firstAttemptSuccessRate: (conn.connected - afterRamp.connectedAfterRetry) / N,
        retriesAllowed: retries,
        connectMs: lat(afterRamp.connect),
      },
      hold: {
        seconds: round(holdWall, 1),
        openAtStart: openAtHold,
        openAtEnd: held.open,
        ticksSent: drive.sent,
        ticksSkipped: drive.skipped,
        tickerFrames,
        accountFrames: held.dataFrames.account ?? 0,
        positionsFrames: held.dataFrames.positions ?? 0,
        expectedTickerFrames: expected,
        framesPerSec: round(tickerFrames / holdWall, 0),
        gaps: held.gaps,
        gapEvents: held.gapEvents,
        duplicates: held.dupes,
        statusFrames: held.statusFrames,
        errorFrames: held.errorFrames,
        unexpectedCloses: held.unexpectedCloses,
        closedByCode: held.closedByCode,
        latencySourceToClient: lat(held.latencySource),
        latencySendToClient: lat(held.latency),
        probeLatencySourceToClient: lat(held.probeLatencySource),
        probeLatencySendToClient: lat(held.probeLatency),
        upstreamRequestsPerMinute: round(upstreamPerMin, 1),
        upstreamByPath: upstream.byPath,
      },
      gateway: {
        processes: gwWorkers,
        cpuPercentDuringHold: round(((hb.cpuS - ha.cpuS) / holdWall) * 100, 1),
        machineCpuPercentDuringHold: round(systemCpuPercent(sysA, sysB), 1),
        rssBeforeRampBytes: rssBeforeRamp,
        rssDuringHoldBytes: hb.rssBytes,
        peakRssBytes: peakRss,
        rssPerConnectionBytes: round((hb.rssBytes - rssBeforeRamp) / Math.max(1, held.open), 0),
        openAfterClientsClosed: openAfterClose,
        stopMs: gatewayStopMs,
        exitCode: gwExit,
      },
      close: { ...closed, clientCloseMs },
      samples,
    })
  } finally {
    if (sampler) clearInterval(sampler)
    driver.stop()
    await driver.close().catch(() => {})
    if (lg) await lg.stop()
    if (gw) {
      result.gatewayOutputTail = gw.output().slice(-3000)
      await gw.stop()
    }
    await stopChild(sim.proc)
    if (db) await db.drop()
    rmSync(dir, { recursive: true, force: true })
  }
  result.finishedAt = new Date().toISOString()
  result.loadAvgAtEnd = (await import('node:os')).loadavg().map((x) => round(x, 2))
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
  writeFileSync(outFile, JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n')

  const c = result.connections
  const h = result.hold
  const g = result.gateway
  const L = h.probeLatencySourceToClient ?? h.latencySourceToClient
  const rows = [
    ['figure', 'value'],
    ['connections requested', String(N)],
    ['connected (success rate)', `${c.connected} (${(c.successRate * 100).toFixed(2)} %)`],
    ['connected at the first attempt', `${c.connected - c.connectedAfterRetry} (${(c.firstAttemptSuccessRate * 100).toFixed(2)} %)`],
    ['ramp', `${c.rampSeconds} s at ${ramp}/s`],
    [
      'connect time p50 / p90 / p99 / max ms',
      `${fmt(c.connectMs.p50, 1)} / ${fmt(c.connectMs.p90, 1)} / ${fmt(c.connectMs.p99, 1)} / ${fmt(c.connectMs.max, 1)}`,
    ],
    ['failures', Object.keys(c.failures).length ? JSON.stringify(c.failures) : 'none'],
    ['first attempts refused, then retried', Object.keys(c.firstAttemptRefusals).length ? JSON.stringify(c.firstAttemptRefusals) : 'none'],
    ['open at hold start / end', `${h.openAtStart} / ${h.openAtEnd}`],
    [
      'ticker frames received (expected ≈)',
      `${h.tickerFrames.toLocaleString('en-US')} (${h.expectedTickerFrames.toLocaleString('en-US')})`,
    ],
    ['frames/s during hold', fmt(h.framesPerSec, 0)],
    ['seq gaps (events) / duplicates', `${h.gaps} (${h.gapEvents}) / ${h.duplicates}`],
    ['latency source→client p50 / p99 / max ms (probe sockets)', L ? `${fmt(L.p50, 2)} / ${fmt(L.p99, 2)} / ${fmt(L.max, 2)}` : '–'],
    [
      'latency source→client p50 / p99 / max ms (all sockets)',
      `${fmt(h.latencySourceToClient?.p50, 2)} / ${fmt(h.latencySourceToClient?.p99, 2)} / ${fmt(h.latencySourceToClient?.max, 2)}`,
    ],
    ['unexpected closes during hold', String(h.unexpectedCloses)],
    ['gateway processes', String(g.processes)],
    ['gateway CPU during hold (% of one core)', fmt(g.cpuPercentDuringHold, 1)],
    ['machine CPU during hold (% of all cores)', fmt(g.machineCpuPercentDuringHold, 1)],
    [
      'gateway RSS before ramp / during hold / peak MiB',
      `${fmt(g.rssBeforeRampBytes / 2 ** 20, 1)} / ${fmt(g.rssDuringHoldBytes / 2 ** 20, 1)} / ${fmt(g.peakRssBytes / 2 ** 20, 1)}`,
    ],
    ['gateway RSS growth per open connection KiB (receiving)', fmt(g.rssPerConnectionBytes / 1024, 2)],
    ['upstream requests/min during hold', fmt(h.upstreamRequestsPerMinute, 1)],
    ['client close: clean / attempted', `${result.close.cleanCloses} / ${result.close.closed} in ${result.close.clientCloseMs} ms`],
    ['gateway open sockets after clients closed', String(g.openAfterClientsClosed)],
    ['gateway stop (SIGTERM → exit)', `${g.stopMs} ms, exit code ${g.exitCode}`],
  ]
  process.stdout.write(
    `\nlnm-gateway stress — ${machineLine(machine)}\n${started.toISOString()}\n\n${table(rows)}\n\n` +
      (args.get('markdown') !== undefined ? `${markdownTable(rows)}\n\n` : '') +
      `written: ${outFile}\n`,
  )
  result.table = rows
  writeFileSync(outFile, JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n')
  const ok = c.successRate === 1 && h.openAtEnd === c.connected
  process.exitCode = ok ? 0 : 2
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (e: Error) => {
    process.stderr.write(`stress failed: ${e.stack ?? e.message}\n`)
    process.exit(1)
  },
)
