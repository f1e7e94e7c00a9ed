import { setTimeout as sleep } from 'node:timers/promises'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { WebSocket } from 'ws'
import { startSimulator } from '../../simulator/index.ts'
import { call, connect, hmacB64, relaxed, testAccounts } from './helpers.ts'

t.test('Stream v1 JSON-RPC', async (t) => {
  const sim = await startSimulator({ accounts: testAccounts(), tickMs: 3_600_000, initialPrice: 100_000, rateLimit: relaxed })
  t.teardown(() => sim.close())
  const alice = sim.accounts[0]!

  t.test('hello, ping, time and the response envelope', async (t) => {
    const c = await connect(sim, t)
    const hello = await c.rpc('hello', { clientName: 'test', clientVersion: '1' })
    t.same(hello.result, { version: '1.0.0' }, 'hello result')
    t.equal(hello.jsonrpc, '2.0', 'JSON-RPC 2.0 envelope')
    t.ok(
      Number.isInteger(hello.usIn) && Number.isInteger(hello.usOut) && hello.usDiff === hello.usOut - hello.usIn,
      'usIn/usOut/usDiff in µs',
    )
    t.same(hello.rateLimit, { remaining: 9, limit: 10 }, 'rateLimit on every response')
    t.equal((await c.rpc('ping', undefined, 7)).result, 'pong', 'ping → "pong" (numeric id echoed)')
    const time = await c.rpc('time')
    t.ok(Math.abs(time.result.time - Date.now()) < 2000, 'time is integer ms')
  })

  t.test('subscribe, notifications, unsubscribe', async (t) => {
    const c = await connect(sim, t)
    const sub = await c.rpc('subscribe', {
      topics: ['futures/inverse/btc_usd/ticker', 'futures/inverse/btc_usd/lastPrice', 'futures/inverse/btc_usd/index'],
    })
    t.same(sub.result.subscribed.length, 3, 'subscribed to three topics')
    sim.market.setPrice(101_000)
    const tick = await c.next((f) => f.method === 'subscription' && f.params.topic === 'futures/inverse/btc_usd/ticker')
    t.match(
      tick.params.data,
      { time: Number, lastPrice: 101_000, index: Number, funding: { rate: Number, time: Number } },
      'ticker notification shape with ms times',
    )
    t.equal(tick.jsonrpc, '2.0', 'notification envelope')
    t.notOk('id' in tick, 'notifications carry no id')
    const lp = await c.next((f) => f.params?.topic === 'futures/inverse/btc_usd/lastPrice')
    t.same(Object.keys(lp.params.data).sort(), ['lastPrice', 'time'], 'lastPrice notification shape')
    const ix = await c.next((f) => f.params?.topic === 'futures/inverse/btc_usd/index')
    t.same(Object.keys(ix.params.data).sort(), ['index', 'time'], 'index notification shape')
    const un = await c.rpc('unsubscribe', { topics: ['futures/inverse/btc_usd/index'] })
    t.same(un.result.unsubscribed, ['futures/inverse/btc_usd/index'], 'unsubscribed')
    const all = await c.rpc('unsubscribeAll')
    t.equal(all.result.unsubscribed.length, 2, 'unsubscribeAll lists the rest')
    const before = c.frames.length
    sim.market.setPrice(102_000)
    await sleep(50) // proves no notification within 50 ms of unsubscribeAll
    t.equal(c.frames.length, before, 'no notifications after unsubscribeAll')
  })

  t.test('errors carry data.code', async (t) => {
    const c = await connect(sim, t)
    const unknown = await c.rpc('subscribe', { topics: ['futures/inverse/btc_usd/nope'] })
    t.equal(unknown.error.code, -32602, 'unknown topic → -32602')
    t.equal(unknown.error.data.code, 'INVALID_PARAMS', 'data.code INVALID_PARAMS')
    const method = await c.rpc('frobnicate')
    t.match(method.error, { code: -32601, data: { code: 'METHOD_NOT_FOUND' } }, 'unknown method → -32601')
    c.ws.send('{not json')
    const parse = await c.next((f) => f.error?.code === -32700)
    t.match(parse, { id: null, error: { data: { code: 'PARSE_ERROR' } } }, 'bad JSON → -32700 with id null')
    c.ws.send(JSON.stringify({ jsonrpc: '1.0', id: 'x', method: 'ping' }))
    t.match(await c.next((f) => f.id === 'x'), { error: { code: -32600, data: { code: 'INVALID_REQUEST' } } }, 'bad envelope → -32600')
    const who = await c.rpc('whoami')
    t.match(who.error, { code: -32401, data: { code: 'UNAUTHORIZED' } }, 'whoami before authenticate → -32401')
    const priv = await c.rpc('subscribe', { topics: ['futures/inverse/btc_usd/isolated/trades'] })
    t.equal(priv.error.code, -32401, 'private topic needs authentication')
  })

  t.test('authenticate with HMAC(secret, timestamp + nonce), whoami, private trade events', async (t) => {
    const c = await connect(sim, t)
    const timestamp = sim.now()
    const nonce = randomBytes(16).toString('hex')
    const bad = await c.rpc('authenticate', {
      key: alice.key,
      passphrase: alice.passphrase,
      timestamp,
      nonce,
      signature: hmacB64(alice.secret, `${timestamp}x${nonce}`),
    })
    t.match(bad.error, { code: -32401, data: { code: 'UNAUTHORIZED' } }, 'wrong signature → -32401')
    const stale = sim.now() - 60_000
    const old = await c.rpc('authenticate', {
      key: alice.key,
      passphrase: alice.passphrase,
      timestamp: stale,
      nonce,
      signature: hmacB64(alice.secret, `${stale}${nonce}`),
    })
    t.equal(old.error?.code, -32401, 'old timestamp → -32401')
    const ok = await c.rpc('authenticate', {
      key: alice.key,
      passphrase: alice.passphrase,
      timestamp,
      nonce,
      signature: hmacB64(alice.secret, `${timestamp}${nonce}`),
    })
    t.equal(ok.result.authenticated, true, 'authenticated')
    t.ok(Array.isArray(ok.result.permissions), 'permissions listed')
    const replay = await c.rpc('authenticate', {
      key: alice.key,
      passphrase: alice.passphrase,
      timestamp,
      nonce,
      signature: hmacB64(alice.secret, `${timestamp}${nonce}`),
    })
    t.equal(replay.error?.code, -32401, 'a reused nonce is refused')
    const who = await c.rpc('whoami')
    t.equal(who.result.apiKey, alice.key, 'whoami names the key')
    t.type(who.result.userId, 'string', 'and the user id')
    await c.rpc('subscribe', { topics: ['futures/inverse/btc_usd/isolated/trades'] })
    const o = (await call(sim, alice, 'POST', '/futures/isolated/trade', { type: 'market', side: 'buy', quantity: 10, leverage: 10 })).json
    const ev = await c.next((f) => f.params?.topic === 'futures/inverse/btc_usd/isolated/trades')
    t.match(ev.params.data, { pair: 'btc_usd', event: 'filled', trade: { id: o.id } }, 'trade event for the owner')
    t.type(ev.params.data.trade.createdAt, 'number', 'stream times are ms numbers')
  })

  t.test('10 messages/s per socket → -32429 with retryAfterMs', async (t) => {
    const c = await connect(sim, t)
    for (let i = 0; i < 11; i++) c.ws.send(JSON.stringify({ jsonrpc: '2.0', id: `b${i}`, method: 'ping' }))
    const last = await c.next((f) => f.id === 'b10')
    t.match(last.error, { code: -32429, data: { code: 'TOO_MANY_REQUESTS' } }, 'the 11th message is limited')
    t.ok(last.error.data.retryAfterMs > 0 && last.error.data.retryAfterMs <= 1000, 'retryAfterMs within the window')
    t.same(last.rateLimit, { remaining: 0, limit: 10 }, 'rateLimit.remaining 0')
    const tenth = await c.next((f) => f.id === 'b9')
    t.equal(tenth.result, 'pong', 'the 10th passed')
    await sleep(last.error.data.retryAfterMs + 20) // waits out the announced retryAfterMs, which is what is tested
    t.equal((await c.rpc('ping')).result, 'pong', 'allowed again after retryAfterMs')
  })

  t.test('16 KiB max payload and idle timeout', async (t) => {
    const big = await connect(sim, t)
    big.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(17 * 1024) } }))
    t.equal((await big.closed).code, 1009, 'oversized message closes with 1009')
    const quick = await startSimulator({ accounts: testAccounts(), tickMs: 3_600_000, streamIdleMs: 400 })
    t.teardown(() => quick.close())
    const idle = await connect(quick, t)
    const started = Date.now()
    const closed = await idle.closed
    t.ok(Date.now() - started >= 350, 'idle socket kept until the idle timeout')
    t.equal(closed.code, 1000, 'then closed by the server')
  })

  t.test('only /v1 upgrades', async (t) => {
    const ws = new WebSocket(sim.streamUrl.replace('/v1', '/v2'))
    const err = await new Promise<Error>((resolve) => ws.on('error', resolve))
    t.match(err.message, /404/, 'other paths → 404')
  })
})
