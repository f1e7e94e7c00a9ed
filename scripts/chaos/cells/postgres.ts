/**
 * Cell 4: the gateway's PostgreSQL (the suite's own instance) stopped (`pg_ctl stop -m fast`) during
 * streaming, then started again, while dashboards stream, a login probe runs every second and a writer
 * registers a new user every 400 ms. Nothing lost means: every dashboard keeps receiving fresh account data
 * from the pollers and cache while the database is down; every login meanwhile is a clear 503 (contract
 * error shape), and logins work again soon after the database is back; every registration that was
 * acknowledged (201) — before, during or after — can log in at the end.
 */
import { makeSimAccounts } from '../../lib/servers.ts'
import { sourceAddresses } from '../../lib/net.ts'
import { fmt } from '../../lib/stats.ts'
import { api, Checks, countInto, GatewayProc, log, sleep, startChaosSim, statusKey, waitFor, type CellResult } from '../lib.ts'
import { Observer, sumStats } from '../observer.ts'
import { makeUser, runId, withPosition, type Ctx, type User } from '../context.ts'
import { randomBytes } from 'node:crypto'

const POLL_MS = 2000
const STALE_MS = 30_000

export async function postgresOutage(ctx: Ctx): Promise<Omit<CellResult, 'id' | 'name' | 'seconds'>> {
  const checks = new Checks()
  const A = 4
  const downS = ctx.short ? 8 : 15
  const accounts = withPosition(makeSimAccounts(A, 'chaosp'))
  const sim = await startChaosSim(ctx.dir, accounts)
  const pg = await ctx.pg()
  const dbUrl = pg.createDb(`chaos_pg_${runId}`)
  const gw = await GatewayProc.create({
    apiUrl: sim.url,
    streamUrl: sim.streamUrl,
    env: { DATABASE_URL: dbUrl, POLL_INTERVAL_MS: String(POLL_MS), STALE_AFTER_MS: String(STALE_MS) },
  })
  const observers: Observer[] = []
  let writing = true
  let pgDown = false
  try {
    await gw.start()
    const addrs = sourceAddresses(A + 40, 100)
    const users: User[] = []
    for (let i = 0; i < A; i++) users.push(await makeUser(gw.origin, `cp${runId}u${i}`, accounts[i], addrs[i]))
    for (const u of users)
      for (let k = 0; k < 2; k++) {
        const o = new Observer({
          urls: [gw.wsUrl],
          token: u.token,
          label: `${u.username}#${k}`,
          staleAfterMs: STALE_MS,
          backoff: { baseMs: 200, capMs: 2000 },
        })
        observers.push(o)
        o.start()
      }
    if ((await waitFor(() => observers.every((o) => o.ready && o.newestTs.has('positions')), 30_000)) === null)
      throw new Error('observers got no positions snapshot within 30 s')

    // the writer: a registration every 400 ms from rotating source addresses, each answer kept
    const written: Array<{ username: string; password: string; at: number; answer: string }> = []
    let w = 0
    const writer = (async () => {
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- cleared by the cell when the outage is over
      while (writing) {
        const username = `cw${runId}n${w}`
        const password = `Chaos!${randomBytes(6).toString('hex')}`
        const at = Date.now()
        const r = await api(
          gw.origin,
          'POST',
          '/api/auth/register',
          { username, password },
          { localAddress: addrs[A + (w % 40)], timeoutMs: 20_000 },
        )
        written.push({ username, password, at, answer: statusKey(r) })
        w++
        await sleep(400)
      }
    })()
    // the login probe: once a second as the first user
    const logins: Array<{ at: number; ms: number; answer: string; down: boolean }> = []
    const prober = (async () => {
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- cleared by the cell when the outage is over
      while (writing) {
        const at = Date.now()
        const down = pgDown
        const r = await api(
          gw.origin,
          'POST',
          '/api/auth/login',
          { username: users[0]!.username, password: users[0]!.password },
          { localAddress: addrs[0], timeoutMs: 20_000 },
        )
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- pgDown is flipped by the cell while the login is in flight
        logins.push({ at, ms: Date.now() - at, answer: statusKey(r), down: down && pgDown })
        await sleep(1000)
      }
    })()

    await sleep(5000)
    const tStop = Date.now()
    pgDown = true
    pg.stop('fast')
    log(`cell 4: PostgreSQL stopped for ${downS} s`)
    await sleep(downS * 1000)
    // streaming from the pollers and cache while the database was down: account data newer than the stop + 1 poll
    const streamedWhileDown = observers.filter(
      (o) => Math.max(o.newestTs.get('positions') ?? 0, o.newestTs.get('account') ?? 0) > tStop + POLL_MS,
    ).length
    const tickerWhileDown = observers.filter((o) => (o.newestTs.get('ticker') ?? 0) > tStop + POLL_MS).length
    pgDown = false
    pg.start()
    const tStart = Date.now()
    log('cell 4: PostgreSQL started')
    const loginBackMs = await waitFor(
      async () =>
        (
          await api(
            gw.origin,
            'POST',
            '/api/auth/login',
            { username: users[0]!.username, password: users[0]!.password },
            { localAddress: addrs[1], timeoutMs: 10_000 },
          )
        ).status === 200,
      30_000,
      250,
    )
    await sleep(4000)
    writing = false
    await Promise.all([writer, prober])

    // nothing written is lost: every acknowledged registration logs in now
    const acked = written.filter((x) => x.answer.startsWith('201'))
    let lost = 0
    const lostNames: string[] = []
    for (const x of acked) {
      const r = await api(
        gw.origin,
        'POST',
        '/api/auth/login',
        { username: x.username, password: x.password },
        { localAddress: addrs[2], timeoutMs: 20_000 },
      )
      if (r.status !== 200) {
        lost++
        if (lostNames.length < 5) lostNames.push(`${x.username}: ${statusKey(r)}`)
      }
    }
    // registrations answered with an error that nevertheless exist (acknowledged as failed, yet written)
    let ghost = 0
    for (const x of written.filter((y) => !y.answer.startsWith('201'))) {
      const r = await api(
        gw.origin,
        'POST',
        '/api/auth/login',
        { username: x.username, password: x.password },
        { localAddress: addrs[2], timeoutMs: 20_000 },
      )
      if (r.status === 200) ghost++
    }
    const duringLogins: Record<string, number> = {}
    for (const l of logins) if (l.down && l.at > tStop) countInto(duringLogins, l.answer)
    const duringWrites: Record<string, number> = {}
    for (const x of written) if (x.at > tStop && x.at < tStart) countInto(duringWrites, x.answer)
    const slowest = Math.max(0, ...logins.filter((l) => l.down).map((l) => l.ms))
    const obs = sumStats(observers)
    const figures = {
      databaseDownS: downS,
      observers: observers.length,
      streamedWhileDown,
      tickerWhileDown,
      loginsWhileDown: duringLogins,
      slowestLoginWhileDownMs: slowest,
      loginBackAfterStartMs: loginBackMs,
      registrations: {
        attempted: written.length,
        acknowledged: acked.length,
        lostAfterAck: lost,
        lostExamples: lostNames,
        whileDown: duringWrites,
        errorButWritten: ghost,
      },
      observerStats: obs,
      healthAtEnd: statusKey(await api(gw.origin, 'GET', '/health/ready')),
    }
    const nDown = Object.values(duringLogins).reduce((a, b) => a + b, 0)
    checks.ok(
      streamedWhileDown === observers.length && obs.staleShown === 0,
      'streaming continues from the cache',
      `${streamedWhileDown}/${observers.length} dashboards got account data newer than the stop while PostgreSQL was down; ${obs.staleShown} stale frames`,
    )
    checks.ok(
      nDown > 0 && Object.keys(duringLogins).every((k) => k.startsWith('503')) && slowest <= 5000,
      'logins fail with a clear 503',
      `${JSON.stringify(duringLogins)}; slowest answer ${slowest} ms`,
    )
    checks.ok(
      loginBackMs !== null && loginBackMs <= 15_000,
      'logins recover',
      loginBackMs === null ? 'not within 30 s of the start' : `${loginBackMs} ms after PostgreSQL answered again`,
    )
    checks.ok(
      lost === 0 && acked.length > 0,
      'nothing written is lost',
      `${acked.length} registrations acknowledged, ${lost} cannot log in${lostNames.length ? ` (${lostNames.join('; ')})` : ''}; ${ghost} refused yet written`,
    )
    const summary = `down ${downS} s; streamed ${streamedWhileDown}/${observers.length}; logins while down ${JSON.stringify(duringLogins)}; back ${loginBackMs === null ? 'NO' : `${fmt(loginBackMs / 1000, 1)} s`}; ${acked.length} acked writes, ${lost} lost`
    return { held: checks.held, summary, checks: checks.list, figures }
  } finally {
    writing = false
    for (const o of observers) o.stop()
    if (pgDown) {
      try {
        pg.start()
      } catch {
        /* reported by the next cell */
      }
    }
    await gw.stop()
    gw.removeData()
    await sim.stop()
  }
}
