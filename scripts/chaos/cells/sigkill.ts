/**
 * Cell 3: SIGKILL of a gateway holding N dashboards, restarted at once (same port, secrets and PostgreSQL
 * database); the dashboards reconnect with the dashboard's own backoff (full jitter over 500 ms·2^n, capped
 * at 30 s). Nothing lost means: every dashboard back within 60 s of the kill; every refusal meanwhile is
 * load shedding (503 / 1013) or the port being closed, never a crash or another error; upstream requests
 * after the restart no more than before (1.25× for poll jitter, plus one full fetch per account) and within the
 * exchange's limits.
 */
import { LoadGen } from '../../lib/loadgen.ts'
import { sourceAddresses } from '../../lib/net.ts'
import { makeSimAccounts } from '../../lib/servers.ts'
import { provisionUsers } from '../../lib/gateway.ts'
import { fmt } from '../../lib/stats.ts'
import { Checks, GatewayProc, log, peakRates, sleep, startChaosSim, waitFor, type CellResult } from '../lib.ts'
import { runId, type Ctx } from '../context.ts'

const SHED = /^(HTTP 503|closed 1013)/
const DOWN = /^(error: (ECONNREFUSED|ECONNRESET|EPIPE)|closed 1006)/

export async function sigkillRestart(ctx: Ctx): Promise<Omit<CellResult, 'id' | 'name' | 'seconds'>> {
  const checks = new Checks()
  const N = ctx.sigkillSockets
  const A = Math.min(20, Math.max(2, Math.ceil(N / 500)))
  const windowS = ctx.short ? 10 : 15
  const accounts = makeSimAccounts(A, 'chaosk')
  const sim = await startChaosSim(ctx.dir, accounts)
  const pg = await ctx.pg()
  const dbUrl = pg.createDb(`chaos_kill_${runId}`)
  const gw = await GatewayProc.create({
    apiUrl: sim.url,
    streamUrl: sim.streamUrl,
    env: { DATABASE_URL: dbUrl, POLL_INTERVAL_MS: '5000' },
    nodeArgs: ['--max-old-space-size=4096'],
  })
  let lg: LoadGen | null = null
  try {
    await gw.start()
    const users = await provisionUsers(gw.origin, accounts, 4)
    lg = await LoadGen.start(N > 2000 ? 2 : 1, false)
    const conn = await lg.connect({
      kind: 'gateway',
      url: gw.wsUrl,
      count: N,
      tokens: users.map((u) => u.token),
      localAddresses: sourceAddresses(Math.max(2, Math.ceil(N / 5000))),
      ratePerSec: ctx.short ? 500 : 1000,
      concurrency: 64,
      timeoutMs: 30_000,
      rpcTimeoutMs: 300_000,
      retries: 5,
      reset: true,
      reconnect: { attempts: 60, baseMs: 500, capMs: 30_000 },
    })
    log(`cell 3: ${conn.connected}/${N} connected; measuring upstream for ${windowS} s`)
    await sleep(3000)
    const b0 = Date.now()
    await sleep(windowS * 1000)
    const before = await sim.rates(b0, Date.now())
    const beforePerS = before.total / windowS
    const openBefore = (await lg.report()).open

    const tKill = Date.now()
    const killed = await gw.signal('SIGKILL', 10_000)
    log(`cell 3: SIGKILL (${killed?.signal}); restarting`)
    const restartMs = await gw.start(60_000)
    log(`cell 3: restarted in ${restartMs} ms; waiting for ${openBefore} dashboards`)
    let open = 0
    const backMs = await waitFor(
      async () => {
        const r = await lg!.report()
        open = r.open
        return open >= openBefore
      },
      90_000,
      1000,
    )
    const allBackAfterKillMs = backMs === null ? null : Date.now() - tKill
    const mid = await lg.report()
    const alive = gw.alive
    await sleep(3000)
    const a0 = Date.now()
    await sleep(windowS * 1000)
    const after = await sim.rates(a0, Date.now())
    const afterPerS = after.total / windowS
    const whole = peakRates(await sim.rates(b0, Date.now()))
    const rep = await lg.report()
    const refusals = rep.retried
    const shed = Object.entries(refusals)
      .filter(([k]) => SHED.test(k))
      .reduce((a, [, v]) => a + v, 0)
    const down = Object.entries(refusals)
      .filter(([k]) => DOWN.test(k))
      .reduce((a, [, v]) => a + v, 0)
    const otherRefusals = Object.entries(refusals).filter(([k]) => !SHED.test(k) && !DOWN.test(k))
    const lastBackMs = rep.reconnects.lastDoneAt ? Math.round(rep.reconnects.lastDoneAt - tKill) : null
    const figures = {
      dashboards: N,
      connected: conn.connected,
      openBefore,
      restartMs,
      allBackAfterKillMs,
      lastReconnectAfterKillMs: lastBackMs,
      openAtEnd: rep.open,
      reconnects: rep.reconnects,
      refusals,
      failures: rep.failures,
      closedByCode: mid.closedByCode,
      upstream: {
        beforePerSec: beforePerS,
        afterPerSec: afterPerS,
        ratio: afterPerS / beforePerS,
        peakPerKeyPerSec: whole.privateMaxPerSec,
        peakPublicPerSec: whole.publicMaxPerSec,
        beforeByStatus: before.byStatus,
        afterByStatus: after.byStatus,
      },
      gatewayExits: gw.exits,
    }
    checks.ok(
      allBackAfterKillMs !== null && allBackAfterKillMs <= 60_000,
      'all dashboards back within 60 s',
      `${open}/${openBefore} back, ${allBackAfterKillMs === null ? 'not all within 90 s' : `${allBackAfterKillMs} ms after the kill`} (restart took ${restartMs} ms)`,
    )
    checks.ok(
      alive && gw.exits.length === 1 && otherRefusals.length === 0 && Object.keys(rep.failures).length === 0,
      'sheds with 503/1013, never falls over',
      `${shed} shed (503/1013), ${down} refused while down, other ${otherRefusals.length ? JSON.stringify(Object.fromEntries(otherRefusals)) : 'none'}, gave up ${JSON.stringify(rep.failures)}; process ${alive ? 'alive' : 'died'}`,
    )
    // slack: 25 % for poll phase jitter, plus the one full fetch a restarted producer owes each account (every
    // channel once: account 1 + positions 2 + cross 2 + history 5 signed calls) — not a multiplication
    const FULL_FETCH_CALLS = 10
    const allowed = beforePerS * 1.25 + (FULL_FETCH_CALLS * accounts.length) / windowS
    checks.ok(
      afterPerS <= allowed && whole.privateMaxPerSec <= 5 && whole.publicMaxPerSec <= 1,
      'upstream calls do not multiply',
      `${fmt(beforePerS, 1)}/s before, ${fmt(afterPerS, 1)}/s after (${fmt(afterPerS / beforePerS, 2)}×; allowed ${fmt(allowed, 1)}/s = 1.25× + one full fetch per account); peak ${whole.privateMaxPerSec}/s per key, ${whole.publicMaxPerSec}/s public`,
    )
    const summary = `${openBefore} dashboards; restart ${fmt(restartMs / 1000, 1)} s; all back ${allBackAfterKillMs === null ? 'NO' : `${fmt(allBackAfterKillMs / 1000, 1)} s`} after kill; ${shed} shed 503/1013; upstream ${fmt(beforePerS, 1)} → ${fmt(afterPerS, 1)} req/s`
    return { held: checks.held, summary, checks: checks.list, figures }
  } finally {
    if (lg) await lg.stop()
    await gw.stop()
    gw.removeData()
    await sim.stop()
  }
}
