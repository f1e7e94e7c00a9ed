/**
 * LNM_SIGNED_CALLS_PER_SEC sets the gateway's per-key throttle of signed calls (default 5, the exchange's limit).
 * Counted at the simulator (which allows 1000/s here): the first round of an account is seven signed calls
 * (account, positions, cross, the history pages), so in its busiest second the default lets 5 through and 20/s
 * lets them all go at once.
 */
import t, { type Test } from 'tap'
import { testAccounts } from '../helpers/app.ts'
import { liveGateway } from '../streaming/live.ts'
import { WsClient, until } from '../streaming/helpers.ts'
import { maxPerWindow } from './helpers.ts'

const accounts = testAccounts(1).map((a) => ({ ...a, history: { closedTrades: 3 } }))

async function busiestSecond(t: Test, env: Record<string, string>): Promise<number> {
  const L = await liveGateway(t, { accounts, env: { POLL_INTERVAL_MS: '60000', PRIVATE_STREAMS_PER_NODE: '0', LOG_LEVEL: 'warn', ...env } })
  const u = await L.user(0)
  const ws = await WsClient.authed(L.g.wsUrl, u.token)
  t.teardown(() => ws.close())
  const signed = () => L.sim.stats.log().filter((e) => e.key === accounts[0]!.key)
  // the first round is over when the history has been read
  await until(() => signed().some((e) => e.path === '/v3/futures/isolated/trades/closed'), 10_000, 'the first round')
  const calls = signed()
  t.ok(calls.length >= 6, `the first round makes many signed calls (${calls.length})`)
  return maxPerWindow(calls.map((e) => e.ts))
}

t.test('by default: at most 5 signed calls per key in any second', async (t) => {
  const n = await busiestSecond(t, {})
  t.ok(n <= 5, `busiest second: ${n}`)
})

t.test('LNM_SIGNED_CALLS_PER_SEC=20: the same round goes out faster', async (t) => {
  const n = await busiestSecond(t, { LNM_SIGNED_CALLS_PER_SEC: '20' })
  t.ok(n > 5 && n <= 20, `busiest second: ${n}`)
})
