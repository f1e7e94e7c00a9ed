/**
 * The cross and history channels and account.equity end to end: a gateway in live mode against a simulator
 * holding a cross position, a resting cross order, closed trades and funding fees; every value reaches /ws
 * and /api/dashboard under the channel names, and GET /api/history pages further back.
 */
import t from 'tap'
import { CHANNELS } from '../../schemas/channels.ts'
import { liveGateway } from './live.ts'
import { WsClient } from './helpers.ts'
import { testAccounts } from '../helpers/app.ts'

const accounts = testAccounts(2)
accounts[0] = {
  ...accounts[0]!,
  cross: { margin: 50_000, leverage: 5, side: 'buy', quantity: 100, orders: [{ side: 'buy', quantity: 50, price: 50_000 }] },
  history: { closedTrades: 6, fundingSettlements: 6 },
}

t.test('cross, history and equity on /ws and /api/dashboard; /api/history pages', async (t) => {
  const L = await liveGateway(t, { accounts, env: { POLL_INTERVAL_MS: '2000', LOG_LEVEL: 'warn' }, sim: { tickMs: 0 } })
  const u = await L.user(0)

  const ws = await WsClient.authed(L.g.wsUrl, u.token)
  const cross = await ws.next((f) => f.type === 'data_update' && f.channel === 'cross', 8000)
  t.equal(cross.data.position.quantity, 100, 'cross position quantity on /ws')
  t.ok(cross.data.position.margin > 0, 'cross margin ' + JSON.stringify(cross.data.position))
  t.hasProps(
    cross.data.position,
    [
      'leverage',
      'entryPrice',
      'liquidation',
      'totalPl',
      'deltaPl',
      'fundingFees',
      'tradingFees',
      'initialMargin',
      'maintenanceMargin',
      'runningMargin',
      'updatedAt',
    ],
    'SDK field names',
  )
  t.equal(cross.data.openOrders.length, 1, 'the resting cross order')
  t.match(cross.data.openOrders[0], { side: 'buy', quantity: 50, price: 50_000, open: true }, 'open order fields')
  const history = await ws.next((f) => f.type === 'data_update' && f.channel === 'history', 8000)
  t.ok(history.data.closed.length >= 6, `closed trades on /ws (${history.data.closed.length})`)
  t.ok(
    history.data.closed.some((x: { canceled: boolean }) => x.canceled),
    'canceled trades too',
  )
  const times = history.data.closed.map((x: { closedAt: string | null; createdAt: string }) => Date.parse(x.closedAt ?? x.createdAt))
  t.same(
    times,
    [...times].sort((a, b) => b - a),
    'newest first',
  )
  t.ok(
    history.data.fundingFees.length > 0 &&
      history.data.fundingFees.every((f: { scope: string }) => f.scope === 'isolated' || f.scope === 'cross'),
    'funding fees marked with their scope',
  )
  t.hasProps(history.data.realized.month, ['pl', 'tradingFees', 'fundingFees', 'net'], 'realized totals')
  t.equal(
    history.data.realized.month.net,
    history.data.realized.month.pl - history.data.realized.month.tradingFees - history.data.realized.month.fundingFees,
    'net = pl − fees',
  )

  const d = await L.g.http('GET', '/api/dashboard', { token: u.token })
  t.equal(d.status, 200, 'dashboard 200')
  t.same(Object.keys(d.body), [...CHANNELS, 'meta'], 'one key per channel of the table, then meta')
  t.equal(d.body.cross.position.quantity, 100, 'cross on /api/dashboard')
  t.ok(d.body.history.closed.length >= 6, 'history on /api/dashboard')
  t.ok(d.body.meta.channels.cross && d.body.meta.channels.history, 'meta for the new channels')
  const { account, positions } = d.body
  const expected =
    account.balance + positions.totals.margin + positions.totals.pl + d.body.cross.position.margin + d.body.cross.position.deltaPl
  t.ok(
    Math.abs(account.equity - expected) <= 1,
    `equity = balance + isolated margin/P&L + cross margin + deltaPl (${account.equity} vs ${expected})`,
  )

  // paging further back
  t.equal((await L.g.http('GET', '/api/history?kind=closed')).status, 401, 'history needs a bearer token')
  const p1 = await L.g.http('GET', '/api/history?kind=funding&limit=2', { token: u.token })
  t.equal(p1.status, 200, 'funding page 1 ' + p1.text.slice(0, 300))
  t.ok(p1.body.data.length >= 2 && typeof p1.body.nextCursor === 'string', 'a next cursor when there is more')
  const seen = new Set<string>(p1.body.data.map((f: { settlementId: string; scope: string }) => `${f.scope}:${f.settlementId}`))
  let cursor: string | null = p1.body.nextCursor
  let pages = 1
  while (cursor && pages < 20) {
    const p = await L.g.http('GET', `/api/history?kind=funding&limit=2&cursor=${encodeURIComponent(cursor)}`, { token: u.token })
    t.equal(p.status, 200, `funding page ${++pages}`)
    for (const f of p.body.data) {
      const k = `${f.scope}:${f.settlementId}`
      t.notOk(seen.has(k), `no duplicate across pages (${k})`)
      seen.add(k)
    }
    cursor = p.body.nextCursor
  }
  t.equal(cursor, null, 'paging ends')
  t.ok(seen.size >= 6, `every funding fee reached by paging (${seen.size})`)
  const closed = await L.g.http('GET', '/api/history?kind=closed&limit=100', { token: u.token })
  t.equal(closed.status, 200, 'closed page')
  t.ok(closed.body.data.length >= 6, 'closed trades')
  const filled = await L.g.http('GET', '/api/history?kind=cross-filled', { token: u.token })
  t.equal(filled.status, 200, 'cross-filled page')
  t.ok(Array.isArray(filled.body.data) && filled.body.data.every((o: { filled: boolean }) => o.filled), 'filled cross orders only')

  const before = L.sim.stats.requests({ path: '/v3/futures/isolated/funding-fees' })
  const again = await L.g.http('GET', '/api/history?kind=funding&limit=2', { token: u.token })
  t.same(again.body, p1.body, 'the same page again')
  t.equal(L.sim.stats.requests({ path: '/v3/futures/isolated/funding-fees' }), before, 'answered from cache: no exchange call')

  t.match(
    await L.g.http('GET', '/api/history?kind=bogus', { token: u.token }),
    { status: 400, body: { error: { code: 'validation_failed' } } },
    'unknown kind → 400',
  )
  t.match(await L.g.http('GET', '/api/history', { token: u.token }), { status: 400 }, 'kind is required')
  t.match(
    await L.g.http('GET', '/api/history?kind=funding&cursor=garbage', { token: u.token }),
    { status: 400, body: { error: { code: 'bad_cursor' } } },
    'a cursor we did not issue → 400 bad_cursor',
  )
  t.match(await L.g.http('GET', '/api/history?kind=closed&limit=1000', { token: u.token }), { status: 400 }, 'limit over 100 → 400')
  const none = await L.g.register()
  const noneUser = await L.g.login(none.username, none.password)
  t.match(
    await L.g.http('GET', '/api/history?kind=closed', { token: noneUser.token }),
    { status: 404, body: { error: { code: 'no_credentials' } } },
    'no credentials → 404',
  )
})
