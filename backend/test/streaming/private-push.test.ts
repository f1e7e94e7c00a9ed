/**
 * Exchange push with REST reconciliation, against the simulator's private Stream v1 topics:
 * - the stream budget goes to the most-watched account, the other one stays on REST polling;
 * - upstream REST requests of the pushed account vs the polled one over a window of 12 poll periods and 2
 *   reconcile periods — a minute with the defaults (POLL 5 s, reconcile 30 s, 5 signed calls/s per key); the test
 *   runs the periods at an eighth of their defaults and the gateway's per-key throttle 4× faster (20/s: the polled
 *   account's 3 signed calls take ~0.1 s of its 625 ms, the pushed account's reconcile of up to 5 fits in its
 *   3.75 s), so the counts per window, and the bounds on them, are those of a real minute at the defaults;
 * - an exchange event (a trade opened or closed) reaches a connected /ws client as a data_update quickly.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { call } from '../simulator/helpers.ts'
import { testAccounts } from '../helpers/app.ts'
import { liveGateway } from './live.ts'
import { WsClient, holdsWithin, percentile, sleep, until } from './helpers.ts'

const accounts = testAccounts(2).map((a) => ({
  ...a,
  cross: { margin: 40_000, leverage: 5, side: 'buy' as const, quantity: 50 },
  history: { closedTrades: 3 },
}))

/** an eighth of the defaults (5 s, 30 s): the window below is 12 polls and 2 reconciles, a minute at the defaults */
const POLL_MS = 625
const RECONCILE_MS = 3750
/** the gateway's per-key throttle, 4× the exchange's 5/s (the simulator here allows 1000/s) */
const AUTH_PER_SEC = 20
/** between two events: the REST refresh an event asks for (balance, history) is over, events stay apart */
const GAP_MS = 200
const WINDOW_MS = 12 * POLL_MS

t.test('private streams: budget, REST budget, event latency', async (t) => {
  const L = await liveGateway(t, {
    accounts,
    env: {
      PRIVATE_STREAMS_PER_NODE: '1',
      POLL_INTERVAL_MS: String(POLL_MS),
      PUSH_RECONCILE_MS: String(RECONCILE_MS),
      LOG_LEVEL: 'warn',
    },
    sim: { tickMs: 0 },
    build: { exchangeClient: { limits: { authPerSec: AUTH_PER_SEC } } },
  })
  const ps = L.g.app.streaming.privateStreams!
  t.ok(ps, 'private streams enabled')
  const a = await L.user(0)
  const b = await L.user(1)
  // a: two dashboards, b: one → the single stream goes to a
  const a1 = await WsClient.authed(L.g.wsUrl, a.token)
  const a2 = await WsClient.authed(L.g.wsUrl, a.token)
  const b1 = await WsClient.authed(L.g.wsUrl, b.token)
  t.ok(await until(() => ps.isUp(a.userId), 15_000), "the most-watched account's private stream is up")
  // quiet for account a: no REST round of it in flight and its per-key throttle free
  const pollers = L.g.app.streaming.pollers as unknown as { pollers: Map<string, { controller: unknown }> }
  const policy = (L.g.app.exchange.client as unknown as { policy: { keyThrottles: Map<string, { pending(now: number): number }> } }).policy
  const throttleId = createHash('sha256').update(accounts[0]!.key).digest('hex').slice(0, 24)
  const quiet = () => !pollers.pollers.get(a.userId)?.controller && (policy.keyThrottles.get(throttleId)?.pending(Date.now()) ?? 0) === 0
  const upAt = L.sim.streamEvents().authenticate.find((e) => e.key === accounts[0]!.key)!.ts
  ps.rebalance() // what the rebalance tick (every 5 s) does: re-rank by watchers within the budget
  // the full fetch after 'up' (history included) is over before the window starts
  await until(
    () =>
      quiet() &&
      L.sim.stats.log().some((e) => e.key === accounts[0]!.key && e.ts >= upAt && e.path === '/v3/futures/isolated/trades/closed'),
    10_000,
    "the full fetch after 'up'",
  )
  t.equal(ps.size, 1, 'no more streams than the budget')
  t.notOk(ps.isUp(b.userId), 'the other account stays on REST polling')

  // REST requests per account over 12 poll periods and 2 reconcile periods (a minute at the defaults)
  const from = Date.now()
  await sleep(WINDOW_MS)
  const pushed = L.sim.stats.requests({ key: accounts[0]!.key, sinceMs: from })
  const polled = L.sim.stats.requests({ key: accounts[1]!.key, sinceMs: from })
  t.comment(
    `upstream REST requests in ${WINDOW_MS} ms (a minute at the defaults): private stream healthy ${pushed}, polling only ${polled}`,
  )
  t.ok(pushed <= 9, `healthy private stream: ≤ 9 REST requests per 2 reconcile periods (${pushed})`)
  t.ok(polled > 2 * pushed, `polling only costs far more (${polled})`)

  // event → data_update latency: the receive time of the first positions frame after the event's request
  // that shows it (an earlier frame, e.g. from a reconcile begun before the event, does not count)
  const seen = async (from: number, since: number, shows: (running: Array<{ id: string }>) => boolean) => {
    const at = (): number | undefined => {
      for (let i = from; i < a1.frames.length; i++) {
        const f = a1.frames[i]
        if (f.type === 'data_update' && f.channel === 'positions' && shows(f.data.running)) return a1.at[i]! - since
      }
      return undefined
    }
    if (!(await holdsWithin(() => at() !== undefined, 3000, 5))) {
      // say what the gateway and the exchange saw, so a rare miss can be explained from the CI log alone
      const auths = L.sim.streamEvents().authenticate.filter((e) => e.key === accounts[0]!.key && e.ts >= upAt).length
      const rest = L.sim.stats.log().filter((e) => e.key === accounts[0]!.key && e.ts >= since)
      const kinds = a1.frames.slice(from).map((f) => (f.type === 'data_update' ? `${f.type}:${f.channel}` : f.type))
      throw new Error(
        `no positions update within 3000 ms: stream up ${ps.isUp(a.userId)}, authenticates since up ${auths}, ` +
          `REST since the event ${rest.map((e) => `${e.path}:${e.status}`).join(' ') || 'none'}, frames since ${kinds.join(' ') || 'none'}`,
      )
    }
    return at()!
  }
  const lat: number[] = []
  for (let i = 0; i < 10; i++) {
    const t0 = Date.now()
    const mark = a1.frames.length
    const r = await call(L.sim, accounts[0], 'POST', '/futures/isolated/trade', { type: 'market', side: 'buy', leverage: 10, quantity: 10 })
    if (r.status !== 200) throw new Error(`open failed ${r.status} ${r.text}`)
    const id = r.json.id as string
    lat.push(await seen(mark, t0, (running) => running.some((x) => x.id === id)))
    await sleep(GAP_MS)
    const c0 = Date.now()
    const mark2 = a1.frames.length
    const rc = await call(L.sim, accounts[0], 'POST', '/futures/isolated/trade/close', { id })
    if (rc.status !== 200) throw new Error(`close failed ${rc.status} ${rc.text}`)
    lat.push(await seen(mark2, c0, (running) => !running.some((x) => x.id === id)))
    await sleep(GAP_MS)
  }
  const p50 = percentile(lat, 0.5)
  const p99 = percentile(lat, 0.99)
  t.comment(
    `exchange event → /ws data_update: n=${lat.length} p50=${p50} ms p99=${p99} ms max=${Math.max(...lat)} ms (all: ${lat.join(' ')})`,
  )
  t.ok(p99 <= 250, `p99 ≤ 250 ms on loopback (${p99} ms)`)
  const h = await a1.next((f) => f.type === 'data_update' && f.channel === 'history', 5000)
  t.ok(h.data.closed.length > 3, 'closing trades refreshed the history channel')
  for (const c of [a1, a2, b1]) c.close()
})
