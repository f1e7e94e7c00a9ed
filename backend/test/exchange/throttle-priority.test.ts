/**
 * The per-key throttle's priority lanes: polls (high) go before history pages (low) without the key ever
 * going over its rate. Unit level on Throttle, then the real client and fetchers against the simulator at
 * watch start: the history load (five calls) is asked for first, the poll right after, and the poll's calls
 * still reach the exchange first.
 */
import t from 'tap'
import { Registry } from 'prom-client'
import { createMetrics } from '../../metrics.ts'
import { LnmClient } from '../../exchange/client.ts'
import { accountFetchers } from '../../exchange/fetchers.ts'
import { Throttle } from '../../exchange/resilience.ts'
import { startSimulator } from '../../simulator/index.ts'
import { relaxed } from '../simulator/helpers.ts'
import { testAccounts } from '../helpers/app.ts'

t.test('spaced: high callers go before waiting low ones, spacing kept', async (t) => {
  const th = new Throttle(20, { margin: 0 }) // 50 ms apart
  const signal = new AbortController().signal
  const grants: Array<{ who: string; at: number }> = []
  const take = (who: string, p: 'high' | 'low') =>
    th.acquire(undefined, signal, p).then((slot) => {
      grants.push({ who, at: Date.now() })
      slot?.sent(Date.now())
    })
  const all = [0, 1, 2, 3, 4].map((i) => take(`low${i}`, 'low'))
  all.push(...[0, 1, 2].map((i) => take(`high${i}`, 'high')))
  await Promise.all(all)
  const order = grants.map((g) => g.who)
  t.comment(order.join(' '))
  // asked in the same tick: every high caller books before a low one looks for a free slot
  t.same(order.slice(0, 3), ['high0', 'high1', 'high2'], 'high callers overtake the waiting low ones')
  t.same(order.slice(3), ['low0', 'low1', 'low2', 'low3', 'low4'], 'low callers keep their order')
  for (let i = 1; i < grants.length; i++)
    t.ok(grants[i]!.at - grants[i - 1]!.at >= 48, `grant ${i}: ≥ one interval after the previous (${grants[i]!.at - grants[i - 1]!.at} ms)`)
})

t.test('spaced: a low caller whose deadline passes gets null and does not hold the lane', async (t) => {
  const th = new Throttle(10, { margin: 0 }) // 100 ms apart
  const signal = new AbortController().signal
  ;(await th.acquire(undefined, signal, 'high'))?.sent(Date.now())
  void th.acquire(undefined, signal, 'high').then((s) => s?.sent(Date.now())) // books the next slot
  const late = await th.acquire(Date.now() + 20, signal, 'low')
  t.equal(late, null, 'would start after its deadline: null')
  const next = await th.acquire(undefined, signal, 'low')
  t.ok(next, 'the next low caller is served')
})

t.test('serial: a high caller goes before the waiting low ones', async (t) => {
  const th = new Throttle(50, { mode: 'serial', margin: 0 })
  const signal = new AbortController().signal
  const order: string[] = []
  const take = (who: string, p: 'high' | 'low') =>
    th.acquire(undefined, signal, p).then((slot) => {
      order.push(who)
      setTimeout(() => slot?.done(Date.now()), 5)
    })
  await Promise.all([take('low0', 'low'), take('low1', 'low'), take('low2', 'low'), take('high0', 'high')])
  t.same(order, ['low0', 'high0', 'low1', 'low2'])
})

t.test('at watch start the poll reaches the exchange before the history load', async (t) => {
  const sim = await startSimulator({
    accounts: testAccounts(1).map((a) => ({ ...a, history: { closedTrades: 3 } })),
    tickMs: 0,
    initialPrice: 100_000,
    rateLimit: relaxed,
  })
  // the client's default per-key rate (5/s): the five history calls alone take about a second
  const client = new LnmClient({ baseUrl: sim.url, metrics: createMetrics(new Registry()) })
  t.teardown(async () => {
    await client.close()
    await sim.close()
  })
  const acc = sim.accounts[0]!
  await client.time()
  const f = accountFetchers(client)
  const from = Date.now()
  // history asked for first (as when a slow round and a poll meet), the poll of account + positions right after
  const history = f.history(acc, { deadlineMs: 10_000 })
  const poll = Promise.all([f.account(acc, { deadlineMs: 10_000 }), f.positions(acc, { deadlineMs: 10_000 })])
  const [pollDone, historyDone] = await Promise.all([poll.then(() => Date.now()), history.then(() => Date.now())])
  const log = sim.stats.log().filter((e) => e.key === acc.key && e.ts >= from)
  const pollPaths = ['/v3/account', '/v3/futures/isolated/trades/running', '/v3/futures/isolated/trades/open']
  const isPoll = (p: string) => pollPaths.includes(p)
  t.comment(log.map((e) => `+${e.ts - from} ${e.path}`).join(', '))
  t.equal(log.filter((e) => isPoll(e.path)).length, 3, 'the poll: three calls')
  t.equal(log.filter((e) => !isPoll(e.path)).length, 5, 'the history load: five calls')
  const lastPoll = log.findLastIndex((e) => isPoll(e.path))
  const historyBeforeLastPoll = log.slice(0, lastPoll).filter((e) => !isPoll(e.path)).length
  t.equal(historyBeforeLastPoll, 0, 'every poll call left before the history calls')
  t.ok(pollDone < historyDone, 'the poll answered before the history load finished')
  for (let i = 1; i < log.length; i++) t.ok(log[i]!.ts - log[i - 1]!.ts >= 150, `per-key spacing kept (${log[i]!.ts - log[i - 1]!.ts} ms)`)
})
