/**
 * Recovery after an exchange outage, against the simulator with the exchange's documented limits (5 signed
 * requests/s per key, 1 public/s): the outage lasts long enough for the client's circuit breaker to open and
 * the account pollers to back off (at the 1 s poll period used here the breaker opens within the first seconds
 * of the 6 s outage; a poller that meets the open breaker aims its next poll at the end of its 10 s open time,
 * so without the wake-up the accounts would be polled again only some 5 s or more after the return); when the
 * exchange answers again, every account must be fresh again within one poll period (+ a margin for the poll
 * itself), because the breaker's health probe sees the return and the backed-off pollers poll at once (spread
 * over a short window) — and that burst must stay within the limits: no key above 5 requests in any sliding
 * second, no public bucket above 1, no 429 from the exchange.
 */
import t from 'tap'
import { testAccounts } from '../helpers/app.ts'
import { liveGateway } from './live.ts'
import { WsClient, sleep, until } from './helpers.ts'

/**
 * a fifth of the default poll period. The margin is what does not scale with it: the poll's own signed calls at
 * 5/s (~0.6 s), and one more second of the public throttle (1/s, shared with the ticker): a health probe in
 * flight as the exchange returns still fails, and the next one waits for the next public slot. At the default
 * 5 s poll period both fit in the period itself.
 */
const POLL_MS = 1000
/** was 10 s: the breaker's 10 s open time, not the outage's length, is what the wake-up must beat */
const OUTAGE_MS = 6000
const MARGIN_MS = 2500
const ACCOUNTS = 6

/** the most entries of a sorted list of times inside any window of `windowMs` */
function maxInWindow(ts: number[], windowMs: number): number {
  let best = 0
  let lo = 0
  for (let hi = 0; hi < ts.length; hi++) {
    while (ts[hi]! - ts[lo]! >= windowMs) lo++
    best = Math.max(best, hi - lo + 1)
  }
  return best
}

const ACCOUNT_CHANNELS = new Set(['account', 'positions'])
/** the receive time of the first account/positions frame (data or `fresh`) with data from at or after `since` */
function freshAt(c: WsClient, since: number): number | null {
  for (let i = 0; i < c.frames.length; i++) {
    const f = c.frames[i]
    if (f.type === 'data_update' && ACCOUNT_CHANNELS.has(f.channel) && f.sourceTs >= since) return c.at[i]!
    if (f.type === 'fresh' && f.channels.some((ch: any) => ACCOUNT_CHANNELS.has(ch.channel) && ch.sourceTs >= since)) return c.at[i]!
  }
  return null
}

t.test('after an outage every account is fresh within one poll period, within the exchange limits', async (t) => {
  const live = await liveGateway(t, {
    accounts: testAccounts(ACCOUNTS),
    env: { POLL_INTERVAL_MS: String(POLL_MS), TICKER_INTERVAL_MS: '2000', LOG_LEVEL: 'warn' },
    sim: { rateLimit: { publicPerSec: 1, authPerSec: 5 } },
  })
  const clients: WsClient[] = []
  for (let i = 0; i < ACCOUNTS; i++) {
    const u = await live.user(i)
    const c = await WsClient.authed(live.g.wsUrl, u.token)
    t.teardown(() => c.close())
    clients.push(c)
  }
  await Promise.all(clients.map((c) => c.next((f) => f.type === 'data_update' && f.channel === 'positions', 15_000)))

  const outageAt = Date.now()
  live.sim.faults.set({ outage: true })
  await Promise.all(clients.map((c) => c.next((f) => f.type === 'status' && f.scope === 'account' && f.upstream === 'down', 3 * POLL_MS)))
  t.pass(`every account down ${Date.now() - outageAt} ms into the outage`)
  await sleep(OUTAGE_MS - (Date.now() - outageAt))
  t.not(live.g.app.exchange.client.circuitState, 'closed', 'the outage opened the circuit breaker')

  const back = Date.now()
  live.sim.faults.reset()
  const limit = POLL_MS + MARGIN_MS
  await until(() => clients.every((c) => freshAt(c, back) !== null), limit + 10_000, {
    what: 'every account fresh after the outage',
    stepMs: 50,
  })
  const recovery = clients.map((c) => {
    const at = freshAt(c, back)
    return at === null ? null : at - back
  })
  // the public requests around the return (health probes and the ticker), relative to it: what a slow recovery waited on
  const publicAround = live.sim.stats
    .log()
    .filter((e) => e.key === undefined && e.ts >= back - 2000 && e.ts <= back + limit)
    .map((e) => `${e.path}@${e.ts - back}:${e.status}`)
    .join(' ')
  t.comment(`fresh again after (ms): ${recovery.join(', ')} (limit ${limit}); public requests: ${publicAround}`)
  t.ok(
    recovery.every((ms) => ms !== null && ms <= limit),
    `every account fresh within one poll period (+ ${MARGIN_MS} ms) of the exchange's return: ${recovery.join(', ')} ms; public requests: ${publicAround}`,
  )
  t.equal(live.g.app.exchange.client.circuitState, 'closed', 'the breaker closed again')

  // the recovery stayed within the documented limits: everything the exchange saw from the return on
  await sleep(POLL_MS)
  const seen = live.sim.stats.log().filter((e) => e.ts >= back)
  const byKey = new Map<string, number[]>()
  for (const e of seen) {
    const k = e.key ?? '(public)'
    let l = byKey.get(k)
    if (!l) byKey.set(k, (l = []))
    l.push(e.ts)
  }
  let privatePeak = 0
  let publicPeak = 0
  for (const [k, l] of byKey) {
    l.sort((a, b) => a - b)
    if (k === '(public)') publicPeak = maxInWindow(l, 1000)
    else privatePeak = Math.max(privatePeak, maxInWindow(l, 1000))
  }
  t.equal([...byKey.keys()].filter((k) => k !== '(public)').length, ACCOUNTS, 'every key polled after the return')
  t.ok(privatePeak <= 5, `at most 5 signed requests per key in any second during recovery (peak ${privatePeak})`)
  t.ok(publicPeak <= 1, `at most 1 public request in any second during recovery (peak ${publicPeak})`)
  t.equal(seen.filter((e) => e.status === 429).length, 0, 'no 429 from the exchange during recovery')
})
