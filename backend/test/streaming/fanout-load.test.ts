/**
 * The exchange sees the same account/positions traffic with 500 dashboards on 5 accounts as with 5:
 * one poller per account, whatever the number of sockets. Counted at the simulator over equal windows.
 */
import t from 'tap'
import { liveGateway } from './live.ts'
import { WsClient, metricValue, sleep, until } from './helpers.ts'

// a poll is 3 signed calls; at the exchange's 5/s per key they take ~0.5 s, half the 1 s period, and a poll that
// outlives half its period skips the next slot. The simulator here allows 1000/s, so the gateway's throttle runs
// at 20/s: a poll takes ~0.15 s and the count is the pollers' (5 accounts x 3 calls a second)
const POLL_MS = 1000
const WINDOW_MS = 3000
const build = { exchangeClient: { limits: { authPerSec: 20 } } }

t.test('500 dashboards on 5 accounts cost the exchange what 5 do', async (t) => {
  const T0 = Date.now()
  const L = await liveGateway(t, { env: { POLL_INTERVAL_MS: String(POLL_MS), MAX_CONNECTIONS_PER_USER: '200', LOG_LEVEL: 'warn' }, build })
  t.comment(`gateway up in ${Date.now() - T0} ms`)
  const users = await Promise.all([0, 1, 2, 3, 4].map((i) => L.user(i)))
  t.comment(`users ready at ${Date.now() - T0} ms`)
  const first = await Promise.all(users.map((u) => WsClient.authed(L.g.wsUrl, u.token)))
  await Promise.all(first.map((c) => c.next((f) => f.type === 'data_update' && f.channel === 'positions', 8000)))
  await sleep(POLL_MS)
  const a0 = Date.now()
  await sleep(WINDOW_MS)
  const few = L.accountRequests(a0, Date.now())

  // 495 more dashboards: 99 more per account
  const more: WsClient[] = []
  for (let batch = 0; batch < 5; batch++) {
    more.push(...(await Promise.all(Array.from({ length: 99 }, (_, i) => WsClient.authed(L.g.wsUrl, users[(batch * 99 + i) % 5]!.token)))))
  }
  t.comment(`500 connected at ${Date.now() - T0} ms`)
  t.equal(first.length + more.length, 500, '500 dashboards connected')
  const all = [...first, ...more]
  const warm = await Promise.all(
    more.map((c) =>
      c
        .next((f) => f.type === 'data_update' && f.channel === 'account', 8000)
        .then(
          () => true,
          () => false,
        ),
    ),
  )
  t.ok(warm.every(Boolean), 'every new dashboard got the account snapshot at once from cache')
  t.equal(await metricValue(L.g.app.metrics.registry, 'lnm_gateway_active_pollers'), 5, 'still exactly 5 pollers')
  await sleep(POLL_MS)
  const b0 = Date.now()
  await sleep(WINDOW_MS)
  const many = L.accountRequests(b0, Date.now())
  const perMin = (n: number) => Math.round((n * 60_000) / WINDOW_MS)
  t.comment(`exchange account+positions requests/min: 5 dashboards ${perMin(few)}, 500 dashboards ${perMin(many)}`)
  t.ok(few > 0, 'the pollers do poll')
  t.ok(
    many - few <= Math.max(6, few * 0.15),
    `more dashboards add no exchange traffic: within one poll per account or 15 % (5: ${few}, 500: ${many} in ${WINDOW_MS} ms)`,
  )
  // fewer is possible when the machine is starved (a poll that outlives half its interval skips the next slot,
  // and fanning each answer out to 100 sockets costs CPU): measured 17 vs 30 at load 10 on 2 cores (5/s throttle)
  t.ok(many >= few * 0.4, `and the pollers keep polling with 500 dashboards (${many} vs ${few})`)
  const expected = (5 * 3 * WINDOW_MS) / POLL_MS
  t.ok(many <= expected * 1.15, `no more than one poll per account per interval (${many} ≤ ${expected} +15 %)`)
  // updates reached everyone: each socket has seen data for its own account only
  for (const [i, c] of all.entries()) {
    const u = users.indexOf(users.find((x) => c.frames.some((f) => f.type === 'connection' && f.userId === x.userId))!)
    const names = new Set(c.all((f) => f.type === 'data_update' && f.channel === 'account').map((f) => f.data.username))
    if (names.size !== 1 || !names.has(L.accounts[u]!.username)) {
      t.fail(`socket ${i} saw foreign account data: ${[...names].join(',')}`)
      break
    }
  }
  t.pass('every socket saw only its own account')
  for (const c of all) c.close()
  await until(() => L.g.app.streaming.hub.stats().connections === 0, 5000)
  t.equal(L.g.app.streaming.hub.stats().connections, 0, 'all sockets closed and released')
})
