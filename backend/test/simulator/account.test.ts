/**
 * Issue 9 on the simulator: cross margin over REST (reads and writes) and its private topics, history with
 * cursors (closed, canceled, filled cross orders, funding fees isolated and cross), wallet events, the
 * SDK-shaped isolated funding event, the stricter checks, and the demo trader's seeded account.
 * Every request is signed by the test's own HMAC code and verified by the simulator on a real port.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { WebSocket } from 'ws'
import { demoAccounts, startSimulator, type Simulator } from '../../simulator/index.ts'
import { authHeaders, call, connect, privateConn, raw, relaxed, testAccounts } from './helpers.ts'
import { until } from '../streaming/helpers.ts'

const SATS = 1e8
const FEE = 0.001
const feeOf = (q: number, p: number) => Math.round((q / p) * SATS * FEE)
const plOf = (side: 'buy' | 'sell', q: number, entry: number, exit: number) =>
  Math.round((side === 'buy' ? 1 : -1) * q * (1 / entry - 1 / exit) * SATS)
const P = 'futures/inverse/btc_usd/'

async function setup(t: { teardown(fn: () => unknown): void }, extra: Parameters<typeof startSimulator>[0] = {}): Promise<Simulator> {
  const sim = await startSimulator({
    accounts: testAccounts(),
    tickMs: 0,
    initialPrice: 100_000,
    rateLimit: relaxed,
    admin: true,
    ...extra,
  })
  t.teardown(() => sim.close())
  return sim
}

t.test('cross margin: deposit, market and limit orders, fills, close, withdraw, leverage', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]!
  const balance = async () => (await call(sim, alice, 'GET', '/account')).json.balance as number
  const empty = (await call(sim, alice, 'GET', '/futures/cross/position')).json
  t.match(
    empty,
    { quantity: 0, margin: 0, entryPrice: null, liquidation: null, totalPl: 0, deltaPl: 0 },
    'a fresh account: flat, nothing in it',
  )
  t.equal(
    (await call(sim, alice, 'POST', '/futures/cross/order', { type: 'market', side: 'buy', quantity: 100 })).json.code,
    'insufficientMargin',
    'no margin → refused',
  )

  const b0 = await balance()
  const dep = await call(sim, alice, 'POST', '/futures/cross/deposit', { amount: 1_000_000 })
  t.equal(dep.status, 200)
  t.equal(dep.json.margin, 1_000_000, 'deposit moves sats into the cross margin')
  t.equal(await balance(), b0 - 1_000_000, '… out of the balance')
  t.equal((await call(sim, alice, 'POST', '/futures/cross/deposit', { amount: 1e12 })).json.code, 'insufficientBalance')
  t.equal((await call(sim, alice, 'POST', '/futures/cross/deposit', { amount: 1.5 })).status, 400, 'amount must be an integer')
  t.equal((await call(sim, alice, 'PUT', '/futures/cross/leverage', { leverage: 20 })).json.leverage, 20, 'leverage set')

  const ask = (await call(sim, undefined, 'GET', '/futures/ticker')).json.prices[0].askPrice as number
  const m = await call(sim, alice, 'POST', '/futures/cross/order', { type: 'market', side: 'buy', quantity: 1_000 })
  t.equal(m.status, 200, 'market order accepted')
  t.match(
    m.json,
    {
      type: 'market',
      side: 'buy',
      quantity: 1_000,
      price: ask,
      open: false,
      filled: true,
      canceled: false,
      canceledAt: null,
      tradingFee: feeOf(1_000, ask),
    },
    'filled at the ask with the trading fee',
  )
  t.ok(m.json.filledAt.endsWith('Z') && m.json.createdAt.endsWith('Z'), 'ISO times')
  const pos = (await call(sim, alice, 'GET', '/futures/cross/position')).json
  t.match(
    pos,
    { quantity: 1_000, entryPrice: ask, leverage: 20, margin: 1_000_000 - feeOf(1_000, ask), tradingFees: feeOf(1_000, ask) },
    'long position',
  )
  t.equal(pos.initialMargin, Math.round(((1_000 / ask) * SATS) / 20), 'initial margin = notional / leverage')
  t.ok(pos.liquidation > 0 && pos.liquidation < ask, 'long liquidation below the entry')
  t.equal(pos.runningMargin, pos.margin + pos.deltaPl, 'runningMargin = margin + deltaPl')

  const lim = (await call(sim, alice, 'POST', '/futures/cross/order', { type: 'limit', side: 'sell', quantity: 400, price: 105_000 })).json
  t.match(lim, { open: true, filled: false, price: 105_000, filledAt: null }, 'limit order rests')
  t.same(
    (await call(sim, alice, 'GET', '/futures/cross/orders/open')).json.map((o: any) => o.id),
    [lim.id],
    'listed as open',
  )
  t.equal(
    (await call(sim, alice, 'POST', '/futures/cross/order', { type: 'limit', side: 'sell', quantity: 1 })).status,
    400,
    'a limit order needs a price',
  )
  t.equal(
    (await call(sim, alice, 'POST', '/futures/cross/order', { type: 'limit', side: 'sell', quantity: 1, price: 100_000.3 })).status,
    400,
    'price on the 0.5 tick',
  )
  sim.market.setPrice(105_100)
  t.equal((await call(sim, alice, 'GET', '/futures/cross/orders/open')).json.length, 0, 'filled once the bid crosses 105 000')
  const after = (await call(sim, alice, 'GET', '/futures/cross/position')).json
  const realised = plOf('buy', 400, ask, 105_000)
  t.equal(after.quantity, 600, 'reduced to 600')
  t.equal(after.totalPl, realised, 'the reduced part realised its P&L')
  t.equal(after.entryPrice, ask, 'entry unchanged by a reducing fill')

  const c2 = (await call(sim, alice, 'POST', '/futures/cross/order', { type: 'limit', side: 'buy', quantity: 50, price: 90_000 })).json
  const canceled = await call(sim, alice, 'POST', '/futures/cross/order/cancel', { id: c2.id })
  t.match(canceled.json, { open: false, canceled: true, filled: false }, 'cancel')
  t.ok(canceled.json.canceledAt, 'canceledAt set')
  t.equal(
    (await call(sim, sim.accounts[1], 'POST', '/futures/cross/order/cancel', { id: c2.id })).json.code,
    'orderNotOwned',
    "another trader's order",
  )

  const closeOrder = (await call(sim, alice, 'POST', '/futures/cross/position/close')).json
  t.match(closeOrder, { type: 'market', side: 'sell', quantity: 600, filled: true }, 'close = a market order for the whole position')
  const flat = (await call(sim, alice, 'GET', '/futures/cross/position')).json
  t.match(flat, { quantity: 0, entryPrice: null, liquidation: null, initialMargin: 0 }, 'flat')
  t.equal((await call(sim, alice, 'POST', '/futures/cross/position/close')).json.code, 'noPosition')

  const filled = (await call(sim, alice, 'GET', '/futures/cross/orders/filled')).json
  t.equal(filled.data.length, 3, 'three filled orders')
  t.same(
    filled.data.map((o: any) => o.quantity),
    [600, 400, 1_000],
    'newest first',
  )
  const page1 = (await call(sim, alice, 'GET', '/futures/cross/orders/filled?limit=2')).json
  t.equal(page1.data.length, 2)
  t.type(page1.nextCursor, 'string', 'a cursor when there is more')
  const page2 = (await call(sim, alice, 'GET', `/futures/cross/orders/filled?limit=2&cursor=${encodeURIComponent(page1.nextCursor)}`)).json
  t.same(
    page2.data.map((o: any) => o.quantity),
    [1_000],
    'the cursor continues without overlap',
  )
  t.equal(page2.nextCursor, null)

  const w = await call(sim, alice, 'POST', '/futures/cross/withdraw', { amount: flat.margin + 1 })
  t.equal(w.json.code, 'insufficientMargin', 'cannot withdraw more than the free margin')
  const bw = await balance()
  const out = (await call(sim, alice, 'POST', '/futures/cross/withdraw', { amount: 1_000 })).json
  t.equal(out.margin, flat.margin - 1_000, 'withdraw')
  t.equal(await balance(), bw + 1_000, 'back to the balance')
  const transfers = (await call(sim, alice, 'GET', '/futures/cross/transfers')).json.data
  t.same(
    transfers.map((x: any) => x.amount),
    [-1_000, 1_000_000],
    'transfers listed, newest first, signed',
  )
})

t.test('cross funding and liquidation', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]!
  await call(sim, alice, 'POST', '/futures/cross/deposit', { amount: 200_000 })
  await call(sim, alice, 'PUT', '/futures/cross/leverage', { leverage: 10 })
  await call(sim, alice, 'POST', '/futures/cross/order', { type: 'market', side: 'sell', quantity: 1_500 })
  const before = (await call(sim, alice, 'GET', '/futures/cross/position')).json
  t.ok(before.liquidation > 100_000, 'short liquidation above the price')
  sim.market.settleFunding()
  const s = (await call(sim, undefined, 'GET', '/futures/funding-settlements')).json.data[0]!
  const paid = -Math.round((1_500 / s.fixingPrice) * s.fundingRate * SATS)
  const fees = (await call(sim, alice, 'GET', '/futures/cross/funding-fees')).json
  t.same(
    fees.data,
    [{ fee: paid, settlementId: s.id, time: s.time, tradeId: null }],
    'cross funding fee (a short receives a positive rate), tradeId null',
  )
  const afterFunding = (await call(sim, alice, 'GET', '/futures/cross/position')).json
  t.equal(afterFunding.fundingFees, paid, 'summed on the position')
  t.equal(afterFunding.margin, before.margin - paid, 'out of (or into) the margin')

  sim.market.setPrice(before.liquidation + 500)
  const liq = (await call(sim, alice, 'GET', '/futures/cross/position')).json
  t.equal(liq.quantity, 0, 'liquidated when the ask reaches the liquidation price')
  t.equal(liq.margin, 0, 'the margin is gone')
  const last = (await call(sim, alice, 'GET', '/futures/cross/orders/filled?limit=1')).json.data[0]!
  t.match(last, { type: 'liquidation', side: 'buy', quantity: 1_500 }, 'a liquidation order in the filled list')
})

t.test('private topics: cross/orders, cross/position, wallet, isolated funding shape', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]!
  const bob = sim.accounts[1]!
  const topics = [`${P}isolated/trades`, `${P}cross/orders`, `${P}cross/position`, 'wallet/deposit', 'wallet/withdrawal']
  const a = await privateConn(sim, alice, topics, t)
  const b = await privateConn(sim, bob, topics, t)
  const on = (c: typeof a, topic: string, pred: (d: any) => boolean = () => true) =>
    c.next((f) => f.params?.topic === topic && pred(f.params.data))

  await call(sim, alice, 'POST', '/futures/cross/deposit', { amount: 500_000 })
  const dep = await on(a, `${P}cross/position`, (d) => d.event === 'deposit')
  t.match(dep.params.data, { pair: 'btc_usd', event: 'deposit', position: { margin: 500_000, quantity: 0 } }, 'deposit → cross/position')
  t.type(dep.params.data.position.updatedAt, 'number', 'stream times are ms')

  const o = (await call(sim, alice, 'POST', '/futures/cross/order', { type: 'limit', side: 'buy', quantity: 100, price: 95_000 })).json
  const created = await on(a, `${P}cross/orders`, (d) => d.order.id === o.id)
  t.match(
    created.params.data,
    { pair: 'btc_usd', event: 'new', order: { id: o.id, open: true, filled: false } },
    "a new limit order → 'new'",
  )
  t.type(created.params.data.order.createdAt, 'number')
  sim.market.setPrice(94_000)
  const fill = await on(a, `${P}cross/orders`, (d) => d.event === 'limit')
  t.match(fill.params.data.order, { id: o.id, filled: true, open: false }, "a resting limit order filled → 'limit'")
  t.match(
    (await on(a, `${P}cross/position`, (d) => d.event === 'order')).params.data.position,
    { quantity: 100, entryPrice: 95_000 },
    'the position after the fill',
  )
  const o2 = (await call(sim, alice, 'POST', '/futures/cross/order', { type: 'limit', side: 'buy', quantity: 10, price: 80_000 })).json
  await call(sim, alice, 'POST', '/futures/cross/order/cancel', { id: o2.id })
  t.match(
    (await on(a, `${P}cross/orders`, (d) => d.event === 'canceled')).params.data.order,
    { id: o2.id, canceled: true },
    "cancel → 'canceled'",
  )

  const iso = (await call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'market', side: 'buy', quantity: 1_000, leverage: 10 }))
    .json
  sim.market.settleFunding()
  const fund = await on(a, `${P}isolated/trades`, (d) => d.event === 'funding')
  const s = (await call(sim, undefined, 'GET', '/futures/funding-settlements')).json.data[0]!
  const running = (await call(sim, alice, 'GET', '/futures/isolated/trades/running')).json[0]
  t.same(
    Object.keys(fund.params.data.trade).sort(),
    ['clientId', 'fundedAt', 'fundingFee', 'id', 'liquidationPrice', 'margin'],
    "the SDK's funding shape",
  )
  t.match(
    fund.params.data.trade,
    {
      id: iso.id,
      margin: running.margin,
      liquidationPrice: running.liquidation,
      fundingFee: running.sumFundingFees,
      fundedAt: Date.parse(s.time),
    },
    'values match REST',
  )
  t.match(
    (await on(a, `${P}cross/position`, (d) => d.event === 'funding')).params.data.position,
    { quantity: 100 },
    'cross funding → cross/position',
  )

  const r = await raw(sim.port, {
    method: 'POST',
    path: '/__sim/wallet/deposit',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', amount: 21_000 }),
  })
  t.equal(r.status, 200)
  const balance = (await call(sim, alice, 'GET', '/account')).json.balance
  t.match(
    (await on(a, 'wallet/deposit')).params.data,
    { currency: 'btc', network: 'lightning', amount: 21_000, balance, status: 'settled' },
    'wallet/deposit with the new balance',
  )
  sim.wallet.withdraw('alice', 5_000, 'bitcoin')
  t.match(
    (await on(a, 'wallet/withdrawal')).params.data,
    { currency: 'btc', network: 'bitcoin', amount: 5_000, fee: Number, status: 'processed', txId: String },
    'wallet/withdrawal',
  )
  t.equal(
    (
      await raw(sim.port, {
        method: 'POST',
        path: '/__sim/wallet/deposit',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'alice', amount: -1 }),
      })
    ).status,
    400,
    'a bad amount → 400',
  )
  t.equal(
    (
      await raw(sim.port, {
        method: 'POST',
        path: '/__sim/wallet/deposit',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'nobody', amount: 1 }),
      })
    ).status,
    404,
    'an unknown username → 404',
  )

  const post = (path: string, body: unknown) =>
    raw(sim.port, { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const opened = await post('/__sim/trades', { username: 'alice', side: 'sell', quantity: 50, leverage: 5 })
  t.equal(opened.status, 200, 'admin: open a trade for alice')
  const openedTrade = opened.json
  t.match(
    (await on(a, `${P}isolated/trades`, (d) => d.trade?.id === openedTrade.id)).params.data,
    { event: 'filled' },
    "the admin trade is pushed like a trader's own",
  )
  t.ok(
    (await call(sim, alice, 'GET', '/futures/isolated/trades/running')).json.some((x: { id: string }) => x.id === openedTrade.id),
    'and is running',
  )
  const closedR = await post('/__sim/trades/close', { username: 'alice', id: openedTrade.id })
  t.equal(closedR.status, 200, 'admin: close it')
  t.match(
    (await on(a, `${P}isolated/trades`, (d) => d.trade?.id === openedTrade.id && d.event === 'closed')).params.data.trade,
    { closed: true, running: false },
    'the close is pushed',
  )
  t.equal((await post('/__sim/trades', { username: 'alice', side: 'up', quantity: 50, leverage: 5 })).status, 400, 'a bad side → 400')
  t.equal(
    (await post('/__sim/trades', { username: 'alice', side: 'buy', type: 'limit', quantity: 50, leverage: 5 })).status,
    400,
    'a limit without price → 400',
  )
  t.equal(
    (await post('/__sim/trades/close', { username: 'alice', id: openedTrade.id })).status,
    400,
    'closing a closed trade → 400 (tradeNotRunning)',
  )
  t.equal((await post('/__sim/trades/close', { username: 'nobody', id: 'x' })).status, 404, 'an unknown username → 404')

  t.notOk(
    b.frames.some((f) => f.method === 'subscription'),
    "bob never sees alice's events",
  )
  const anon = await connect(sim, t)
  t.equal((await anon.rpc('subscribe', { topics: [`${P}cross/position`] })).error.code, -32401, 'private cross topic needs authentication')
  t.equal((await anon.rpc('subscribe', { topics: ['wallet/deposit'] })).error.code, -32401, 'wallet topic needs authentication')
})

t.test('history: closed and canceled trades and funding fees page back with cursors', async (t) => {
  const sim = await setup(t, { accounts: [{ ...testAccounts()[0]!, history: { closedTrades: 6 } }] })
  const alice = sim.accounts[0]!
  const all = (await call(sim, alice, 'GET', '/futures/isolated/trades/closed')).json.data
  t.equal(all.length, 7, 'six closed + one canceled (closed lists both)')
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const q: string = cursor ? `?limit=3&cursor=${encodeURIComponent(cursor)}` : '?limit=3'
    const page: any = (await call(sim, alice, 'GET', `/futures/isolated/trades/closed${q}`)).json
    seen.push(...page.data.map((x: any) => x.id))
    cursor = page.nextCursor
  } while (cursor)
  t.same(
    seen,
    all.map((x: any) => x.id),
    'pages of 3 give the same list, no gap, no overlap',
  )
  for (let i = 1; i < all.length; i++) t.ok(Date.parse(all[i - 1].closedAt) > Date.parse(all[i].closedAt), 'newest first')
  const closed = all.filter((x: any) => x.closed)
  for (const c of closed) t.equal(c.pl, plOf(c.side, c.quantity, c.entryPrice, c.exitPrice), 'P&L of a seeded closed trade follows §8.2')
  t.equal((await call(sim, alice, 'GET', '/futures/isolated/trades/canceled')).json.data.length, 1, 'one canceled')
  const fees = (await call(sim, alice, 'GET', '/futures/isolated/funding-fees')).json.data
  const settlements = (await call(sim, undefined, 'GET', '/futures/funding-settlements')).json.data
  t.equal(fees.length, 6, 'one funding fee per seeded closed trade')
  t.equal(settlements.length, 6, 'at past fixings')
  for (const f of fees) {
    t.ok(
      settlements.some((s: any) => s.id === f.settlementId && s.time === f.time),
      'each fee points at a settlement',
    )
    t.ok(
      closed.some((c: any) => c.id === f.tradeId && c.sumFundingFees === f.fee),
      'and at its trade',
    )
    t.equal(new Date(f.time).getUTCHours() % 8, 0, 'at 00/08/16 UTC')
  }
  t.ok(Date.parse(settlements[0].time) <= sim.now(), 'all in the past')
  const byTrade = (await call(sim, alice, 'GET', `/futures/isolated/funding-fees?tradeId=${fees[0].tradeId}`)).json.data
  t.equal(byTrade.length, 1, 'tradeId filter')
})

t.test('stricter: future timestamps, stop-loss beyond liquidation, trailing distance as a fraction', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]!
  const ahead = await raw(sim.port, {
    method: 'GET',
    path: '/v3/account',
    headers: authHeaders(alice, 'GET', '/v3/account', '', String(sim.now() + 2_000)),
  })
  t.equal(ahead.status, 401, 'a timestamp 2 s ahead → 401')
  t.same(ahead.json, { code: 'apiKeyTimestampTurfu', message: 'Your request too far in the future' })
  const slight = await raw(sim.port, {
    method: 'GET',
    path: '/v3/account',
    headers: authHeaders(alice, 'GET', '/v3/account', '', String(sim.now() + 300)),
  })
  t.equal(slight.status, 200, '300 ms ahead is within the tolerance')
  const c = await connect(sim, t)
  const { randomBytes } = await import('node:crypto')
  const { hmacB64 } = await import('./helpers.ts')
  const ts = sim.now() + 5_000
  const nonce = randomBytes(16).toString('hex')
  const auth = await c.rpc('authenticate', {
    key: alice.key,
    passphrase: alice.passphrase,
    timestamp: ts,
    nonce,
    signature: hmacB64(alice.secret, `${ts}${nonce}`),
  })
  t.equal(auth.error?.code, -32401, 'stream authenticate 5 s ahead → -32401')

  const long = (await call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'market', side: 'buy', quantity: 1_000, leverage: 20 }))
    .json
  const below = await call(sim, alice, 'PUT', '/futures/isolated/trade/stoploss', { id: long.id, value: long.liquidation - 100 })
  t.equal(below.status, 400, 'a long stop-loss below the liquidation → 400')
  t.equal(below.json.code, 'invalidStoploss')
  t.equal(
    (await call(sim, alice, 'PUT', '/futures/isolated/trade/stoploss', { id: long.id, value: long.liquidation + 100 })).status,
    200,
    'above it is fine',
  )
  const created = await call(sim, alice, 'POST', '/futures/isolated/trade', {
    type: 'market',
    side: 'sell',
    quantity: 100,
    leverage: 50,
    stoploss: 150_000,
  })
  t.equal(created.json.code, 'invalidStoploss', 'a short opened with a stop-loss above its liquidation → 400')

  const trail = (await call(sim, alice, 'PUT', '/futures/isolated/trade/stoploss', { id: long.id, value: 0.02, mode: 'trailing' })).json
  const bid = (await call(sim, undefined, 'GET', '/futures/ticker')).json.prices[0].bidPrice
  t.equal(trail.stoplossTrailingDistance, 0.02)
  t.equal(trail.stoploss, Math.round(bid * 0.98 * 2) / 2, 'distance 0.02 = 2 % below the bid (a fraction, not a percentage)')
  const wide = await call(sim, alice, 'PUT', '/futures/isolated/trade/stoploss', { id: long.id, value: 0.5, mode: 'trailing' })
  t.equal(wide.json.code, 'invalidStoploss', 'a trailing distance that puts the stop beyond the liquidation → 400')
})

t.test('stream limits: 500 new connections per IP per hour (configurable), 32 concurrent', async (t) => {
  t.test('defaults as documented', async (t) => {
    const { DEFAULT_STREAM_LIMITS } = await import('../../simulator/stream.ts')
    t.same(DEFAULT_STREAM_LIMITS, { socketsPerIp: 32, connectionsPerHour: 500, authPerMinute: 20 })
  })
  t.test('new connections per hour', async (t) => {
    const sim = await setup(t, { streamLimits: { connectionsPerHour: 5 } })
    for (let i = 0; i < 5; i++) {
      const c = await connect(sim, t)
      c.ws.terminate()
    }
    const ws = new WebSocket(sim.streamUrl)
    const err = await new Promise<Error>((resolve) => ws.on('error', resolve))
    t.match(err.message, /429/, 'the 6th connection within the hour → 429, though none is open')
    t.match(sim.streamStats(), { connections: 5, refusedConnections: 1, refusedSockets: 0 }, 'counted in streamStats()')
  })
  t.test('32 concurrent sockets per IP', async (t) => {
    const sim = await setup(t)
    const open: WebSocket[] = []
    t.teardown(() => open.forEach((w) => w.terminate()))
    for (let i = 0; i < 32; i++) open.push((await connect(sim, t)).ws)
    const ws = new WebSocket(sim.streamUrl)
    const err = await new Promise<Error>((resolve) => ws.on('error', resolve))
    t.match(err.message, /429/, 'the 33rd → 429')
    t.match(sim.streamStats(), { maxOpen: 32, refusedSockets: 1, open: 32 }, 'streamStats: the most open at once, the refusal')
    open.pop()!.terminate()
    await until(() => sim.streamStats().open === 31, 3000, 'the terminated socket to free its slot')
    const again = await connect(sim, t)
    t.equal(again.ws.readyState, WebSocket.OPEN, 'a slot frees when a socket closes')
  })
})

t.test('restartStream: sockets dropped, upgrades refused for a while, REST up; every attempt logged', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]!
  const c = await privateConn(sim, alice, ['wallet/deposit'], t)
  const t0 = Date.now()
  sim.restartStream(400)
  t.equal((await c.closed).code, 1006, 'the open socket is dropped')
  const ws = new WebSocket(sim.streamUrl)
  const err = await new Promise<Error>((resolve) => ws.on('error', resolve))
  t.match(err.message, /503/, 'an upgrade during the restart → 503')
  t.equal((await call(sim, alice, 'GET', '/account')).status, 200, 'REST answers meanwhile')
  await sleep(450 - (Date.now() - t0)) // waits out the 400 ms restart: reconnecting at that time is the point
  const again = await connect(sim, t)
  t.equal(again.ws.readyState, WebSocket.OPEN, 'accepted again once the restart is over')
  const log = sim.streamEvents()
  t.same(
    log.upgrades.map((u) => u.status),
    [101, 503, 101],
    'each upgrade attempt with its answer',
  )
  t.same(
    log.authenticate.map((a) => a.key),
    [alice.key],
    'each authenticate call, with the key it named',
  )
  t.ok(
    log.upgrades.every((u) => u.ts >= t0 - 5000 && u.ts <= Date.now()),
    'wall-clock times',
  )
})

t.test('the demo trader has every panel populated at first start', async (t) => {
  const sim = await setup(t, { accounts: demoAccounts() })
  const demo = sim.accounts[0]!
  const pos = (await call(sim, demo, 'GET', '/futures/cross/position')).json
  t.ok(pos.quantity > 0 && pos.margin > 0 && pos.entryPrice > 0 && pos.liquidation > 0, 'a cross position')
  t.ok(pos.fundingFees !== 0, 'that has paid funding')
  t.equal((await call(sim, demo, 'GET', '/futures/cross/orders/open')).json.length, 1, 'a resting cross order')
  t.equal((await call(sim, demo, 'GET', '/futures/cross/orders/filled')).json.data.length, 1, 'the filled cross order that opened it')
  t.ok((await call(sim, demo, 'GET', '/futures/cross/funding-fees')).json.data.length >= 1, 'cross funding fees')
  t.ok(
    (await call(sim, demo, 'GET', '/futures/isolated/trades/closed')).json.data.some((x: any) => x.closed),
    'closed trades',
  )
  t.ok((await call(sim, demo, 'GET', '/futures/isolated/trades/canceled')).json.data.length >= 1, 'a canceled trade')
  t.ok((await call(sim, demo, 'GET', '/futures/isolated/funding-fees')).json.data.length >= 1, 'isolated funding fees')
  t.equal((await call(sim, demo, 'GET', '/futures/isolated/trades/running')).json.length, 3, 'running positions as before')
  t.equal(
    (await call(sim, sim.accounts[2], 'GET', '/futures/isolated/trades/closed')).json.data.length,
    0,
    'other accounts have no history',
  )
})
