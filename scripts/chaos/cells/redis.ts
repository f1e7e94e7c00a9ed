/**
 * Cell 5: two gateway nodes on one PostgreSQL database and the suite's own redis-server; every account has
 * dashboards on both nodes. Redis is killed (longer than a lease, so each node falls back to polling its own
 * accounts), started again, then one node is killed (SIGKILL) and its dashboards fail over to the other.
 * Nothing lost means: within two lease periods (2 × 5 s) of Redis coming back, and again of the node's
 * death, each account is polled by exactly one node (the nodes' active-poller gauges sum to the number of
 * accounts and every account is being produced: its key requested at the exchange, or — REST only reconciles
 * every 30 s while its private stream is up — data newer than the event reaching one of its dashboards); no dashboard sees a seq regression (a frame the
 * dashboard would refuse as older than what it shows) or a duplicate frame; nothing stale is shown.
 */
import { makeSimAccounts } from '../../lib/servers.ts'
import { sourceAddresses } from '../../lib/net.ts'
import { promValue } from '../../lib/gateway.ts'
import { fmt } from '../../lib/stats.ts'
import { Checks, GatewayProc, log, peakRates, RedisServer, sleep, startChaosSim, waitFor, type CellResult } from '../lib.ts'
import { Observer, sumStats } from '../observer.ts'
import { makeUser, runId, withPosition, type Ctx, type User } from '../context.ts'

const LEASE_MS = 5000 // backend/streaming/redis-bus.ts default lease TTL
const POLL_MS = 2000
const STALE_MS = 30_000

async function pollers(gw: GatewayProc): Promise<number> {
  if (!gw.alive) return 0
  try {
    const r = await fetch(`${gw.origin}/metrics`, { signal: AbortSignal.timeout(3000) })
    const v = promValue(await r.text(), 'lnm_gateway_active_pollers')
    return Number.isFinite(v) ? v : NaN
  } catch {
    return NaN
  }
}

export async function redisCluster(ctx: Ctx): Promise<Omit<CellResult, 'id' | 'name' | 'seconds'>> {
  const checks = new Checks()
  const A = ctx.short ? 4 : 6
  const redisDownS = ctx.short ? 8 : 12
  const accounts = withPosition(makeSimAccounts(A, 'chaosr'))
  const sim = await startChaosSim(ctx.dir, accounts)
  const pg = await ctx.pg()
  const dbUrl = pg.createDb(`chaos_redis_${runId}`)
  const redis = await RedisServer.create()
  const env = {
    DATABASE_URL: dbUrl,
    REDIS_URL: `${redis.url}?prefix=chaos${runId}`,
    POLL_INTERVAL_MS: String(POLL_MS),
    STALE_AFTER_MS: String(STALE_MS),
  }
  const a = await GatewayProc.create({ apiUrl: sim.url, streamUrl: sim.streamUrl, env })
  const b = await a.sibling()
  const observers: Observer[] = []
  try {
    await a.start()
    await b.start()
    const addrs = sourceAddresses(A, 150)
    const users: User[] = []
    for (let i = 0; i < A; i++) users.push(await makeUser(a.origin, `cr${runId}u${i}`, accounts[i], addrs[i]))
    /** the observers of each account (index as `accounts`) */
    const byAccount: Observer[][] = accounts.map(() => [])
    for (const [i, u] of users.entries())
      for (const [first, second] of [
        [a, b],
        [b, a],
      ] as const)
        for (let k = 0; k < 2; k++) {
          const o = new Observer({
            urls: [first.wsUrl, second.wsUrl],
            token: u.token,
            label: `${u.username}@${first === a ? 'A' : 'B'}#${k}`,
            staleAfterMs: STALE_MS,
            backoff: { baseMs: 200, capMs: 2000 },
          })
          observers.push(o)
          byAccount[i]!.push(o)
          o.start()
        }
    if ((await waitFor(() => observers.every((o) => o.ready && o.newestTs.has('positions')), 30_000)) === null)
      throw new Error('observers got no positions snapshot within 30 s')
    const phase = (name: string) => {
      for (const o of observers) o.phase = name
    }
    phase('steady')
    const sum = async () => (await pollers(a)) + (await pollers(b))
    // the parts of "each account polled by exactly one node", each with the first moment it held (for the figures)
    const parts = { onePoller: null as number | null, everyKeyPolled: null as number | null, everyDashboardFresh: null as number | null }
    // Exactly one poller per account = the gauges sum to A and every account is being produced (then none can
    // have two). Produced since `since`: its key was requested at the exchange, or — while its private stream
    // is up, REST only reconciles every PUSH_RECONCILE_MS (30 s) — a dashboard of it received data or a
    // `fresh` from after `since` (nothing else makes either)
    const exactlyOne = async (since: number) => {
      const one = (await sum()) === A
      const r = await sim.rates(since)
      const requested = accounts.map((acc) => (r.perKey[acc.key]?.total ?? 0) > 0)
      const pushed = byAccount.map((os) =>
        os.some((o) => Math.max(o.newestTs.get('positions') ?? 0, o.newestTs.get('account') ?? 0) >= since),
      )
      const at = Date.now() - since
      if (one && parts.onePoller === null) parts.onePoller = at
      if (requested.every(Boolean) && parts.everyKeyPolled === null) parts.everyKeyPolled = at
      if (pushed.every(Boolean) && parts.everyDashboardFresh === null) parts.everyDashboardFresh = at
      return one && accounts.every((_, i) => requested[i] || pushed[i])
    }
    const steadyMs = await waitFor(async () => exactlyOne(Date.now() - 2 * POLL_MS), 30_000, 500)
    const steadySplit = [await pollers(a), await pollers(b)]
    log(`cell 5: steady (${steadySplit.join(' + ')} pollers for ${A} accounts); killing Redis for ${redisDownS} s`)

    phase('redis down')
    await redis.kill()
    let maxDuring = 0
    const downUntil = Date.now() + redisDownS * 1000
    while (Date.now() < downUntil) {
      maxDuring = Math.max(maxDuring, (await sum()) || 0)
      await sleep(1000)
    }
    await redis.start()
    phase('redis back')
    const tBack = Date.now()
    Object.assign(parts, { onePoller: null, everyKeyPolled: null, everyDashboardFresh: null })
    const afterRedisMs = await waitFor(async () => exactlyOne(tBack), 4 * LEASE_MS, 250)
    const afterRedisParts = { ...parts }
    Object.assign(parts, { onePoller: null, everyKeyPolled: null, everyDashboardFresh: null })
    // and it stays so
    let unstable = 0
    for (let i = 0; i < 8; i++) {
      if ((await sum()) !== A) unstable++
      await sleep(500)
    }
    log(
      `cell 5: Redis back: exactly one poller per account after ${afterRedisMs ?? '> ' + 4 * LEASE_MS} ms (${JSON.stringify(afterRedisParts)}); killing node A`,
    )

    phase('node killed')
    const tKill = Date.now()
    const killed = await a.signal('SIGKILL', 10_000)
    Object.assign(parts, { onePoller: null, everyKeyPolled: null, everyDashboardFresh: null })
    const takeoverMs = await waitFor(async () => (await pollers(b)) === A && (await exactlyOne(tKill + 1000)), 4 * LEASE_MS, 250)
    const afterKillParts = { ...parts }
    const failedOver = await waitFor(() => observers.every((o) => o.ready && o.url === b.wsUrl), 30_000, 250)
    const failoverMs = failedOver === null ? null : Date.now() - tKill
    await sleep(2 * POLL_MS + 1000)
    const obs = sumStats(observers)
    const all = await sim.rates(0)
    const peak = peakRates(all)
    const figures = {
      accounts: A,
      observers: observers.length,
      leaseMs: LEASE_MS,
      pollIntervalMs: POLL_MS,
      steadyMs,
      steadySplit,
      redisDownS,
      pollerSumDuringRedisOutage: maxDuring,
      exactlyOneAfterRedisBackMs: afterRedisMs,
      afterRedisParts,
      unstableSamplesAfter: unstable,
      nodeKilled: killed,
      exactlyOneAfterNodeKillMs: takeoverMs,
      afterKillParts,
      dashboardsFailedOverMs: failoverMs,
      observerStats: obs,
      upstreamByStatus: all.byStatus,
      peakPerKeyPerSec: peak.privateMaxPerSec,
      peakPublicPerSec: peak.publicMaxPerSec,
    }
    const limit = 2 * LEASE_MS
    checks.ok(
      afterRedisMs !== null && afterRedisMs <= limit && unstable === 0,
      'one poller per account within two leases after Redis returns',
      `${afterRedisMs === null ? `> ${4 * LEASE_MS}` : afterRedisMs} ms (limit ${limit}); ${maxDuring} pollers for ${A} accounts while Redis was down; ${unstable}/8 later samples off`,
    )
    checks.ok(
      takeoverMs !== null && takeoverMs <= limit,
      'one poller per account within two leases after a node dies',
      `${takeoverMs === null ? `> ${4 * LEASE_MS}` : takeoverMs} ms (limit ${limit})`,
    )
    checks.ok(
      failoverMs !== null,
      'every dashboard reconnected',
      failoverMs === null ? 'not within 30 s' : `${failoverMs} ms after the node died`,
    )
    checks.ok(
      obs.regressions === 0 && obs.duplicates === 0,
      'no seq regression, no duplicate frame',
      `${obs.regressions} regressions, ${obs.duplicates} duplicates over ${obs.dataUpdates} data_updates; by phase ${JSON.stringify(obs.byPhase)}${obs.examples.length ? `; e.g. ${obs.examples.slice(0, 2).join('; ')}` : ''}`,
    )
    checks.ok(obs.staleShown === 0, 'nothing stale shown as fresh', `${obs.staleShown} stale data_updates, oldest ${obs.maxAgeMs} ms`)
    const summary = `Redis down ${redisDownS} s (${maxDuring} pollers/${A}) → one each after ${afterRedisMs === null ? 'NO' : `${fmt(afterRedisMs / 1000, 1)} s`}; node killed → ${takeoverMs === null ? 'NO' : `${fmt(takeoverMs / 1000, 1)} s`}; ${obs.regressions} regressions, ${obs.duplicates} dupes in ${obs.dataUpdates} frames`
    return { held: checks.held, summary, checks: checks.list, figures }
  } finally {
    for (const o of observers) o.stop()
    await Promise.all([a.stop(), b.stop()])
    await redis.kill()
    a.removeData()
    await sim.stop()
  }
}
