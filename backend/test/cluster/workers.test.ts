/**
 * WORKERS=2: the real gateway (its compiled entry, see ./cluster.ts) spawned as a cluster primary with two workers on one port, a new
 * (migrated) PostgreSQL database, no Redis, a standalone simulator as the exchange. Dashboards of one user spread over both
 * workers all receive the same frames; the simulator sees one poller's worth of requests for the account; the
 * aggregated /metrics counts every worker's sockets and one poller; killing a worker moves its polling to the other
 * at once (and the primary forks a new one) while its clients reconnect; SIGTERM on the primary closes every socket
 * with 1001 and exits 0. Login attempts are limited once for the machine, whichever worker answers. WORKERS=2 without
 * DATABASE_URL refuses to start with one line.
 */
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { FAST_EXCHANGE_ENV, testAccounts } from '../helpers/app.ts'
import { freePort, spawnGateway, type GatewayProcess } from '../helpers/process.ts'
import { ACCOUNT_PATHS } from '../streaming/live.ts'
import { WsClient, sleep, until } from '../streaming/helpers.ts'
import { compiledServer, gatewayEnv } from './cluster.ts'
import { withRedis } from './redis.ts'

// The gateway runs compiled (dist/backend/server.js, as `npm start` does): this file is about node:cluster, not
// the TypeScript entry, and plain node spares the primary and each (re)forked worker a transpile of the whole
// backend. The simulator allows 1000 signed calls a second here, so the gateway's per-key throttle runs at 20/s
// (LNM_SIGNED_CALLS_PER_SEC) and a poll of up to 5 signed calls takes ~0.3 s: inside half of the 1 s poll period,
// so no slot is skipped (which would halve the measured rate and hide a second poller).
const POLL_MS = 1000
const WINDOW_MS = 4 * POLL_MS
// the primary SIGKILLs a worker still running 1.5 s after the drain (exit 1): 1 s of drain leaves a worker on a
// loaded machine (a 2-core machine at load 8: 2.4 s from SIGTERM to exit, one worker killed at 500 ms) time to exit
const DRAIN_MS = 1000

/** the pids of a process' node children (Linux /proc): its workers, not tsx's esbuild service */
function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      // a Node process's main thread is named 'node' up to Node 22 and 'MainThread' on Node 24
      if (ppid === pid && ['node', 'MainThread'].includes(readFileSync(`/proc/${d}/comm`, 'utf8').trim())) out.push(Number(d))
    } catch {
      /* gone */
    }
  }
  return out
}

async function json(res: Response): Promise<any> {
  const text = await res.text()
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** a POST on a connection of its own (no keep-alive), so consecutive requests reach different workers */
function postOnNewConnection(port: number, path: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body)
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end(data)
  })
}

function promValue(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)
  return m ? Number(m[1]) : NaN
}

/** SIGKILL the primary's workers, then the primary (teardown) */
function killAll(g: GatewayProcess): void {
  for (const pid of childrenOf(g.child.pid!))
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      /* gone */
    }
  g.kill('SIGKILL')
}

t.test('WORKERS=2 on one port: shared frames, one poller per account, a dead worker replaced, SIGTERM drains', async (t) => {
  const accounts = testAccounts(1)
  const acc = accounts[0]!
  const ge = await gatewayEnv(t, accounts)
  if (!ge) return
  const { sim } = ge
  const port = await freePort()
  const g = spawnGateway(
    {
      ...ge.env,
      WORKERS: '2',
      PORT: String(port),
      DATA_DIR: ge.dataDir,
      POLL_INTERVAL_MS: String(POLL_MS),
      ...FAST_EXCHANGE_ENV,
      POLLER_GRACE_MS: '1000',
      SHUTDOWN_DRAIN_MS: String(DRAIN_MS),
      WS_UPGRADES_PER_MIN: '0',
      PRIVATE_STREAMS_PER_NODE: '0',
      LOG_LEVEL: 'info',
    },
    await compiledServer(),
  )
  t.teardown(() => killAll(g))
  await g.waitFor(/listening on/, 120_000)
  t.match(g.stdout(), /workers: 2 processes on one port \(in-host bus/, 'the primary says it runs two workers on the in-host bus')
  t.equal((g.stdout().match(/listening on/g) ?? []).length, 1, 'the listening line is printed once, by the primary')
  const okWorkers = await until(() => childrenOf(g.child.pid!).length === 2, 10_000)
  t.ok(okWorkers, `two worker processes (${childrenOf(g.child.pid!).join(', ')} of ${g.child.pid})`)
  const workers0 = childrenOf(g.child.pid!)

  const origin = `http://127.0.0.1:${port}`
  const wsUrl = `ws://127.0.0.1:${port}/ws`
  const post = (path: string, body: unknown, token?: string, method = 'POST') =>
    fetch(origin + path, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    })
  const username = `w${randomBytes(4).toString('hex')}`
  const password = 'pw-workers-test-Long1'
  t.equal((await post('/api/auth/register', { username, password })).status, 201, 'registered')
  const login = await json(await post('/api/auth/login', { username, password }))
  const token = login.accessToken as string
  t.equal(
    (await post('/api/credentials', { apiKey: acc.key, apiSecret: acc.secret, passphrase: acc.passphrase }, token, 'PUT')).status,
    200,
    'credentials stored',
  )

  // --- many dashboards of the same user: the round-robin spreads them over both workers
  const N = 6
  const clients: WsClient[] = []
  for (let i = 0; i < N; i++) clients.push(await WsClient.authed(wsUrl, token))
  t.teardown(() => clients.forEach((c) => c.close()))
  for (const [i, c] of clients.entries()) {
    for (const ch of ['account', 'positions', 'ticker']) await c.next((f) => f.type === 'data_update' && f.channel === ch, 10_000)
    t.pass(`dashboard ${i} receives account, positions and ticker`)
  }
  const last = (c: WsClient, ch: string) => c.all((f) => f.type === 'data_update' && f.channel === ch).at(-1)
  const sameEverywhere = (ch: string) => {
    const ref = last(clients[0]!, ch)
    return clients.every((c) => {
      const f = last(c, ch)
      return f && f.epoch === ref.epoch && f.seq === ref.seq && JSON.stringify(f.data) === JSON.stringify(ref.data)
    })
  }
  t.ok(
    await until(() => sameEverywhere('account') && sameEverywhere('positions'), 10_000),
    'every dashboard shows the same account and positions frames (same epoch, seq and data: one producer)',
  )

  // --- one poller for the machine: the simulator's request rate for the key, and the aggregated metrics
  // --- login attempts are counted once for the machine (by the primary), not once per worker: wrong passwords sent
  // over new connections (round-robin over both workers) hit the per-(username, address) limit of 10 a minute.
  // (Run during the polling measurement below: it touches only the auth routes, and the wait is mostly hashing.)
  const loginLimit = (async () => {
    const statuses: number[] = []
    for (let i = 0; i < 12; i++)
      statuses.push(await postOnNewConnection(port, '/api/auth/login', { username, password: 'wrong-password-Long1' }))
    const first429 = statuses.indexOf(429)
    t.ok(
      first429 >= 0 && first429 <= 9,
      `the limit holds across workers: 429 at wrong attempt ${first429 + 1}, after the login (${statuses.join(',')}); per-worker counters would allow about 20`,
    )
  })()

  const polls = (after: number) => sim.stats.log().filter((e) => e.ts > after && e.key === acc.key && e.path === '/v3/account').length
  // a generous bound (it returns as soon as the poll is there): on a loaded machine the first poll and its history load can run late
  await until(() => polls(0) >= 2, 6 * POLL_MS, 'a regular poll after the first one (which also loads the history)')
  const s1 = Date.now()
  await sleep(WINDOW_MS) // the measurement window
  await loginLimit
  const reqs = sim.stats.log().filter((e) => e.ts >= s1 && e.key === acc.key && ACCOUNT_PATHS.includes(e.path)).length
  const expected = (WINDOW_MS / POLL_MS) * ACCOUNT_PATHS.length
  t.comment(`account+positions requests in ${WINDOW_MS} ms: ${reqs}; one poller ≈ ${expected}`)
  t.ok(
    reqs >= expected * 0.5 && reqs <= expected * 1.4,
    `one poller's worth of upstream requests for the account (${reqs} ≈ ${expected}, two pollers would be ≈ ${expected * 2})`,
  )
  const metrics = await (await fetch(`${origin}/metrics`)).text()
  t.equal(promValue(metrics, 'lnm_gateway_ws_connections_open'), N, '/metrics aggregates every worker: all open sockets')
  t.equal(promValue(metrics, 'lnm_gateway_active_pollers'), 1, '/metrics aggregates every worker: one account poller for the machine')

  // --- kill the workers one after the other: the sockets of the dead one drop and reconnect, its accounts are polled
  // by another worker at once, the primary forks a replacement. The second kill always hits the account's poller:
  // whichever of the two held it first, the survivor holds it after the first kill.
  let live = clients
  let lastKillAt = 0
  for (const [round, victim] of workers0.entries()) {
    const killedAt = Date.now()
    lastKillAt = killedAt
    process.kill(victim, 'SIGKILL')
    t.ok(await until(() => live.some((c) => c.closeInfo !== null), 5000), `kill ${round + 1}: the killed worker's sockets close`)
    await sleep(300)
    const dropped = live.filter((c) => c.closeInfo !== null)
    const kept = live.filter((c) => c.closeInfo === null)
    if (round === 0)
      t.ok(
        dropped.length >= 1 && kept.length >= 1,
        `the dashboards were spread over both workers (${dropped.length} dropped, ${kept.length} kept)`,
      )
    const reconnected: WsClient[] = []
    // as the dashboard does: retry while no worker listens (the last one was just killed, its replacement is starting)
    const reconnect = async (): Promise<WsClient> => {
      for (let tries = 0; ; tries++) {
        try {
          return await WsClient.authed(wsUrl, token)
        } catch (err) {
          if (tries > 120) throw err
        }
        await sleep(250)
      }
    }
    for (let i = 0; i < dropped.length; i++) reconnected.push(await reconnect())
    t.teardown(() => reconnected.forEach((c) => c.close()))
    live = [...kept, ...reconnected]
    const exitLine = await g.waitFor(
      new RegExp(
        `\\{[^\\n]*"pid":${victim},[^\\n]*worker exited unexpectedly[^\\n]*\\}|\\{[^\\n]*worker exited unexpectedly[^\\n]*"pid":${victim}[,}][^\\n]*\\}`,
      ),
      5000,
    )
    const moved = Number(/"keysMoved":(\d+)/.exec(exitLine[0])?.[1] ?? NaN)
    t.ok(Number.isInteger(moved), `kill ${round + 1}: the primary logs the unexpected exit (keys moved to another worker: ${moved})`)
    if (round === 1) t.ok(moved >= 1, "the second kill hit the account's poller, and its keys were granted to another worker at once")
    t.ok(
      await until(
        () => sim.stats.log().some((e) => e.ts > killedAt + 200 && e.key === acc.key && e.path === '/v3/account'),
        2 * POLL_MS + 5000,
      ),
      `kill ${round + 1}: the account is polled again (${Date.now() - killedAt} ms after the kill)`,
    )
    const after = Date.now()
    for (const c of live) await c.next((f) => (f.type === 'data_update' || f.type === 'fresh') && Date.now() >= after, 3 * POLL_MS + 5000)
    t.pass(`kill ${round + 1}: surviving and reconnected dashboards receive data again`)
    t.ok(
      await until(() => childrenOf(g.child.pid!).filter((p) => !workers0.slice(0, round + 1).includes(p)).length === 2, 30_000),
      `kill ${round + 1}: the primary forked a new worker`,
    )
    if (round === 0) {
      // the replacement listens: new dashboards reach it too (round-robin), so it has demand for the account when the
      // poller's worker dies next
      const fresh = childrenOf(g.child.pid!).find((p) => !workers0.includes(p))!
      await g.waitFor(new RegExp(`"pid":${fresh},[^\\n]*Server listening at`), 60_000)
      for (let i = 0; i < 4; i++) live.push(await WsClient.authed(wsUrl, token))
      for (const c of live.slice(-4)) await c.next((f) => f.type === 'data_update' && f.channel === 'account', 10_000)
    }
  }
  await until(() => polls(lastKillAt) >= 2, 6 * POLL_MS, "a regular poll after the new poller's first one")
  const s2 = Date.now()
  await sleep(WINDOW_MS) // the measurement window
  const reqs2 = sim.stats.log().filter((e) => e.ts >= s2 && e.key === acc.key && ACCOUNT_PATHS.includes(e.path)).length
  t.ok(reqs2 <= expected * 1.4, `still one poller after the takeovers (${reqs2} ≈ ${expected})`)

  // --- SIGTERM on the primary: every socket gets 1001, exit 0
  const open = live
  g.kill('SIGTERM')
  const closes = await Promise.all(open.map((c) => c.waitClose(DRAIN_MS + 10_000)))
  t.same(
    closes.map((c) => c.code),
    open.map(() => 1001),
    `every open socket is closed with 1001 (${open.length})`,
  )
  const exit = await g.exited
  t.equal(exit.code, 0, `the primary exits 0 (${exit.ms} ms after SIGTERM; drain ${DRAIN_MS} ms)`)
  t.ok(exit.ms < DRAIN_MS + 2000 + 3000, `within SHUTDOWN_DRAIN_MS + 2 s (plus slack for a loaded machine): ${exit.ms} ms`)
  t.ok(await until(() => childrenOf(g.child.pid!).length === 0, 2000), 'no worker left behind')
})

t.test('WORKERS=2 with REDIS_URL: the workers are Redis nodes, still one poller for the account', async (t) => {
  const redis = await withRedis(t)
  if (!redis) return
  const accounts = testAccounts(1)
  const acc = accounts[0]!
  const ge = await gatewayEnv(t, accounts)
  if (!ge) return
  const port = await freePort()
  const g = spawnGateway(
    {
      ...ge.env,
      WORKERS: '2',
      PORT: String(port),
      DATA_DIR: ge.dataDir,
      REDIS_URL: `${redis.url}?prefix=${redis.prefix}`,
      REDIS_LEASE_MS: '1000',
      POLL_INTERVAL_MS: String(POLL_MS),
      ...FAST_EXCHANGE_ENV,
      SHUTDOWN_DRAIN_MS: String(DRAIN_MS),
      WS_UPGRADES_PER_MIN: '0',
      PRIVATE_STREAMS_PER_NODE: '0',
    },
    await compiledServer(),
  )
  t.teardown(() => killAll(g))
  await g.waitFor(/listening on/, 120_000)
  t.match(g.stdout(), /workers: 2 processes on one port \(Redis bus/, 'the primary says the workers use the Redis bus')
  const origin = `http://127.0.0.1:${port}`
  const post = (path: string, body: unknown, token?: string, method = 'POST') =>
    fetch(origin + path, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    })
  const username = `r${randomBytes(4).toString('hex')}`
  const password = 'pw-workers-test-Long1'
  t.equal((await post('/api/auth/register', { username, password })).status, 201, 'registered')
  const token = (await json(await post('/api/auth/login', { username, password }))).accessToken as string
  t.equal(
    (await post('/api/credentials', { apiKey: acc.key, apiSecret: acc.secret, passphrase: acc.passphrase }, token, 'PUT')).status,
    200,
    'credentials stored',
  )
  const clients: WsClient[] = []
  for (let i = 0; i < 4; i++) clients.push(await WsClient.authed(`ws://127.0.0.1:${port}/ws`, token))
  t.teardown(() => clients.forEach((c) => c.close()))
  for (const c of clients) await c.next((f) => f.type === 'data_update' && f.channel === 'positions', 10_000)
  const last = (c: WsClient) => c.all((f) => f.type === 'data_update' && f.channel === 'positions').at(-1)
  t.ok(
    await until(() => clients.every((c) => last(c).epoch === last(clients[0]!).epoch && last(c).seq === last(clients[0]!).seq), 10_000),
    'every dashboard shows the same positions frame (one producer, the Redis lease holder)',
  )
  t.equal(
    await redis.admin.exists(
      `${redis.prefix}:lease:${(await json(await fetch(`${origin}/api/me`, { headers: { authorization: `Bearer ${token}` } }))).id}`,
    ),
    1,
    "the account's lease is in Redis",
  )
  const metrics = await (await fetch(`${origin}/metrics`)).text()
  t.equal(promValue(metrics, 'lnm_gateway_active_pollers'), 1, 'one account poller over both workers')
  g.kill('SIGTERM')
  const closes = await Promise.all(clients.map((c) => c.waitClose(DRAIN_MS + 10_000)))
  t.same(
    closes.map((c) => c.code),
    clients.map(() => 1001),
    'SIGTERM: every socket gets 1001',
  )
  t.equal((await g.exited).code, 0, 'and the primary exits 0')
})

t.test('WORKERS=2 without DATABASE_URL refuses to start with one line', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'lnm-gw-workers-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const g = spawnGateway(
    { WORKERS: '2', PORT: String(await freePort()), DATA_DIR: dataDir, LNM_API_URL: 'http://127.0.0.1:9/v3' },
    await compiledServer(),
  )
  t.teardown(() => g.kill('SIGKILL'))
  const exit = await g.exited
  t.not(exit.code, 0, 'exits non-zero')
  t.equal(g.stderr().trim(), 'lnm-gateway: WORKERS>1 needs DATABASE_URL: the embedded database is single-process', 'one line says why')
})
