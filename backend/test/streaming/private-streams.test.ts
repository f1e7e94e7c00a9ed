/**
 * PrivateStreams' decisions with in-memory streams (the real socket path is private-push.test.ts): the
 * budget and re-ranking, start pacing, health → polling mode, event → channel routing, payload mappers.
 */
import t from 'tap'
import { EventEmitter } from 'node:events'
import { PrivateStreams, applyTrade, channelsFor, crossPositionFromEvent, tradeFromEvent } from '../../streaming/private-streams.ts'

class FakeStream extends EventEmitter {
  up = false
  started = false
  stopped = false
  start() { this.started = true }
  async stop() { this.stopped = true }
  goUp() { this.up = true; this.emit('up') }
  goDown() { this.up = false; this.emit('down', 'test') }
}

function setup(budget: number, weights: Record<string, number>, startsPerMin = 600) {
  const calls: string[] = []
  const streams = new Map<string, FakeStream>()
  const applied: unknown[] = []
  const ps = new PrivateStreams({
    budget,
    startsPerMin,
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
        applied.push([u, ch, fn({ position: null, openOrders: [], running: [], open: [], totals: { margin: 0, pl: 0, quantity: 0, count: 0 } })])
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
  ps.watch('a'); ps.watch('b'); ps.watch('c')
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
  t.same(calls.slice(1), ['fetch:a:account', 'fetch:a:cross', 'fetch:a:positions+account+history'], 'each topic fetches just its channels; a partial trade payload is fetched')
  s.emit('event', { topic: 'futures/inverse/btc_usd/cross/position', data: { event: 'update', position: { quantity: 10, leverage: 2, margin: 100, entryPrice: 1, liquidation: null, totalPl: 1, deltaPl: 0, fundingFees: 0, tradingFees: 0, initialMargin: 1, maintenanceMargin: 1, runningMargin: 1, updatedAt: 0 } } })
  t.match(applied.at(-1), ['a', 'cross', { position: { quantity: 10, updatedAt: '1970-01-01T00:00:00.000Z' } }], 'a cross position payload is applied, no fetch')
  t.equal(calls.length, 4, 'no fetch for an applied cross position')
  s.goDown()
  t.equal(calls.at(-1), 'health:a:false', "'down' → back to polling")
  await ps.stop()
})

t.test('payload mappers', async (t) => {
  t.same(channelsFor('futures/inverse/btc_usd/isolated/trades', { event: 'open' }), ['positions', 'account'], 'an opened trade does not touch history')
  t.same(channelsFor('futures/inverse/btc_usd/isolated/trades', { event: 'closed' }), ['positions', 'account', 'history'], 'a closed trade refreshes history')
  t.same(channelsFor('nope', {}), [], 'unknown topic: nothing')
  t.equal(crossPositionFromEvent({ position: { quantity: 'x' } }), null, 'a malformed position is not applied')
  const full = {
    id: 't1', type: 'market', side: 'buy', quantity: 10, margin: 100, leverage: 10, price: 1, entryPrice: 1, entryMargin: 100, exitPrice: null, liquidation: 0.9,
    stoploss: 0, takeprofit: 0, pl: 5, openingFee: 1, closingFee: 0, maintenanceMargin: 1, sumFundingFees: 0, open: false, running: true, closed: false, canceled: false,
    createdAt: 1000, filledAt: 1000, closedAt: null, owner: 'secret-owner',
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
  t.notOk(calls.some((c) => c.startsWith('confirm:')), 'nothing is confirmed while the stream is not up')
  s.up = true
  ps.confirm()
  t.ok(calls.includes('confirm:u1:12345'), 'an up stream confirms its account as of its last message')
  await ps.stop()
})
