/**
 * The private-stream budget and LN Markets' stream limits over real sockets (gateway + simulator, real
 * WebSockets): 10 watched accounts and a budget of 4 → exactly 4 private streams, on the most-watched
 * accounts, the other 6 polled over REST at the fast rate; then an exchange-side stream restart (every socket
 * dropped, upgrades refused for 1.5 s, REST up): reconnects come back spread out, no storm, all 4 streams up
 * again and each of their accounts reconciled by a full REST fetch; and nothing ever over the documented
 * limits as the simulator counts them (32 sockets and 500 new connections per IP per hour, 20 `authenticate`
 * per IP per minute, 10 messages per second per socket).
 */
import t from 'tap'
import { testAccounts } from '../helpers/app.ts'
import { ACCOUNT_PATHS, liveGateway } from './live.ts'
import { WsClient, sleep, until } from './helpers.ts'

const BUDGET = 4
const N = 10
const REFUSE_MS = 1500
/** a quarter of the defaults (5 s, 30 s; 1.25 s still holds a poll's 3 signed calls, ~0.5 s at 5/s per key): the
 * REST window below is 3 poll periods and half a reconcile period, as 15 s are at the defaults */
const POLL_MS = 1250
const RECONCILE_MS = 7500
/** LN Markets' 20 authenticate a minute instead of the default 12, so the burst (10) holds the 4 reconnects after the
 * restart and the test does not wait out 5 s refills; the pacing itself is proven with a fake clock in
 * private-streams.test.ts */
const STARTS_PER_MIN = 20
/** every path of a full fetch (what an account's stream going up triggers) */
const FULL_FETCH = [
  '/v3/account',
  '/v3/futures/isolated/trades/running',
  '/v3/futures/cross/position',
  '/v3/futures/isolated/trades/closed',
]
const WINDOW_MS = 3 * POLL_MS

/** the most events of `times` within any `windowMs` */
function maxInWindow(times: number[], windowMs: number): number {
  const xs = [...times].sort((a, b) => a - b)
  let best = 0
  for (let i = 0, j = 0; i < xs.length; i++) {
    while (xs[i]! - xs[j]! >= windowMs) j++
    best = Math.max(best, i - j + 1)
  }
  return best
}

t.test('stream budget and limits hold: budget, restart, spread reconnects, full fetch after', async (t) => {
  const accounts = testAccounts(N).map((a) => ({ ...a, history: { closedTrades: 2 } }))
  const L = await liveGateway(t, {
    accounts,
    env: {
      PRIVATE_STREAMS_PER_NODE: String(BUDGET),
      POLL_INTERVAL_MS: String(POLL_MS),
      PUSH_RECONCILE_MS: String(RECONCILE_MS),
      PRIVATE_STREAM_STARTS_PER_MIN: String(STARTS_PER_MIN),
      LOG_LEVEL: 'warn',
    },
    sim: { tickMs: 0 },
  })
  const ps = L.g.app.streaming.privateStreams!
  t.ok(ps, 'private streams enabled')
  t.same(
    ps.limits,
    { startsPerMin: 20, burst: 10, connectsPerHour: 400 },
    'PRIVATE_STREAM_STARTS_PER_MIN is applied (one process: all of it)',
  )
  const users: Array<{ userId: string; token: string }> = []
  for (let i = 0; i < N; i++) users.push(await L.user(i))
  const clients: WsClient[] = []
  t.teardown(() => clients.forEach((c) => c.close()))
  // the 4 most-watched accounts (two dashboards each) are watched first, the other 6 with one dashboard each
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < (i < BUDGET ? 2 : 1); k++) clients.push(await WsClient.authed(L.g.wsUrl, users[i]!.token))
  }
  const pushed = users.slice(0, BUDGET)
  const polled = users.slice(BUDGET)
  t.ok(await until(() => pushed.every((u) => ps.isUp(u.userId)), 20_000), 'the 4 most-watched accounts have their private stream up')
  const pollers = L.g.app.streaming.pollers as unknown as { pollers: Map<string, { controller: unknown }> }
  /** account i had a full fetch after its last stream authenticate at or after `since`, and no REST round is in flight */
  const fullyFetched = (i: number, since: number) => {
    const auths = L.sim.streamEvents().authenticate.filter((a) => a.key === accounts[i]!.key && a.ts >= since)
    if (!auths.length) return false
    const upAt = auths[auths.length - 1]!.ts
    const paths = new Set(
      L.sim.stats
        .log()
        .filter((e) => e.key === accounts[i]!.key && e.ts >= upAt)
        .map((e) => e.path),
    )
    return FULL_FETCH.every((p) => paths.has(p)) && !pollers.pollers.get(users[i]!.userId)?.controller
  }
  ps.rebalance() // what the rebalance tick (every 5 s) does: re-rank by watchers within the budget
  await until(() => pushed.every((_, i) => fullyFetched(i, 0)), 10_000, "the full fetch after each stream's 'up'")
  t.equal(ps.size, BUDGET, 'exactly the budget of private streams')
  t.notOk(
    polled.some((u) => ps.isUp(u.userId)),
    'the other 6 accounts have none',
  )
  t.equal(L.sim.streamStats().authenticated, BUDGET, 'the exchange sees exactly 4 authenticated sockets')
  t.equal(L.sim.streamStats().open, BUDGET + 1, '…plus the public ticker stream')

  // REST: the polled accounts at POLL_INTERVAL_MS (3 calls a poll), the pushed ones only reconcile (6 poll periods)
  const from = Date.now()
  await sleep(WINDOW_MS)
  const to = Date.now()
  const perAccount = (i: number) =>
    L.sim.stats.log().filter((e) => e.key === accounts[i]!.key && e.ts >= from && e.ts < to && ACCOUNT_PATHS.includes(e.path)).length
  const pushedCalls = pushed.map((_, i) => perAccount(i))
  const polledCalls = polled.map((_, i) => perAccount(BUDGET + i))
  t.comment(`account+positions requests in ${WINDOW_MS} ms: pushed ${pushedCalls.join(' ')}, polled ${polledCalls.join(' ')}`)
  t.ok(
    polledCalls.every((n) => n >= 6),
    `each polled account is polled at the fast rate (≥ 2 polls in 3 poll periods): ${polledCalls.join(' ')}`,
  )
  t.ok(
    pushedCalls.every((n) => n <= 3),
    `each pushed account is at most reconciled once (≤ 3 calls in half a reconcile period): ${pushedCalls.join(' ')}`,
  )

  // exchange-side stream restart: every socket dropped, upgrades refused for 1.5 s; REST stays up
  const restartAt = Date.now()
  L.sim.restartStream(REFUSE_MS)
  t.ok(await until(() => !pushed.some((u) => ps.isUp(u.userId)), 5000), 'the private streams went down')
  t.ok(
    await until(() => pushed.every((u) => ps.isUp(u.userId)) && L.sim.streamStats().authenticated === BUDGET, 60_000, { stepMs: 50 }),
    'all 4 private streams are back',
  )
  await until(() => pushed.every((_, i) => fullyFetched(i, restartAt)), 10_000, "the full fetch after each stream's return")
  const ev = L.sim.streamEvents()
  const attempts = ev.upgrades.filter((u) => u.ts >= restartAt)
  // the first reconnect of each socket waits 0.5–1 s (jittered); the second comes ≥ 1 s after it
  const first = attempts.filter((u) => u.ts < restartAt + 1450).map((u) => u.ts)
  const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs)
  const accepted = attempts.filter((u) => u.status === 101).map((u) => u.ts)
  t.comment(`after the restart: ${attempts.length} upgrade attempts (${attempts.map((u) => `+${u.ts - restartAt}:${u.status}`).join(' ')})`)
  t.ok(first.length >= 3, `the sockets' first reconnects came within 1.45 s (${first.length})`)
  t.ok(spread(first) >= 50, `first reconnects are spread by jitter, not at one instant (${spread(first)} ms)`)
  t.ok(
    attempts.every((u) => u.status === 101 || u.ts < restartAt + REFUSE_MS + 50),
    'nothing refused once the restart was over',
  )
  t.equal(accepted.length, BUDGET + 1, 'one accepted reconnect per socket (4 private + the ticker stream)')
  t.ok(spread(accepted) >= 50, `accepted reconnects spread over ${spread(accepted)} ms`)
  t.ok(attempts.length <= 4 * (BUDGET + 1), `no reconnect storm: ${attempts.length} upgrade attempts for ${BUDGET + 1} sockets`)

  // each pushed account re-authenticated once and was reconciled by a full REST fetch (history included)
  for (let i = 0; i < BUDGET; i++) {
    const auths = ev.authenticate.filter((a) => a.key === accounts[i]!.key && a.ts >= restartAt)
    t.equal(auths.length, 1, `account ${i}: one authenticate after the restart`)
    const upAt = auths[0]?.ts ?? Infinity
    const after = new Set(
      L.sim.stats
        .log()
        .filter((e) => e.key === accounts[i]!.key && e.ts >= upAt)
        .map((e) => e.path),
    )
    for (const p of FULL_FETCH) {
      t.ok(after.has(p), `account ${i}: ${p} fetched after the reconnect`)
    }
  }
  for (let i = BUDGET; i < N; i++) {
    t.notOk(
      ev.authenticate.some((a) => a.key === accounts[i]!.key),
      `account ${i}: never authenticated a stream`,
    )
  }

  // the documented per-IP limits, as the simulator counts them (every socket of the test is on 127.0.0.1)
  const s = L.sim.streamStats()
  t.comment(`stream counters: ${JSON.stringify(s)}`)
  t.ok(
    maxInWindow(
      ev.authenticate.map((a) => a.ts),
      60_000,
    ) <= 20,
    `≤ 20 authenticate in any minute (${maxInWindow(
      ev.authenticate.map((a) => a.ts),
      60_000,
    )})`,
  )
  t.equal(s.refusedAuthenticate, 0, 'no authenticate refused')
  t.ok(s.maxOpen <= 32, `≤ 32 sockets at once (${s.maxOpen})`)
  t.equal(s.refusedSockets, 0, 'no socket refused for the 32 limit')
  t.ok(s.connections <= 500, `≤ 500 new connections (${s.connections})`)
  t.equal(s.refusedConnections, 0, 'no connection refused for the hourly limit')
  t.equal(s.refusedMessages, 0, 'no socket over 10 messages a second')
})
