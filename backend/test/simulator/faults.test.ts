import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { WebSocket } from 'ws'
import { startSimulator } from '../../simulator/index.ts'
import { call, connect, privateConn, raw, relaxed, testAccounts } from './helpers.ts'

t.test('fault injection', async (t) => {
  const sim = await startSimulator({ accounts: testAccounts(), tickMs: 3_600_000, initialPrice: 100_000, rateLimit: relaxed, admin: true })
  t.teardown(() => sim.close())
  t.afterEach(() => sim.faults.reset())
  const alice = sim.accounts[0]!

  t.test('latencyMs delays answers', async (t) => {
    sim.faults.set({ latencyMs: 300 })
    const started = Date.now()
    t.equal((await call(sim, alice, 'GET', '/account')).status, 200, 'still answered')
    t.ok(Date.now() - started >= 290, 'after the injected latency')
  })

  t.test('timeoutRate holds the request open and never answers', async (t) => {
    sim.faults.set({ timeoutRate: 1 })
    const since = Date.now()
    await t.rejects(
      raw(sim.port, { method: 'GET', path: '/v3/ping', timeoutMs: 400 }),
      /client timeout/,
      'no answer before the client gives up',
    )
    t.equal(
      sim.stats
        .log()
        .filter((e) => e.ts >= since && e.path === '/v3/ping')
        .at(-1)?.status,
      0,
      'logged with status 0 (no answer)',
    )
  })

  t.test('errorRate answers errorStatus; proxies answer HTML', async (t) => {
    sim.faults.set({ errorRate: 1, errorStatus: 503 })
    const r = await call(sim, alice, 'GET', '/account')
    t.equal(r.status, 503, '503 injected')
    t.same(r.json, { code: 'serviceUnavailable', message: 'Service Unavailable' }, '503 has a JSON body')
    sim.faults.set({ errorStatus: 502 })
    const p = await call(sim, alice, 'GET', '/account')
    t.equal(p.status, 502, '502 injected')
    t.match(p.headers['content-type'], /text\/html/, 'a gateway 502 is HTML')
    t.equal(p.json, undefined, 'and not JSON')
  })

  t.test('rateLimitStorm: every request 429', async (t) => {
    sim.faults.set({ rateLimitStorm: true })
    const r = await call(sim, alice, 'GET', '/account')
    t.equal(r.status, 429, '429')
    t.equal(r.headers['retry-after'], '1', 'Retry-After')
    t.equal(r.headers['x-ratelimit-remaining'], '0', 'X-Ratelimit-Remaining')
    t.ok(Number(r.headers['x-ratelimit-reset']) > Date.now() - 100, 'X-Ratelimit-Reset')
  })

  t.test('malformedRate: garbage JSON', async (t) => {
    sim.faults.set({ malformedRate: 1 })
    const r = await call(sim, alice, 'GET', '/account')
    t.equal(r.status, 200, 'status says success')
    t.match(r.headers['content-type'], /application\/json/, 'claims JSON')
    t.throws(() => JSON.parse(r.text), 'body does not parse')
  })

  t.test('truncatedRate: Content-Length promised, half the body sent', async (t) => {
    sim.faults.set({ truncatedRate: 1 })
    await t.rejects(call(sim, alice, 'GET', '/account'), 'the client sees a premature end of the response')
  })

  t.test('dropRate: socket destroyed mid-response, the request was processed', async (t) => {
    sim.faults.set({ dropRate: 1 })
    await t.rejects(
      call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'market', side: 'buy', quantity: 10, leverage: 10 }),
      'the client loses the answer',
    )
    sim.faults.reset()
    const running = (await call(sim, alice, 'GET', '/futures/isolated/trades/running')).json
    t.equal(running.length, 1, 'but the trade was opened: a blind retry would open a second one')
  })

  t.test('outage: 503 for everything, stream sockets dropped and refused', async (t) => {
    const ws = new WebSocket(sim.streamUrl)
    ws.on('error', () => {})
    await new Promise((r) => ws.once('open', r))
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)))
    sim.faults.set({ outage: true })
    t.equal(await closed, 1006, 'open stream socket dropped (abnormal close)')
    t.equal((await call(sim, undefined, 'GET', '/ping')).status, 503, 'public → 503')
    t.equal((await call(sim, alice, 'GET', '/account')).status, 503, 'private → 503')
    const again = new WebSocket(sim.streamUrl)
    const err = await new Promise<Error>((r) => again.on('error', r))
    t.match(err.message, /503/, 'new stream connections refused with 503')
  })

  t.test('privateStreamDropMs: authenticated stream sockets dropped every period, public ones kept', async (t) => {
    const pub = await connect(sim, t)
    const priv = await privateConn(sim, alice, ['futures/inverse/btc_usd/isolated/trades'], t)
    const before = sim.streamStats().privateDrops
    const set = Date.now()
    sim.faults.set({ privateStreamDropMs: 200 })
    t.equal((await priv.closed).code, 1006, 'the private socket is dropped without a close frame')
    t.ok(Date.now() - set >= 150, 'at the period, not at once')
    t.equal(pub.ws.readyState, WebSocket.OPEN, 'the public socket stays open')
    const again = await privateConn(sim, alice, ['futures/inverse/btc_usd/isolated/trades'], t)
    t.pass('a new private connection is accepted and authenticates')
    t.equal((await again.closed).code, 1006, 'and is dropped at the next period')
    t.ok(sim.streamStats().privateDrops >= before + 2, 'drops are counted')
    sim.faults.set({ privateStreamDropMs: 0 })
    const kept = await privateConn(sim, alice, ['futures/inverse/btc_usd/isolated/trades'], t)
    await sleep(500) // proves the socket is not dropped within 500 ms once the fault is off
    t.equal(kept.ws.readyState, WebSocket.OPEN, 'off again (0): private sockets stay')
    t.equal(
      (await raw(sim.port, { method: 'PUT', path: '/__sim/faults', body: JSON.stringify({ privateStreamDropMs: 5 }) })).status,
      400,
      'a period under 100 ms → 400',
    )
  })

  t.test('admin routes', async (t) => {
    const put = await raw(sim.port, {
      method: 'PUT',
      path: '/__sim/faults',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ errorRate: 0.5, errorStatus: 504 }),
    })
    t.equal(put.status, 200, 'PUT /__sim/faults')
    t.match(put.json, { errorRate: 0.5, errorStatus: 504, outage: false }, 'returns the merged faults')
    t.match((await raw(sim.port, { method: 'GET', path: '/__sim/faults' })).json, { errorRate: 0.5 }, 'GET /__sim/faults')
    t.same(sim.faults.get().errorStatus, 504, 'same state as the API')
    const bad = await raw(sim.port, {
      method: 'PUT',
      path: '/__sim/faults',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ errorRate: 2 }),
    })
    t.equal(bad.status, 400, 'invalid fault → 400')
    t.equal(
      (await raw(sim.port, { method: 'PUT', path: '/__sim/faults', body: JSON.stringify({ nope: 1 }) })).status,
      400,
      'unknown fault → 400',
    )
    t.match(
      (await raw(sim.port, { method: 'POST', path: '/__sim/faults/reset' })).json,
      { errorRate: 0, errorStatus: 503 },
      'POST /__sim/faults/reset',
    )
    const price = await raw(sim.port, { method: 'POST', path: '/__sim/price', body: JSON.stringify({ price: 123_456 }) })
    t.equal(price.json.lastPrice, 123_456, 'POST /__sim/price sets the last price')
    t.equal(sim.market.price(), 123_456, 'visible through the API')
    t.equal(
      (await raw(sim.port, { method: 'POST', path: '/__sim/price', body: JSON.stringify({ price: -1 }) })).status,
      400,
      'bad price → 400',
    )
    const stats = (await raw(sim.port, { method: 'GET', path: '/__sim/stats' })).json
    t.ok(stats.total > 0 && typeof stats.byPath['/v3/account'] === 'number', 'GET /__sim/stats counts exchange requests by path')
    t.notOk(
      Object.keys(stats.byPath).some((p) => p.startsWith('/__sim')),
      'admin calls are not counted',
    )
  })

  t.test('stats filters', async (t) => {
    sim.stats.reset()
    const since = Date.now()
    await call(sim, alice, 'GET', '/account')
    await call(sim, alice, 'GET', '/account')
    await call(sim, undefined, 'GET', '/ping')
    t.equal(sim.stats.requests(), 3, 'all requests')
    t.equal(sim.stats.requests({ path: '/v3/account' }), 2, 'by path')
    t.equal(sim.stats.requests({ key: alice.key }), 2, 'by key')
    t.equal(sim.stats.requests({ sinceMs: since + 60_000 }), 0, 'by time')
    t.match(sim.stats.log()[0], { method: 'GET', path: '/v3/account', key: alice.key, status: 200 }, 'log entry shape')
  })
})

t.test('admin routes are absent unless opts.admin', async (t) => {
  const sim = await startSimulator({ accounts: testAccounts(), tickMs: 3_600_000, rateLimit: relaxed })
  t.teardown(() => sim.close())
  t.equal((await raw(sim.port, { method: 'GET', path: '/__sim/faults' })).status, 404, '/__sim → 404')
})

t.test('pause refuses connections; resume listens on the same port', async (t) => {
  const sim = await startSimulator({ accounts: testAccounts(), tickMs: 3_600_000, rateLimit: relaxed })
  t.teardown(() => sim.close())
  const port = sim.port
  const ws = new WebSocket(sim.streamUrl)
  ws.on('error', () => {})
  await new Promise((r) => ws.once('open', r))
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)))
  await sim.pause()
  t.equal(await closed, 1006, 'stream sockets dropped')
  await t.rejects(raw(port, { method: 'GET', path: '/v3/ping' }), { code: 'ECONNREFUSED' }, 'connection refused while paused')
  await sim.resume()
  t.equal(sim.port, port, 'same port')
  const r = await raw(port, { method: 'GET', path: '/v3/ping' })
  t.equal(r.status, 200, 'answers again after resume')
  t.equal(r.json, 'pong', 'pong')
})
