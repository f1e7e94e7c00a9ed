/**
 * PrivateStreams' decisions with in-memory streams (the real socket path is private-push.test.ts): the
 * budget and re-ranking, start pacing, health → polling mode, event → channel routing, payload mappers.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { EventEmitter } from 'node:events'
import {
  PrivateStreams,
  STREAM_LIMITS_PER_IP,
  applyTrade,
  channelsFor,
  crossPositionFromEvent,
  privateStreamBudget,
  privateStreamRates,
  tradeFromEvent,
} from '../../streaming/private-streams.ts'

class FakeStream extends EventEmitter {
  up = false
  started = false
  stopped = false
  start() {
    this.started = true
  }
  async stop() {
    this.stopped = true
  }
  goUp() {
    this.up = true
    this.emit('up')
  }
  goDown() {
    this.up = false
    this.emit('down', 'test')
  }
}

function setup(budget: number, weights: Record<string, number>, startsPerMin = 600, connectsPerHour = 400) {
  const calls: string[] = []
  const streams = new Map<string, FakeStream>()
  const applied: unknown[] = []
  const ps = new PrivateStreams({
    budget,
    startsPerMin,
    connectsPerHour,
    weight: (u) => weights[u] ?? 0,
    credentials: async (u) => ({ key: `k-${u}`, secret: 's', passphrase: 'p' }),
    create: (_c, u) => {
      const s = new FakeStream()
      streams.set(u, s)
      return s
    },
    pollers: {
      setPushHealthy: (u, h) => void calls.push(`health:${u}:${h}`),
      fetchNow: (u, chs) => void calls.push(`fetch:${u}:${chs.join('+')}`),
      confirmByPush: (u, at) => void calls.push(`confirm:${u}:${at}`),
      apply: ((u: string, ch: string, fn: (c: any) => unknown) => {
        applied.push([
          u,
          ch,
          fn({ position: null, openOrders: [], running: [], open: [], totals: { margin: 0, pl: 0, quantity: 0, count: 0 } }),
        ])
        return true
      }) as any,
    },
  })
  return { ps, calls, streams, applied }
}
const tick = () => new Promise((r) => setImmediate(r))

t.test('budget to the most watched, re-ranked', async (t) => {
  const w: Record<string, number> = { a: 1, b: 5, c: 3 }
  const { ps, streams } = setup(2, w)
  ps.watch('a')
  ps.watch('b')
  ps.watch('c')
  await tick()
  t.same([...streams.keys()].sort(), ['b', 'c'], 'the two most-watched accounts get streams')
  t.equal(ps.size, 2, 'never more than the budget')
  w.a = 10
  ps.rebalance()
  await tick()
  t.ok(streams.get('c')!.stopped, 'the least watched loses its stream when another overtakes it')
  t.ok(streams.get('a')?.started, 'the newly most-watched gets one')
  ps.unwatch('b')
  t.ok(streams.get('b')!.stopped, 'unwatch stops the stream')
  await ps.stop()
})

t.test('starts are paced (authenticate budget)', async (t) => {
  const { ps, streams } = setup(20, {}, 12)
  for (let i = 0; i < 20; i++) ps.watch(`u${i}`)
  await tick()
  t.equal(streams.size, 6, 'a burst of 6 starts, the rest wait for the bucket (12/min)')
  await ps.stop()
})

t.test('the budget leaves one of the 32 stream sockets per IP to the public ticker stream', async (t) => {
  t.equal(STREAM_LIMITS_PER_IP.sockets, 32, 'LN Markets: 32 stream connections per IP')
  t.equal(privateStreamBudget(31, 1), 31, 'the default (31) and the ticker stream: 32 sockets')
  t.equal(privateStreamBudget(32, 1), 31, 'never more than 32 sockets with the ticker stream')
  t.equal(privateStreamBudget(32, 0), 32, 'no public stream: all 32')
  t.equal(privateStreamBudget(4, 1), 4, 'a smaller budget is kept')
  t.equal(privateStreamBudget(0, 1), 0, '0 = REST polling only')
})

t.test("a machine's workers share its connection attempts (LN Markets counts them per IP)", async (t) => {
  t.same(privateStreamRates(12, 1), { startsPerMin: 12, connectsPerHour: 400 }, 'one process: the whole budget')
  t.same(privateStreamRates(12, 2), { startsPerMin: 6, connectsPerHour: 200 }, 'two workers: half each')
  t.same(privateStreamRates(20, 3), { startsPerMin: 20 / 3, connectsPerHour: 133 }, 'three workers: 20 a minute together')
  const all = 4 * privateStreamRates(20, 4).startsPerMin
  t.ok(all <= STREAM_LIMITS_PER_IP.authenticatePerMinute, `four workers together: ${all} a minute, within 20`)
  t.equal(privateStreamRates(30, 1).startsPerMin, 20, 'never more than the 20 authenticate a minute of one IP')
})

t.test('reconnects take tokens of the same budget as starts, and go first', async (t) => {
  // 600 a minute, burst 300: the burst is spent by 300 starts, then one token every 100 ms
  const { ps, streams } = setup(400, {}, 600)
  for (let i = 0; i < 300; i++) ps.watch(`u${i}`)
  await tick()
  t.equal(streams.size, 300, 'the burst')
  const order: string[] = []
  const r1 = ps.admit().then(() => order.push('reconnect 1'))
  const r2 = ps.admit().then(() => order.push('reconnect 2'))
  ps.watch('late')
  await tick()
  t.notOk(streams.has('late'), 'a new start does not jump the reconnects waiting for a token')
  await Promise.all([r1, r2])
  t.same(order, ['reconnect 1', 'reconnect 2'], 'reconnects admitted in order as tokens come back')
  await ps.stop()
})

t.test('connection attempts per hour are capped (LN Markets: 500 new connections per IP per hour)', async (t) => {
  const { ps, streams } = setup(10, {}, 600, 3)
  for (let i = 0; i < 5; i++) ps.watch(`u${i}`)
  await tick()
  t.equal(streams.size, 3, 'three starts, then the hour budget is spent')
  let admitted = false
  void ps.admit().then(() => (admitted = true))
  await sleep(300) // proves no admission within 300 ms inside the hour window
  t.notOk(admitted, 'a reconnect waits for the hour window too')
  await ps.stop()
  t.ok(admitted, 'stop releases the waiting reconnects (they find their stream stopped)')
})

t.test('health and events', async (t) => {
  const { ps, calls, streams, applied } = setup(1, {})
  ps.watch('a')
  await tick()
  const s = streams.get('a')!
  s.goUp()
  t.same(calls, ['health:a:true'], "'up' → reconcile mode (the pollers then do a full fetch)")
  s.emit('event', { topic: 'wallet/deposit', data: { amount: 5 } })
  s.emit('event', { topic: 'futures/inverse/btc_usd/cross/orders', data: { event: 'canceled', order: {} } })
  s.emit('event', { topic: 'futures/inverse/btc_usd/isolated/trades', data: { event: 'funding', trade: { id: 'x', margin: 1 } } })
  t.same(
    calls.slice(1),
    ['fetch:a:account', 'fetch:a:cross', 'fetch:a:positions+account+history'],
    'each topic fetches just its channels; a partial trade payload is fetched',
  )
  s.emit('event', {
    topic: 'futures/inverse/btc_usd/cross/position',
    data: {
      event: 'update',
      position: {
        quantity: 10,
        leverage: 2,
        margin: 100,
        entryPrice: 1,
        liquidation: null,
        totalPl: 1,
        deltaPl: 0,
        fundingFees: 0,
        tradingFees: 0,
        initialMargin: 1,
        maintenanceMargin: 1,
        runningMargin: 1,
        updatedAt: 0,
      },
    },
  })
  t.match(
    applied.at(-1),
    ['a', 'cross', { position: { quantity: 10, updatedAt: '1970-01-01T00:00:00.000Z' } }],
    'a cross position payload is applied, no fetch',
  )
  t.equal(calls.length, 4, 'no fetch for an applied cross position')
  s.goDown()
  t.equal(calls.at(-1), 'health:a:false', "'down' → back to polling")
  await ps.stop()
})

t.test('payload mappers', async (t) => {
  t.same(
    channelsFor('futures/inverse/btc_usd/isolated/trades', { event: 'open' }),
    ['positions', 'account'],
    'an opened trade does not touch history',
  )
  t.same(
    channelsFor('futures/inverse/btc_usd/isolated/trades', { event: 'closed' }),
    ['positions', 'account', 'history'],
    'a closed trade refreshes history',
  )
  t.same(channelsFor('nope', {}), [], 'unknown topic: nothing')
  t.equal(crossPositionFromEvent({ position: { quantity: 'x' } }), null, 'a malformed position is not applied')
  const full = {
    id: 't1',
    type: 'market',
    side: 'buy',
    quantity: 10,
    margin: 100,
    leverage: 10,
    price: 1,
    entryPrice: 1,
    entryMargin: 100,
    exitPrice: null,
    liquidation: 0.9,
    stoploss: 0,
    takeprofit: 0,
    pl: 5,
    openingFee: 1,
    closingFee: 0,
    maintenanceMargin: 1,
    sumFundingFees: 0,
    open: false,
    running: true,
    closed: false,
    canceled: false,
    createdAt: 1000,
    filledAt: 1000,
    closedAt: null,
    owner: 'secret-owner',
  }
  const trade = tradeFromEvent({ event: 'filled', trade: full })
  t.ok(trade, 'a full trade payload maps to a FuturesTrade')
  t.equal(trade!.createdAt, new Date(1000).toISOString(), 'stream ms times become ISO')
  t.notOk('owner' in trade!, 'unknown fields are dropped')
  t.equal(tradeFromEvent({ event: 'funding', trade: { id: 't1', margin: 1 } }), null, 'a partial payload is not applied')
  const p = applyTrade({ running: [], open: [], totals: { margin: 0, pl: 0, quantity: 0, count: 0 } }, trade!)
  t.same(p.totals, { margin: 100, pl: 5, quantity: 10, count: 1 }, 'running trade added, totals recomputed')
  const closed = applyTrade(p, { ...trade!, running: false, closed: true })
  t.same([closed.running.length, closed.totals.count], [0, 0], 'a closed trade leaves the running list')
})

t.test('an up stream vouches for its account as of its last message; a down one does not', async (t) => {
  const { ps, calls, streams } = setup(1, { u1: 1 })
  ps.watch('u1')
  ps.rebalance()
  await tick()
  await tick()
  const s = streams.get('u1')!
  ;(s as unknown as { lastMessageTs: number }).lastMessageTs = 12345
  s.up = false
  ps.confirm()
  t.notOk(
    calls.some((c) => c.startsWith('confirm:')),
    'nothing is confirmed while the stream is not up',
  )
  s.up = true
  ps.confirm()
  t.ok(calls.includes('confirm:u1:12345'), 'an up stream confirms its account as of its last message')
  await ps.stop()
})
