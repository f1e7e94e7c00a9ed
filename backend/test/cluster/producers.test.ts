/**
 * The real streaming stack on RedisBus, two nodes in one process (no HTTP, no database): each node has its own
 * Hub, AccountPollers and TickerFeed exactly as the streaming plugin wires them, over one fake exchange that
 * counts calls. Interest comes from hub.touch() (the /api/dashboard path), so hub grace and demand edges are
 * the real ones. Checks: one poller per account and one ticker feed across the cluster, both hubs' caches
 * filled and kept current, takeover after a crash, everything stops when no node wants the account.
 */
import t from 'tap'
import { createMetrics } from '../../metrics.ts'
import { AccountPollers } from '../../streaming/account-pollers.ts'
import { TICKER_TOPIC, accountTopic } from '../../streaming/bus.ts'
import { Hub } from '../../streaming/hub.ts'
import { RedisBus } from '../../streaming/redis-bus.ts'
import type { AccountSource, Credentials, TickerSource } from '../../streaming/sources.ts'
import { TickerFeed } from '../../streaming/ticker-feed.ts'
import { sleep, until } from '../streaming/helpers.ts'
import { withRedis, type TestRedis } from './redis.ts'

const POLL_MS = 200
const TTL = 600

class FakeExchange implements AccountSource, TickerSource {
  calls: Array<{ what: string; key: string; at: number }> = []
  balance = 100
  price = 50_000
  async account(creds: Credentials) {
    this.calls.push({ what: 'account', key: creds.key, at: Date.now() })
    await sleep(2)
    return { username: creds.key, balance: this.balance, syntheticUsdBalance: 0, feeTier: 0, equity: this.balance }
  }
  async positions(creds: Credentials) {
    this.calls.push({ what: 'positions', key: creds.key, at: Date.now() })
    await sleep(2)
    return { running: [], open: [], totals: { margin: 0, pl: 0, quantity: 0, count: 0 } }
  }
  async fetchTicker() {
    this.calls.push({ what: 'ticker', key: '', at: Date.now() })
    const p = this.price
    return { data: { index: p, lastPrice: p, bidPrice: p - 1, askPrice: p + 1, fundingRate: 0, fundingTime: '' }, ts: Date.now() }
  }
  count(what: string, from: number, to = Infinity): number {
    return this.calls.filter((c) => c.what === what && c.at >= from && c.at < to).length
  }
}

type Tap = { teardown(fn: () => unknown): void }

function gatewayNode(t: Tap, r: TestRedis, ex: FakeExchange, name: string) {
  const bus = new RedisBus({ url: r.url, prefix: r.prefix, nodeId: `${name}-${r.prefix}`, leaseTtlMs: TTL })
  const pollers = new AccountPollers({
    bus,
    source: ex,
    credentials: async (userId) => ({ key: `k-${userId}`, secret: 's', passphrase: 'p' }),
    intervalMs: POLL_MS,
  })
  const ticker = new TickerFeed({ bus, source: ex, stream: null, intervalMs: POLL_MS })
  const hub = new Hub({
    bus,
    verify: async () => {
      throw Object.assign(new Error('no sockets here'), { reason: 'invalid' })
    },
    source: 'simulator',
    metrics: createMetrics(),
    maxConnections: 10,
    maxConnectionsPerUser: 10,
    authTimeoutMs: 10_000,
    heartbeatMs: 25_000,
    maxBufferedBytes: 1 << 20,
    rateLimitPerSec: 20,
    staleAfterMs: 30_000,
    graceMs: 500,
    coldWaitMs: 2000,
  })
  pollers.start()
  ticker.start()
  hub.start()
  let alive = true
  const stop = async () => {
    if (!alive) return
    alive = false
    await hub.stop()
    await ticker.stop()
    await pollers.stop()
    await bus.close()
  }
  /** a crash: producers die with the process, nothing is released */
  const crash = async () => {
    alive = false
    await hub.stop()
    await ticker.stop()
    await pollers.stop()
    bus.kill()
  }
  t.teardown(stop)
  const balance = (userId: string): number | undefined => {
    const e = hub.cache.get(accountTopic(userId), 'account')
    return e ? (JSON.parse(e.json) as { balance: number }).balance : undefined
  }
  return { name, bus, pollers, ticker, hub, stop, crash, balance }
}

t.test('two nodes, one account, one ticker: one producer each across the cluster, both caches current', async (t) => {
  const r = await withRedis(t)
  if (!r) return
  const ex = new FakeExchange()
  const a = gatewayNode(t, r, ex, 'a')
  const b = gatewayNode(t, r, ex, 'b')
  await Promise.all([a.bus.whenReady(), b.bus.whenReady()])
  const U = 'user-1'

  // dashboards on both nodes keep the account watched (touch = /api/dashboard: watch + grace)
  let touching = true
  const keepTouching = (async () => {
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- cleared by the test once the node is stopped
    while (touching) {
      await Promise.all([a.hub.touch(U), b.hub.touch(U)])
      await sleep(150)
    }
  })()
  t.teardown(async () => {
    touching = false
    await keepTouching
  })

  t.ok(await until(() => a.balance(U) === 100 && b.balance(U) === 100, 3000), 'both hubs have the account snapshot')
  t.ok(
    await until(() => !!a.hub.cache.get(TICKER_TOPIC, 'ticker') && !!b.hub.cache.get(TICKER_TOPIC, 'ticker'), 3000),
    'both hubs have the ticker',
  )
  t.ok(b.hub.cache.get(accountTopic(U), 'positions') && a.hub.cache.get(accountTopic(U), 'positions'), 'and the positions')
  t.equal(a.pollers.size + b.pollers.size, 1, `exactly one account poller in the cluster (a: ${a.pollers.size}, b: ${b.pollers.size})`)
  t.equal(Number(a.ticker.isWatching) + Number(b.ticker.isWatching), 1, 'exactly one running ticker feed in the cluster')

  // upstream rate: one poller's worth over 2 s
  const from = Date.now()
  await sleep(2000)
  const accountCalls = ex.count('account', from, Date.now())
  const tickerCalls = ex.count('ticker', from, Date.now())
  const expected = 2000 / POLL_MS
  t.ok(
    accountCalls >= expected * 0.7 && accountCalls <= expected * 1.3,
    `account calls in 2 s: ${accountCalls}, one poller's worth is ${expected} (two would be ${expected * 2})`,
  )
  t.ok(
    tickerCalls >= expected * 0.7 && tickerCalls <= expected * 1.3,
    `ticker calls in 2 s: ${tickerCalls}, one feed's worth is ${expected}`,
  )
  t.comment(`2 nodes, 1 account: ${accountCalls} account calls / 2 s at POLL_MS=${POLL_MS} (single-poller expectation ${expected})`)

  // a change reaches both nodes
  ex.balance = 250
  const changedAt = Date.now()
  t.ok(await until(() => a.balance(U) === 250 && b.balance(U) === 250, 2000), 'a balance change reaches both hubs')
  t.comment(`change visible on both nodes after ${Date.now() - changedAt} ms (poll interval ${POLL_MS} ms)`)

  // the node running the producers crashes: the other takes over and keeps its cache current
  const holder = a.pollers.size === 1 ? a : b
  const survivor = holder === a ? b : a
  t.comment(`account poller on ${holder.name}, ticker feed on ${a.ticker.isWatching ? 'a' : 'b'}`)
  touching = false
  await keepTouching
  let survivorTouching = true
  const keepSurvivor = (async () => {
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- cleared by the test once the node is stopped
    while (survivorTouching) {
      await survivor.hub.touch(U)
      await sleep(150)
    }
  })()
  t.teardown(async () => {
    survivorTouching = false
    await keepSurvivor
  })
  const crashedAt = Date.now()
  await holder.crash()
  t.ok(
    await until(() => survivor.pollers.size === 1, TTL * 4),
    `node ${survivor.name} starts the account poller after ${holder.name} crashed`,
  )
  const took = Date.now() - crashedAt
  t.ok(took <= TTL * 2 + POLL_MS, `within about two lease TTLs (${took} ms, TTL ${TTL} ms)`)
  t.ok(await until(() => survivor.ticker.isWatching, TTL * 4), 'and the ticker feed')
  ex.balance = 300
  t.ok(
    await until(() => survivor.balance(U) === 300, 3000),
    "the survivor's cache keeps following the exchange (the new producer's epoch is accepted)",
  )
  t.comment(`takeover after crash: ${took} ms`)

  // nobody wants the account any more: grace, unwatch, the poller stops
  survivorTouching = false
  await keepSurvivor
  t.ok(await until(() => survivor.pollers.size === 0, 3000), 'after the grace period with no demand anywhere, the poller stops')
  const quietFrom = Date.now()
  await sleep(POLL_MS * 3) // proves no account call within 3 poll intervals once stopped
  t.equal(ex.count('account', quietFrom), 0, 'no more account calls')
})

t.test('a node joining later gets the current state at once from the running producer', async (t) => {
  const r = await withRedis(t)
  if (!r) return
  const ex = new FakeExchange()
  const a = gatewayNode(t, r, ex, 'a')
  const b = gatewayNode(t, r, ex, 'b')
  await Promise.all([a.bus.whenReady(), b.bus.whenReady()])
  const U = 'user-2'
  await a.hub.touch(U)
  t.equal(a.balance(U), 100, "node a's first touch waited for the first poll")
  ex.balance = 120
  t.ok(await until(() => a.balance(U) === 120, 2000), 'node a follows')
  const t0 = Date.now()
  await b.hub.touch(U)
  const waited = Date.now() - t0
  t.equal(b.balance(U), 120, "node b's first touch is answered with the running producer's latest state")
  t.ok(waited < 1000, `at once: the replay arrives in ${waited} ms (a cold cache would wait for coldWaitMs 2000 ms)`)
  const ea = a.hub.cache.get(accountTopic(U), 'account')!
  const eb = b.hub.cache.get(accountTopic(U), 'account')!
  t.ok(eb.epoch === ea.epoch && eb.seq <= ea.seq, "node b's snapshot is the running producer's (same epoch)")
  t.equal(a.pollers.size + b.pollers.size, 1, 'still one poller')
  t.comment(`late joiner served in ${waited} ms`)
})
