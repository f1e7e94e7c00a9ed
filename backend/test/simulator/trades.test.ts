import t from 'tap'
import { startSimulator, type Simulator } from '../../simulator/index.ts'
import { call, relaxed, testAccounts } from './helpers.ts'

// independent re-statement of lnmarkets-api.md §8.2
const SATS = 1e8
const FEE = 0.001
const marginOf = (q: number, p: number, lev: number) => Math.round((q * SATS) / (p * lev))
const plOf = (side: 'buy' | 'sell', q: number, entry: number, exit: number) =>
  Math.round((side === 'buy' ? 1 : -1) * q * (1 / entry - 1 / exit) * SATS)
const feeOf = (q: number, p: number) => Math.round((q / p) * SATS * FEE)

async function setup(t: { teardown(fn: () => unknown): void }): Promise<Simulator> {
  const sim = await startSimulator({ accounts: testAccounts(), tickMs: 3_600_000, initialPrice: 110_000, rateLimit: relaxed })
  t.teardown(() => sim.close())
  return sim
}

const balanceOf = async (sim: Simulator, i = 0) => (await call(sim, sim.accounts[i], 'GET', '/account')).json.balance as number

t.test('the §8.2 reference trade: limit buy q=1 @100000 ×100', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]
  const before = await balanceOf(sim)
  const r = await call(sim, alice, 'POST', '/futures/isolated/trade', {
    type: 'limit',
    side: 'buy',
    price: 100000,
    quantity: 1,
    leverage: 100,
    clientId: 'test-client-id',
  })
  t.equal(r.status, 200, 'limit order accepted')
  const o = r.json
  t.equal(o.margin, 10, 'margin 10 sats')
  t.equal(o.entryMargin, 10, 'entryMargin 10')
  t.equal(o.entryPrice, 100000, 'entryPrice is the limit price')
  t.equal(o.liquidation, 99010, 'liquidation 99010 (rounded to 0.5)')
  t.equal(o.maintenanceMargin, 2, 'maintenanceMargin 2')
  t.match(
    o,
    {
      open: true,
      running: false,
      closed: false,
      canceled: false,
      openingFee: 0,
      pl: 0,
      takeprofit: 0,
      stoploss: 0,
      sumFundingFees: 0,
      closedAt: null,
      filledAt: null,
      exitPrice: null,
      clientId: 'test-client-id',
      type: 'limit',
      side: 'buy',
    },
    'open-order flags and v3 fields',
  )
  t.match(o.id, /^[0-9a-f-]{36}$/, 'uuid id')
  t.ok(!Number.isNaN(Date.parse(o.createdAt)) && o.createdAt.endsWith('Z'), 'createdAt is ISO')
  t.equal(await balanceOf(sim), before - 12, 'margin + maintenance margin reserved from the balance')
  t.same(
    (await call(sim, alice, 'GET', '/futures/isolated/trades/open')).json.map((x: any) => x.id),
    [o.id],
    'listed under /trades/open',
  )

  sim.market.setPrice(100000)
  t.equal(
    (await call(sim, alice, 'GET', '/futures/isolated/trades/open')).json.length,
    1,
    'not filled while the ask (100005) is above the limit',
  )
  sim.market.setPrice(99990)
  const running = (await call(sim, alice, 'GET', '/futures/isolated/trades/running')).json
  t.equal(running.length, 1, 'filled once the ask crossed the limit')
  t.match(
    running[0],
    { id: o.id, open: false, running: true, entryPrice: 100000, openingFee: feeOf(1, 100000) },
    'running at the limit price, opening fee charged',
  )
  t.ok(Date.parse(running[0].filledAt) > 0, 'filledAt set')

  sim.market.setPrice(99000)
  t.equal((await call(sim, alice, 'GET', '/futures/isolated/trades/running')).json.length, 0, 'liquidated when the bid crossed 99010')
  const closed = (await call(sim, alice, 'GET', '/futures/isolated/trades/closed')).json
  t.match(
    closed.data[0],
    { id: o.id, closed: true, running: false, exitPrice: 99010, pl: -10 },
    'liquidation loses the whole margin at the liquidation price',
  )
  t.equal(closed.nextCursor, null, 'single page')
  t.equal(await balanceOf(sim), before - 12, 'nothing comes back: fees ate the reserve')
})

t.test('market long: entry at the ask, P&L in sats, fees, balance on close', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]
  sim.market.setPrice(100000)
  const before = await balanceOf(sim)
  const ticker = (await call(sim, undefined, 'GET', '/futures/ticker')).json
  const ask = ticker.prices[0].askPrice
  const o = (await call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'market', side: 'buy', quantity: 100, leverage: 10 })).json
  t.equal(o.entryPrice, ask, 'market buy fills at the best ask')
  t.equal(o.margin, marginOf(100, ask, 10), 'margin = q/p·1e8/lev')
  t.equal(o.openingFee, feeOf(100, ask), 'opening fee 0.1 %')
  t.match(o, { running: true, open: false }, 'running at once')
  t.equal(await balanceOf(sim), before - o.margin - o.maintenanceMargin, 'margin + reserve debited')

  sim.market.setPrice(110000)
  const bid = (await call(sim, undefined, 'GET', '/futures/ticker')).json.prices[0].bidPrice
  const live = (await call(sim, alice, 'GET', '/futures/isolated/trades/running')).json[0]
  t.equal(live.pl, plOf('buy', 100, ask, bid), 'unrealised P&L marked at the bid')
  t.ok(live.pl > 0, 'long gains when the price rises')

  const c = (await call(sim, alice, 'POST', '/futures/isolated/trade/close', { id: o.id })).json
  t.match(
    c,
    { closed: true, running: false, exitPrice: bid, pl: plOf('buy', 100, ask, bid), closingFee: feeOf(100, bid) },
    'closed at the bid with realised P&L and closing fee',
  )
  t.ok(Date.parse(c.closedAt) > 0, 'closedAt set')
  t.equal(await balanceOf(sim), before + c.pl - c.openingFee - c.closingFee, 'balance moves by P&L minus both fees')
  const again = await call(sim, alice, 'POST', '/futures/isolated/trade/close', { id: o.id })
  t.equal(again.status, 400, 'closing twice → 400')
  t.equal(again.json.code, 'tradeNotRunning', 'with a code')
})

t.test('short with stoploss / takeprofit', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]
  sim.market.setPrice(100000)
  const o = (await call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'market', side: 'sell', quantity: 50, leverage: 20 })).json
  t.equal(o.liquidation, Math.round(2 / (1 / o.entryPrice - o.margin / (50 * SATS))) / 2, 'short liquidation above entry')
  t.ok(o.liquidation > o.entryPrice, 'short liquidates upwards')
  const badSl = await call(sim, alice, 'PUT', '/futures/isolated/trade/stoploss', { id: o.id, value: 99000 })
  t.equal(badSl.status, 400, 'a short stoploss below the price → 400')
  const sl = await call(sim, alice, 'PUT', '/futures/isolated/trade/stoploss', { id: o.id, value: 101000 })
  t.equal(sl.json.stoploss, 101000, 'stoploss set')
  const del = await call(sim, alice, 'DELETE', `/futures/isolated/trade/stoploss?id=${o.id}`)
  t.equal(del.json.stoploss, 0, 'DELETE stoploss clears it (0 = none)')
  const tp = await call(sim, alice, 'PUT', '/futures/isolated/trade/takeprofit', { id: o.id, value: 99000 })
  t.equal(tp.json.takeprofit, 99000, 'takeprofit set')
  const half = await call(sim, alice, 'PUT', '/futures/isolated/trade/takeprofit', { id: o.id, value: 99000.25 })
  t.equal(half.status, 400, 'takeprofit must be a multiple of 0.5')
  sim.market.setPrice(98000)
  const c = (await call(sim, alice, 'GET', '/futures/isolated/trades/closed')).json.data[0]
  t.match(c, { id: o.id, closed: true }, 'takeprofit closed the short')
  t.ok(c.pl > 0, 'with a profit')
})

t.test('cancel, cancel-all, ownership and not-found', async (t) => {
  const sim = await setup(t)
  const [alice, bob] = sim.accounts
  sim.market.setPrice(100000)
  const before = await balanceOf(sim)
  const a = (
    await call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'limit', side: 'buy', price: 90000, quantity: 10, leverage: 10 })
  ).json
  const b = (
    await call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'limit', side: 'sell', price: 120000, margin: 2000, leverage: 5 })
  ).json
  t.equal(b.quantity, Math.floor((2000 * 5 * 120000) / SATS), 'margin-denominated order derives its quantity')
  const c = (await call(sim, alice, 'POST', '/futures/isolated/trade/cancel', { id: a.id })).json
  t.match(c, { canceled: true, open: false }, 'canceled')
  const all = (await call(sim, alice, 'POST', '/futures/isolated/trades/cancel-all')).json
  t.same(
    all.map((x: any) => x.id),
    [b.id],
    'cancel-all returns the canceled trades',
  )
  t.equal(await balanceOf(sim), before, 'cancels refund margin and reserve in full')
  t.equal((await call(sim, alice, 'GET', '/futures/isolated/trades/canceled')).json.data.length, 2, '/trades/canceled lists them')

  const nf = await call(sim, alice, 'POST', '/futures/isolated/trade/close', { id: '00000000-0000-4000-8000-000000000000' })
  t.equal(nf.status, 404, 'unknown trade → 404')
  t.same(nf.json, { code: 'tradeNotFound', message: 'Trade not found' }, '404 body')
  const r = (await call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'market', side: 'buy', quantity: 10, leverage: 10 })).json
  const steal = await call(sim, bob, 'POST', '/futures/isolated/trade/close', { id: r.id })
  t.equal(steal.status, 400, "closing someone else's trade → 400")
  t.equal(steal.json.message, 'You do not own this trade', 'the real exchange message')
  const poor = await call(sim, bob, 'POST', '/futures/isolated/trade', { type: 'market', side: 'buy', quantity: 100, leverage: 1 })
  t.equal(poor.status, 400, 'not enough balance → 400')
  t.equal(poor.json.code, 'insufficientBalance', 'insufficientBalance code')
})

t.test('add-margin and cash-in', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]
  sim.market.setPrice(100000)
  const o = (await call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'market', side: 'buy', quantity: 1000, leverage: 50 })).json
  const b0 = await balanceOf(sim)
  const m = (await call(sim, alice, 'POST', '/futures/isolated/trade/add-margin', { id: o.id, amount: 10_000 })).json
  t.equal(m.margin, o.margin + 10_000, 'margin increased')
  t.ok(m.liquidation < o.liquidation, 'liquidation moves away')
  t.ok(m.leverage < o.leverage, 'leverage drops')
  t.equal(await balanceOf(sim), b0 - 10_000, 'balance debited')

  sim.market.setPrice(105000)
  const pl = (await call(sim, alice, 'GET', '/futures/isolated/trades/running')).json[0].pl
  t.ok(pl > 5000, 'position in profit')
  const ci = (await call(sim, alice, 'POST', '/futures/isolated/trade/cash-in', { id: o.id, amount: 5000 })).json
  t.equal(ci.sumCashInPl, 5000, 'cashed in from profit first')
  t.equal(ci.margin, m.margin, 'margin untouched')
  t.ok(Math.abs(ci.pl - (pl - 5000)) <= 1, 'remaining P&L reduced by the amount')
  t.equal(await balanceOf(sim), b0 - 10_000 + 5000, 'balance credited')
  const tooMuch = await call(sim, alice, 'POST', '/futures/isolated/trade/cash-in', { id: o.id, amount: 10_000_000 })
  t.equal(tooMuch.status, 400, 'cash-in beyond profit + free margin → 400')
})

t.test('validation: 400/404 with {code,message}', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]
  const bad: Array<[string, unknown]> = [
    ['no quantity nor margin', { type: 'market', side: 'buy', leverage: 10 }],
    ['both quantity and margin', { type: 'market', side: 'buy', leverage: 10, quantity: 1, margin: 100 }],
    ['limit without price', { type: 'limit', side: 'buy', leverage: 10, quantity: 1 }],
    ['market with price', { type: 'market', side: 'buy', leverage: 10, quantity: 1, price: 100000 }],
    ['price not a multiple of 0.5', { type: 'limit', side: 'buy', leverage: 10, quantity: 1, price: 100000.2 }],
    ['leverage above 100', { type: 'market', side: 'buy', leverage: 101, quantity: 1 }],
    ['fractional quantity', { type: 'market', side: 'buy', leverage: 10, quantity: 1.5 }],
    ['v2 side', { type: 'm', side: 'b', leverage: 10, quantity: 1 }],
    ['unknown field (typo)', { type: 'market', side: 'buy', leverage: 10, quantity: 1, takeProfit: 120000 }],
  ]
  for (const [what, body] of bad) {
    const r = await call(sim, alice, 'POST', '/futures/isolated/trade', body)
    t.equal(r.status, 400, `${what} → 400`)
    t.ok(typeof r.json?.code === 'string' && typeof r.json?.message === 'string', `${what}: {code,message} body`)
  }
  const notUuid = await call(sim, alice, 'POST', '/futures/isolated/trade/close', { id: 'abc' })
  t.equal(notUuid.status, 400, 'non-uuid id → 400')
  const unknownQuery = await call(sim, alice, 'GET', '/futures/isolated/trades/closed?limt=2')
  t.equal(unknownQuery.status, 400, 'unknown query key → 400')
  const route = await call(sim, alice, 'GET', '/futures/nope')
  t.equal(route.status, 404, 'unknown route → 404')
  t.equal(route.json.code, 'notFound', '404 body has a code')
})

t.test('cursor pagination of closed trades and candles', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]
  const ids: string[] = []
  for (let i = 0; i < 5; i++) {
    const o = (
      await call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'limit', side: 'buy', price: 50000, quantity: 1, leverage: 10 })
    ).json
    ids.push(o.id)
  }
  await call(sim, alice, 'POST', '/futures/isolated/trades/cancel-all')
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const r = await call(
      sim,
      alice,
      'GET',
      `/futures/isolated/trades/closed?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    )
    t.equal(r.status, 200, `page ${pages} ok`)
    t.ok(r.json.data.length <= 2, 'page respects limit')
    seen.push(...r.json.data.map((x: any) => x.id))
    cursor = r.json.nextCursor
    pages++
  } while (cursor && pages < 10)
  t.equal(pages, 3, '5 trades in pages of 2 → 3 pages')
  t.same([...seen].sort(), [...ids].sort(), 'every trade exactly once across pages (trades canceled in the same request)')
  const future = await call(
    sim,
    alice,
    'GET',
    `/futures/isolated/trades/closed?from=${encodeURIComponent(new Date(sim.now() + 60_000).toISOString())}`,
  )
  t.same(future.json, { data: [], nextCursor: null }, 'from in the future → empty page')
  t.equal((await call(sim, alice, 'GET', '/futures/isolated/trades/closed?limit=0')).status, 400, 'limit=0 → 400')
  t.equal((await call(sim, alice, 'GET', '/futures/isolated/trades/closed?limit=1001')).status, 400, 'limit=1001 → 400')
  t.equal((await call(sim, alice, 'GET', '/futures/isolated/trades/closed?from=yesterday')).status, 400, 'non-ISO from → 400')

  t.equal((await call(sim, undefined, 'GET', '/futures/candles')).status, 400, 'candles without from → 400')
  const from = new Date(sim.now() - 3 * 3600_000).toISOString()
  const p1 = (await call(sim, undefined, 'GET', `/futures/candles?from=${encodeURIComponent(from)}&limit=50&range=1m`)).json
  t.equal(p1.data.length, 50, 'first candle page full')
  t.type(p1.nextCursor, 'string', 'has a next cursor')
  const p2 = (
    await call(
      sim,
      undefined,
      'GET',
      `/futures/candles?from=${encodeURIComponent(from)}&limit=50&range=1m&cursor=${encodeURIComponent(p1.nextCursor)}`,
    )
  ).json
  t.equal(Date.parse(p2.data[0].time) - Date.parse(p1.data[49].time), 60_000, 'the next page continues one minute later')
  t.match(p1.data[0], { time: String, open: Number, high: Number, low: Number, close: Number, volume: Number }, 'candle shape')
  t.ok(
    p1.data.every((c: any) => c.high >= Math.max(c.open, c.close) && c.low <= Math.min(c.open, c.close)),
    'high/low bound open/close',
  )
  const hourly = (await call(sim, undefined, 'GET', `/futures/candles?from=${encodeURIComponent(from)}&range=1h`)).json
  t.ok(hourly.data.length >= 3 && hourly.data.length <= 4, 'hourly aggregation over 3 h')
  t.equal(
    (await call(sim, undefined, 'GET', `/futures/candles?from=${encodeURIComponent(from)}&range=7m`)).status,
    400,
    'unknown range → 400',
  )
})

t.test('market data: ticker ladder, funding time, oracle history, funding settlement', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]
  const tk = (await call(sim, undefined, 'GET', '/futures/ticker')).json
  t.ok(Array.isArray(tk.prices) && tk.prices.length >= 2, 'size ladder')
  t.ok(
    tk.prices.every((b: any) => b.bidPrice < tk.lastPrice && b.askPrice > tk.lastPrice && b.maxSize > b.minSize),
    'bid < last < ask in every bucket',
  )
  t.ok(tk.prices[1].askPrice - tk.prices[1].bidPrice > tk.prices[0].askPrice - tk.prices[0].bidPrice, 'bigger sizes, wider spread')
  t.ok(Math.abs(tk.index - tk.lastPrice) / tk.lastPrice < 0.005, 'index is close to last price')
  t.equal(new Date(tk.fundingTime).getUTCHours() % 8, 0, 'funding at 00/08/16 UTC')
  t.equal(new Date(tk.fundingTime).getUTCMinutes(), 0, 'on the hour')
  t.ok(Date.parse(tk.fundingTime) > sim.now(), 'in the future')
  t.type(tk.fundingRate, 'number', 'funding rate')
  const idx = (await call(sim, undefined, 'GET', '/oracle/index?limit=5')).json
  t.equal(idx.length, 5, 'oracle index is a plain array honouring limit')
  t.match(idx[0], { index: Number, time: String }, 'index entry shape')
  const lp = (await call(sim, undefined, 'GET', '/oracle/last-price?limit=2')).json
  t.match(lp[0], { lastPrice: Number, time: String }, 'last-price entry shape')

  const o = (await call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'market', side: 'buy', quantity: 1000, leverage: 10 })).json
  sim.market.settleFunding()
  const settlements = (await call(sim, undefined, 'GET', '/futures/funding-settlements')).json.data
  t.equal(settlements.length, 1, 'one settlement')
  const s = settlements[0]
  const expected = Math.round((1000 / s.fixingPrice) * s.fundingRate * SATS)
  const after = (await call(sim, alice, 'GET', '/futures/isolated/trades/running')).json[0]
  t.equal(after.sumFundingFees, expected, 'long pays q/price·rate·1e8 when the rate is positive')
  t.equal(after.margin, o.margin - expected, 'funding comes out of the margin')
  const fees = (await call(sim, alice, 'GET', '/futures/isolated/funding-fees')).json.data
  t.match(fees[0], { fee: expected, tradeId: o.id, settlementId: s.id }, 'funding fee listed')
})

t.test('funding settles when the simulator clock crosses a funding time', async (t) => {
  const sim = await setup(t)
  const alice = sim.accounts[0]
  await call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'market', side: 'sell', quantity: 1000, leverage: 10 })
  const next = Date.parse((await call(sim, undefined, 'GET', '/futures/ticker')).json.fundingTime)
  sim.faults.set({ clockSkewMs: next - Date.now() + 1000 })
  sim.market.tick()
  const s = (await call(sim, undefined, 'GET', '/futures/funding-settlements')).json.data
  t.equal(s.length, 1, 'settled once')
  t.equal(Date.parse(s[0].time), next, 'at the scheduled funding time')
  const nextAfter = Date.parse((await call(sim, undefined, 'GET', '/futures/ticker')).json.fundingTime)
  t.equal(nextAfter - next, 8 * 3600_000, 'next funding 8 h later')
})
