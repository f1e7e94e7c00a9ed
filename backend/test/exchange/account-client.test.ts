/**
 * The cross-margin and history methods of LnmClient against a local node:http server: wire paths and
 * queries (signed), lenient schemas (a missing nullable key is normalised to null, never a failed poll),
 * and how "no cross position" is read (404, null body, flat with no margin).
 */
import t from 'tap'
import { CREDS, clientOnLocalServer, json, lnmHandler, rejects, trade, verifySignature } from './helpers.ts'

const fast = { retry: { baseMs: 10, capMs: 40, retries: 1 }, limits: { publicPerSec: 1000, authPerSec: 1000 } }

const POSITION = {
  id: '11111111-1111-4111-8111-111111111111',
  uid: '22222222-2222-4222-8222-222222222222',
  quantity: 1000,
  leverage: 10,
  margin: 100_000,
  entryPrice: 100_000,
  liquidation: 91_000,
  initialMargin: 100_000,
  maintenanceMargin: 2_000,
  runningMargin: 99_000,
  totalPl: 1_500,
  deltaPl: 200,
  fundingFees: -30,
  tradingFees: 1_000,
  updatedAt: '2026-01-01T00:00:00.000Z',
}
const ORDER = {
  id: '33333333-3333-4333-8333-333333333333',
  type: 'limit',
  side: 'buy',
  price: 95_000,
  quantity: 100,
  tradingFee: 0,
  open: true,
  filled: false,
  canceled: false,
  createdAt: '2026-01-01T00:00:00.000Z',
  filledAt: null,
  canceledAt: null,
}

function handler(routes: Record<string, () => [number, unknown]>) {
  const base = lnmHandler()
  return (
    req: Parameters<ReturnType<typeof lnmHandler>>[0],
    res: Parameters<ReturnType<typeof lnmHandler>>[1],
    body: string,
    n: number,
  ) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/v3/, '')
    const r = routes[path]
    if (!r) return base(req, res, body, n)
    if (!verifySignature(req, body, CREDS.secret))
      return json(res, 401, { code: 'apiKeyInvalidSignature', message: 'Signature is not valid' })
    const [status, value] = r()
    json(res, status, value)
  }
}

t.test('cross position, open and filled orders, canceled trades, funding fees: paths, queries, shapes', async (t) => {
  const { server, client } = await clientOnLocalServer(
    t,
    handler({
      '/futures/cross/position': () => [200, POSITION],
      '/futures/cross/orders/open': () => [200, [ORDER]],
      '/futures/cross/orders/filled': () => [
        200,
        { data: [{ ...ORDER, open: false, filled: true, filledAt: '2026-01-01T00:00:01.000Z' }], nextCursor: '2026-01-01T00:00:01.000Z' },
      ],
      '/futures/isolated/trades/canceled': () => [200, { data: [trade({ id: 'x1', running: false, canceled: true })], nextCursor: null }],
      '/futures/isolated/funding-fees': () => [
        200,
        { data: [{ fee: 12, settlementId: 's1', time: '2026-01-01T08:00:00.000Z', tradeId: 't1' }], nextCursor: null },
      ],
      '/futures/cross/funding-fees': () => [
        200,
        { data: [{ fee: -3, settlementId: 's1', time: '2026-01-01T08:00:00.000Z', tradeId: null }], nextCursor: null },
      ],
    }),
    fast,
  )
  t.same(await client.crossPosition(CREDS), POSITION, 'position as sent')
  t.same(await client.crossOpenOrders(CREDS), [ORDER], 'open orders')
  const filled = await client.crossFilledOrders(CREDS, { limit: 5, cursor: '2026-01-02T00:00:00.000Z' })
  t.equal(filled.data[0]!.filled, true)
  t.equal(filled.nextCursor, '2026-01-01T00:00:01.000Z')
  t.equal((await client.canceledTrades(CREDS, { limit: 2 })).data[0]!.canceled, true)
  t.same((await client.isolatedFundingFees(CREDS, { tradeId: 't1' })).data, [
    { fee: 12, settlementId: 's1', time: '2026-01-01T08:00:00.000Z', tradeId: 't1' },
  ])
  t.same((await client.crossFundingFees(CREDS)).data[0]!.tradeId, null)
  const urls = server.requests.map((r) => r.url)
  t.ok(urls.includes('/v3/futures/cross/orders/filled?limit=5&cursor=2026-01-02T00%3A00%3A00.000Z'), 'page query on the wire')
  t.ok(urls.includes('/v3/futures/isolated/trades/canceled?limit=2'))
  t.ok(urls.includes('/v3/futures/isolated/funding-fees?tradeId=t1'), 'tradeId filter')
})

t.test('lenient: a missing nullable key is normalised to null, not a failed poll', async (t) => {
  const { entryPrice: _e, liquidation: _l, id: _i, uid: _u, ...bare } = POSITION
  const { filledAt: _f, canceledAt: _c, ...bareOrder } = ORDER
  const { client } = await clientOnLocalServer(
    t,
    handler({
      '/futures/cross/position': () => [200, { ...bare, extraField: 'x' }],
      '/futures/cross/orders/open': () => [200, [bareOrder]],
      '/futures/cross/funding-fees': () => [
        200,
        { data: [{ fee: 1, settlementId: 's', time: '2026-01-01T00:00:00.000Z' }], nextCursor: null },
      ],
    }),
    fast,
  )
  const p = await client.crossPosition(CREDS)
  t.equal(p?.entryPrice, null)
  t.equal(p?.liquidation, null)
  const o = (await client.crossOpenOrders(CREDS))[0]!
  t.equal(o.filledAt, null)
  t.equal(o.canceledAt, null)
  t.equal((await client.crossFundingFees(CREDS)).data[0]!.tradeId, null)
})

t.test('trade lists: a trade whose nullable keys are missing is read with null, a wrong type still fails', async (t) => {
  const bare = trade({ id: 'r1' }) as Record<string, unknown>
  for (const k of ['entryPrice', 'entryMargin', 'exitPrice', 'filledAt', 'closedAt', 'clientId']) delete bare[k]
  let bad = false
  const { client } = await clientOnLocalServer(
    t,
    handler({
      '/futures/isolated/trades/running': () => [200, bad ? [{ ...bare, margin: '1000' }] : [bare]],
      '/futures/isolated/trades/open': () => [200, [bare]],
      '/futures/isolated/trades/closed': () => [200, { data: [bare], nextCursor: null }],
      '/futures/isolated/trades/canceled': () => [200, { data: [bare], nextCursor: null }],
    }),
    fast,
  )
  const nulls = { entryPrice: null, entryMargin: null, exitPrice: null, filledAt: null, closedAt: null, clientId: null }
  t.match((await client.runningTrades(CREDS))[0], { id: 'r1', margin: 1000, ...nulls }, 'running')
  t.match((await client.openTrades(CREDS))[0], nulls, 'open')
  t.match((await client.closedTrades(CREDS)).data[0], nulls, 'closed')
  t.match((await client.canceledTrades(CREDS)).data[0], nulls, 'canceled')
  bad = true
  t.equal((await rejects(client.runningTrades(CREDS))).kind, 'bad_response', 'a string margin is still a bad_response')
})

t.test('no cross position: 404, null body, flat with no margin → null; flat with margin → the position', async (t) => {
  let mode = 'flat-empty'
  const { client } = await clientOnLocalServer(
    t,
    handler({
      '/futures/cross/position': () => {
        if (mode === '404') return [404, { code: 'notFound', message: 'No cross position' }]
        if (mode === 'null') return [200, null]
        if (mode === 'flat-empty') return [200, { ...POSITION, quantity: 0, margin: 0, entryPrice: null, liquidation: null }]
        if (mode === 'bad') return [200, { ...POSITION, quantity: 'lots' }]
        return [200, { ...POSITION, quantity: 0, margin: 5_000, entryPrice: null, liquidation: null }]
      },
    }),
    fast,
  )
  t.equal(await client.crossPosition(CREDS), null, 'flat, no margin')
  mode = '404'
  t.equal(await client.crossPosition(CREDS), null, '404')
  mode = 'null'
  t.equal(await client.crossPosition(CREDS), null, 'null body')
  mode = 'flat-margin'
  t.equal((await client.crossPosition(CREDS))?.margin, 5_000, 'flat with margin is kept (equity)')
  mode = 'bad'
  const e = await rejects(client.crossPosition(CREDS))
  t.equal(e.kind, 'bad_response', 'a wrong type is still a bad_response')
})

t.test('against the simulator: the demo trader, signed and verified on a real port', async (t) => {
  const { startSimulator, demoAccounts } = await import('../../simulator/index.ts')
  const { LnmClient } = await import('../../exchange/client.ts')
  const sim = await startSimulator({ accounts: demoAccounts(), tickMs: 0, rateLimit: { publicPerSec: 10_000, authPerSec: 10_000 } })
  const client = new LnmClient({ baseUrl: sim.url, limits: { publicPerSec: 1000, authPerSec: 1000 } })
  t.teardown(async () => {
    await client.close()
    await sim.close()
  })
  const demo = sim.accounts[0]!
  const bob = sim.accounts[2]!
  const pos = await client.crossPosition(demo)
  t.ok(pos && pos.quantity > 0 && pos.entryPrice !== null && pos.liquidation !== null, 'the demo cross position')
  t.equal(await client.crossPosition(bob), null, 'an account that never used cross margin → null')
  t.equal((await client.crossOpenOrders(demo)).length, 1, 'one resting cross order')
  const filled = await client.crossFilledOrders(demo)
  t.equal(filled.data.length, 1, 'the filled order that opened it')
  t.equal(filled.data[0]!.quantity, pos!.quantity, '… for the position quantity')
  const cf = await client.crossFundingFees(demo)
  t.ok(cf.data.length >= 1 && cf.data.every((f) => f.tradeId === null), 'cross funding fees, tradeId null')
  t.equal(
    cf.data.reduce((s, f) => s + f.fee, 0),
    pos!.fundingFees,
    'they add up to the position fundingFees',
  )
  const canceled = await client.canceledTrades(demo)
  t.ok(canceled.data.length >= 1 && canceled.data.every((x) => x.canceled), 'canceled trades')
  const fees = await client.isolatedFundingFees(demo, { limit: 2 })
  t.equal(fees.data.length, 2, 'a page of isolated funding fees')
  t.type(fees.nextCursor, 'string', 'with a cursor')
  const rest = await client.isolatedFundingFees(demo, { cursor: fees.nextCursor! })
  t.ok(
    rest.data.length >= 1 && !rest.data.some((f) => fees.data.some((g) => g.settlementId === f.settlementId && g.tradeId === f.tradeId)),
    'the cursor continues without overlap',
  )
  const closed = await client.closedTrades(demo)
  t.ok(
    closed.data.some((x) => x.closed),
    'closed trades',
  )
})
