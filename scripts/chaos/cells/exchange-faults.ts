/**
 * Cell 1: exchange faults under N connected dashboards. The simulator (documented limits: 5 signed/s per key,
 * 1 public/s) goes through timeouts, 503 and 502 storms, a 429 storm, garbage and truncated bodies, connection
 * resets, clock skew of +60 s and −60 s, the private streams dropped every 3 s, then an outage, each followed
 * by a healthy gap.
 * Nothing lost means: no data_update older than STALE_AFTER_MS reaches any dashboard (bulk load generators
 * and observers), never more requests at the exchange than its limits (counted there, per key, in any
 * sliding second), every dashboard still connected, every account fresh within one poll period after the
 * exchange returns from the outage. While the private streams drop: REST takes over (no account unpolled for
 * more than two poll periods, where a healthy stream leaves REST at PUSH_RECONCILE_MS), the dashboards' data
 * never gets older than STALE_AFTER_MS, and the reconnects never hit a stream limit (the simulator enforces
 * 500 new connections per IP per hour and 20 authenticate per IP per minute: no refusal).
 */
import { LoadGen } from '../../lib/loadgen.ts'
import { sourceAddresses } from '../../lib/net.ts'
import { makeSimAccounts } from '../../lib/servers.ts'
import { provisionUsers } from '../../lib/gateway.ts'
import { fmt } from '../../lib/stats.ts'
import { Checks, GatewayProc, log, peakRates, sleep, startChaosSim, waitFor, type CellResult } from '../lib.ts'
import { Observer, sumStats } from '../observer.ts'
import { withPosition, type Ctx } from '../context.ts'

const POLL_MS = 5000
const STALE_MS = 30_000
const DROP_EVERY_MS = 3000
/** REST requests that poll an account's account and positions channels (as the chaos simulator logs them) */
const POLL_PATHS = ['GET /v3/account', 'GET /v3/futures/isolated/trades/running']

export async function exchangeFaults(ctx: Ctx): Promise<Omit<CellResult, 'id' | 'name' | 'seconds'>> {
  const checks = new Checks()
  const N = ctx.dashboards
  const A = ctx.short ? 5 : 20
  const accounts = withPosition(makeSimAccounts(A, 'chaosx'))
  const sim = await startChaosSim(ctx.dir, accounts)
  const gw = await GatewayProc.create({
    apiUrl: sim.url,
    streamUrl: sim.streamUrl,
    env: { POLL_INTERVAL_MS: String(POLL_MS), STALE_AFTER_MS: String(STALE_MS), TICKER_INTERVAL_MS: '2000' },
  })
  const observers: Observer[] = []
  let lg: LoadGen | null = null
  const figures: Record<string, unknown> = { dashboards: N, accounts: A, pollIntervalMs: POLL_MS, staleAfterMs: STALE_MS }
  try {
    await gw.start()
    const users = await provisionUsers(gw.origin, accounts, 4)
    for (const u of users) {
      const o = new Observer({ urls: [gw.wsUrl], token: u.token, label: u.username, staleAfterMs: STALE_MS })
      observers.push(o)
      o.start()
    }
    if ((await waitFor(() => observers.every((o) => o.ready && o.newestTs.has('positions')), 30_000)) === null)
      throw new Error('observers did not get their first positions snapshot within 30 s')
    lg = await LoadGen.start(N > 1000 ? 2 : 1, false)
    const conn = await lg.connect({
      kind: 'gateway',
      url: gw.wsUrl,
      count: N,
      tokens: users.map((u) => u.token),
      localAddresses: sourceAddresses(Math.max(2, Math.ceil(N / 5000))),
      ratePerSec: 500,
      concurrency: 64,
      timeoutMs: 30_000,
      rpcTimeoutMs: 300_000,
      retries: 3,
      reset: true,
    })
    figures.connected = conn.connected
    log(`cell 1: ${conn.connected}/${N} dashboards + ${observers.length} observers connected`)
    await lg.measure()
    const t0 = Date.now()

    const f = ctx.faultS
    const phases: Array<{ name: string; faults: Record<string, unknown>; s: number }> = [
      { name: 'baseline', faults: {}, s: Math.min(10, f) },
      { name: 'timeouts 30 %', faults: { timeoutRate: 0.3 }, s: f },
      { name: '503 storm 60 %', faults: { errorRate: 0.6, errorStatus: 503 }, s: f },
      { name: '502 storm (HTML) 60 %', faults: { errorRate: 0.6, errorStatus: 502 }, s: f },
      { name: '429 storm', faults: { rateLimitStorm: true }, s: f },
      { name: 'garbage 30 % + truncated 20 %', faults: { malformedRate: 0.3, truncatedRate: 0.2 }, s: f },
      { name: 'connection resets 30 %', faults: { dropRate: 0.3 }, s: f },
      { name: 'clock skew +60 s', faults: { clockSkewMs: 60_000 }, s: f },
      { name: 'clock skew −60 s', faults: { clockSkewMs: -60_000 }, s: f },
      {
        name: `private stream drops every ${DROP_EVERY_MS / 1000} s`,
        faults: { privateStreamDropMs: DROP_EVERY_MS },
        s: ctx.short ? 20 : 40,
      },
      { name: `outage ${ctx.outageS} s`, faults: { outage: true }, s: ctx.outageS },
    ]
    // the CI subset keeps one fault of each family
    if (ctx.short)
      for (const name of ['timeouts 30 %', '502 storm (HTML) 60 %', 'connection resets 30 %', 'clock skew −60 s'])
        phases.splice(
          phases.findIndex((p) => p.name === name),
          1,
        )
    const perPhase: Array<Record<string, unknown>> = []
    let outageRecoveryMs: number | null = null
    type DropFigures = Record<
      | 'seconds'
      | 'privateDrops'
      | 'connections'
      | 'authenticate'
      | 'refusedConnections'
      | 'refusedAuthenticate'
      | 'refusedSockets'
      | 'maxRestGapMs'
      | 'unpolledAccounts'
      | 'maxDataAgeMs',
      number
    >
    let drops: DropFigures | null = null
    for (const ph of phases) {
      const ps = Date.now()
      await sim.reset()
      const isDrops = 'privateStreamDropMs' in ph.faults
      const ss0 = isDrops ? await sim.streamStats() : null
      if (Object.keys(ph.faults).length) await sim.faults(ph.faults)
      log(`cell 1: ${ph.name} for ${ph.s} s`)
      if (isDrops) {
        // the oldest account data any observer holds, sampled through the phase
        let maxAgeMs = 0
        const end = ps + ph.s * 1000
        while (Date.now() < end) {
          const now = Date.now()
          for (const o of observers)
            maxAgeMs = Math.max(maxAgeMs, now - Math.max(o.newestTs.get('account') ?? 0, o.newestTs.get('positions') ?? 0))
          await sleep(250)
        }
        const pe = Date.now()
        const ss1 = await sim.streamStats()
        // from the first drop on, REST must poll every account at its poll period
        const g = await sim.gaps(POLL_PATHS, ps + DROP_EVERY_MS, pe)
        const unpolled = accounts.filter((a) => g.maxGapMs[a.key] === undefined).length
        drops = {
          seconds: ph.s,
          privateDrops: ss1.privateDrops - ss0!.privateDrops,
          connections: ss1.connections - ss0!.connections,
          authenticate: ss1.authenticate - ss0!.authenticate,
          refusedConnections: ss1.refusedConnections - ss0!.refusedConnections,
          refusedAuthenticate: ss1.refusedAuthenticate - ss0!.refusedAuthenticate,
          refusedSockets: ss1.refusedSockets - ss0!.refusedSockets,
          maxRestGapMs: unpolled ? Infinity : Math.max(0, ...Object.values(g.maxGapMs)),
          unpolledAccounts: unpolled,
          maxDataAgeMs: maxAgeMs,
        }
        log(`cell 1: ${ph.name}: ${JSON.stringify(drops)}`)
      } else await sleep(ph.s * 1000)
      await sim.reset()
      // the exchange is back: every account must show data newer than this moment
      const back = Date.now()
      const recovered = () => observers.every((o) => (o.newestTs.get('account') ?? 0) >= back || (o.newestTs.get('positions') ?? 0) >= back)
      const isOutage = ph.name.startsWith('outage')
      const rec = await waitFor(recovered, isOutage ? 60_000 : 20_000, 100)
      const r = await sim.rates(ps, Date.now())
      const peak = peakRates(r)
      perPhase.push({
        phase: ph.name,
        seconds: ph.s,
        recoveryMs: rec,
        upstreamRequests: r.total,
        byStatus: r.byStatus,
        maxPerKeyPerSec: peak.privateMaxPerSec,
        publicMaxPerSec: peak.publicMaxPerSec,
      })
      log(
        `cell 1: ${ph.name}: recovered in ${rec === null ? `> ${isOutage ? 60 : 20} s` : `${rec} ms`}; ${r.total} upstream requests ${JSON.stringify(r.byStatus)}, peak ${peak.privateMaxPerSec}/s per key, ${peak.publicMaxPerSec}/s public`,
      )
      if (isOutage) outageRecoveryMs = rec
      else if (ph.name !== 'baseline' && !ctx.short) await sleep(3000) // a healthy gap before the next fault
    }
    await sleep(ctx.short ? 2000 : 5000)
    const agg = await lg.pause()
    const obs = sumStats(observers)
    const all = await sim.rates(t0, Date.now())
    const peak = peakRates(all)
    Object.assign(figures, {
      phases: perPhase,
      upstream: {
        total: all.total,
        byStatus: all.byStatus,
        byPath: all.byPath,
        maxPerKeyPerSec: peak.privateMaxPerSec,
        publicMaxPerSec: peak.publicMaxPerSec,
      },
      dashboards: {
        open: agg.open,
        dataFrames: agg.dataFrames,
        statusFrames: agg.statusFrames,
        unexpectedCloses: agg.unexpectedCloses,
        closedByCode: agg.closedByCode,
        maxSourceAgeMs: agg.latencySource.max,
        p99SourceAgeMs: agg.latencySource.p99,
      },
      observers: obs,
      outageRecoveryMs,
      privateStreamDrops: drops,
    })
    checks.ok(
      obs.staleShown === 0 && !(agg.latencySource.max > STALE_MS),
      'nothing stale shown as fresh',
      `oldest data_update received ${fmt(Math.max(agg.latencySource.max || 0, obs.maxAgeMs), 0)} ms (limit ${STALE_MS}); observers saw ${obs.staleShown} stale`,
    )
    checks.ok(
      peak.privateMaxPerSec <= 5 && peak.publicMaxPerSec <= 1,
      'exchange limits respected',
      `peak ${peak.privateMaxPerSec} signed req/s per key (≤ 5), ${peak.publicMaxPerSec} public/s (≤ 1), ${all.total} requests`,
    )
    checks.ok(
      outageRecoveryMs !== null && outageRecoveryMs <= POLL_MS + 1000,
      'recovery within one poll period after the outage',
      `${outageRecoveryMs === null ? '> 60 000' : outageRecoveryMs} ms (limit ${POLL_MS} + 1 000 for the poll itself)`,
    )
    if (drops) {
      checks.ok(
        drops.maxRestGapMs <= 2 * POLL_MS + 1000,
        'private streams dropping: REST polls every account',
        `longest time an account went unpolled ${fmt(drops.maxRestGapMs, 0)} ms (limit ${2 * POLL_MS + 1000}); ${drops.privateDrops} private sockets dropped`,
      )
      // while a stream is up its data is vouched for by its liveness (a ping every STALE_AFTER_MS / 3), so the
      // bound is the stale limit, not the poll period
      checks.ok(
        drops.maxDataAgeMs < STALE_MS,
        'private streams dropping: data never goes stale',
        `oldest account data an observer held ${fmt(drops.maxDataAgeMs, 0)} ms (limit ${STALE_MS})`,
      )
      checks.ok(
        drops.refusedConnections === 0 && drops.refusedAuthenticate === 0 && drops.refusedSockets === 0,
        'private streams dropping: reconnects within the stream limits',
        `${drops.connections} new connections and ${drops.authenticate} authenticate in ${drops.seconds} s; refused by the limits: ${drops.refusedConnections} connections (500/h), ${drops.refusedAuthenticate} authenticate (20/min), ${drops.refusedSockets} sockets (32)`,
      )
    }
    checks.ok(
      agg.open === conn.connected && conn.connected === N && agg.unexpectedCloses === 0,
      'every dashboard stayed connected',
      `${agg.open}/${N} open, ${agg.unexpectedCloses} dropped`,
    )
    checks.ok(gw.alive, 'gateway alive', gw.alive ? 'yes' : `exited ${JSON.stringify(gw.exits)}`)
    const rejected = Object.entries(obs.statusReasons)
      .filter(([k]) => k.includes('credentials_rejected'))
      .reduce((a, [, v]) => a + v, 0)
    figures.credentialsRejectedStatuses = rejected
    const summary =
      `${N} dashboards; oldest frame ${fmt(Math.max(agg.latencySource.max || 0, obs.maxAgeMs) / 1000, 1)} s; peak ${peak.privateMaxPerSec}/s/key, ${peak.publicMaxPerSec}/s public; ` +
      `outage recovery ${outageRecoveryMs === null ? '> 60 s' : `${fmt(outageRecoveryMs / 1000, 1)} s`}; ${agg.open}/${N} open` +
      (rejected ? `; ${rejected} credentials_rejected statuses` : '')
    return { held: checks.held, summary, checks: checks.list, figures }
  } finally {
    for (const o of observers) o.stop()
    if (lg) await lg.stop()
    await gw.stop()
    gw.removeData()
    await sim.stop()
  }
}
