/**
 * The hub on a bare ws server: protocol answers, subscriptions, fan-out, staleness, and every close code
 * the hub produces by itself (the upgrade-level answers 401/503 are tested through the real app).
 */
import t from 'tap'
import WebSocket from 'ws'
import { FakeAuthError, startHub, token } from './hub-harness.ts'
import { WsClient, sleep, until } from './helpers.ts'

const ACCOUNT = { username: 'a', balance: 1, syntheticUsdBalance: 0, feeTier: 0 }
const TICKER = { index: 1, lastPrice: 1, bidPrice: 1, askPrice: 1, fundingRate: 0, fundingTime: '2026-01-01T00:00:00.000Z' }

t.test('auth by first message: ack, connection, then cached snapshots at once', async (t) => {
  const h = await startHub(t)
  // a producer answering the watch with its state, synchronously (like a warm poller)
  h.bus.subscribe('control', (e) => {
    if (e.kind === 'watch' && e.key === 'u1') h.publishAccount('u1', 'account', ACCOUNT, { seq: 1 })
    if (e.kind === 'watch' && e.key === 'ticker') h.publishTicker(TICKER, { seq: 1 })
  })
  const c = await WsClient.open(h.url)
  c.send({ type: 'auth', request_id: 'r1', token: token('u1') })
  const ack = await c.next((f) => f.type === 'ack')
  t.match(ack, { request_id: 'r1', status: 'ok' }, 'auth is acknowledged with its request_id')
  const conn = await c.next((f) => f.type === 'connection')
  t.match(conn, { userId: 'u1', protocol: 1, source: 'simulator', heartbeatMs: 25000 }, 'connection frame describes the session')
  const acc = await c.next((f) => f.type === 'data_update' && f.channel === 'account')
  t.same(acc.data, ACCOUNT, 'the cached account snapshot arrives right after connect')
  t.match(
    acc,
    { epoch: Number, seq: 1, sourceTs: Number, ts: Number, source: 'simulator' },
    'data_update carries epoch, seq, sourceTs, ts, source',
  )
  const tick = await c.next((f) => f.type === 'data_update' && f.channel === 'ticker')
  t.same(tick.data, TICKER, 'the cached ticker arrives too')
  t.match(
    h.control
      .filter((e) => e.kind === 'watch')
      .map((e) => e.key)
      .sort(),
    ['ticker', 'u1'],
    'the hub watched the account and the ticker',
  )
  c.close()
  t.same((await c.waitClose()).code, 1000, 'a client close with 1000 is echoed (close code 1000)')
  await until(async () => (await h.metric('lnm_gateway_ws_connections_closed_total', { code: '1000' })) === 1)
  t.equal(await h.metric('lnm_gateway_ws_connections_closed_total', { code: '1000' }), 1, 'close 1000 is counted by code')
})

t.test('every client message is answered; errors carry the request_id', async (t) => {
  const h = await startHub(t)
  const c = await WsClient.authed(h.url, token('u1'))
  c.send({ type: 'ping', request_id: 'p1' })
  t.match(await c.next((f) => f.type === 'pong'), { request_id: 'p1', serverTime: Number }, 'ping → pong with the same request_id')
  c.ws.send('{not json')
  t.match(await c.next((f) => f.type === 'error'), { code: 'bad_json' }, 'bad JSON → error bad_json')
  c.send({ type: 'nope', request_id: 'x1' })
  t.match(
    await c.next((f) => f.type === 'error'),
    { code: 'unknown_type', request_id: 'x1' },
    'unknown type → error unknown_type with request_id',
  )
  c.send({ type: 'subscribe', request_id: 's1' })
  t.match(
    await c.next((f) => f.type === 'error'),
    { code: 'invalid_message', request_id: 's1' },
    'missing channels → invalid_message with request_id',
  )
  c.send({ type: 'subscribe', request_id: 's2', channels: ['bogus'] })
  t.match(await c.next((f) => f.type === 'error'), { code: 'invalid_message', request_id: 's2' }, 'unknown channel → invalid_message')
  c.send([1, 2])
  t.match(await c.next((f) => f.type === 'error'), { code: 'invalid_message' }, 'a JSON array → invalid_message')
  c.ws.send(Buffer.from([1, 2, 3]), { binary: true })
  t.match(
    await c.next((f) => f.type === 'error'),
    { code: 'binary_not_supported' },
    'after auth a binary frame → error frame (the socket stays open)',
  )
  c.send({ type: 'unsubscribe', request_id: 'u1', channels: ['ticker', 'positions'] })
  t.match(
    await c.next((f) => f.type === 'ack'),
    { request_id: 'u1', status: 'ok', data: { channels: ['account'] } },
    'unsubscribe acks the remaining channels',
  )
  h.publishTicker(TICKER)
  h.publishAccount('u1', 'account', ACCOUNT)
  const next = await c.next((f) => f.type === 'data_update')
  t.equal(next.channel, 'account', 'an unsubscribed channel is not pushed')
  c.send({ type: 'subscribe', request_id: 's3', channels: ['ticker'] })
  t.match(await c.next((f) => f.type === 'ack'), { request_id: 's3', data: { channels: ['account', 'ticker'] } }, 'subscribe acks')
  t.match(await c.next((f) => f.type === 'data_update'), { channel: 'ticker' }, 'subscribing sends the cached snapshot of the new channel')
  c.send({ type: 'ping', request_id: 'p2', userId: 'someone-else' })
  t.match(await c.next((f) => f.type === 'pong'), { request_id: 'p2' }, 'unknown extra fields (another user id) are ignored')
  t.equal(c.closeInfo, null, 'none of these closed the socket')
  c.close()
})

t.test('data_update only on change, one serialization for all subscribers, never stale', async (t) => {
  const h = await startHub(t)
  const clients = await Promise.all(Array.from({ length: 20 }, () => WsClient.authed(h.url, token('u1'))))
  h.publishAccount('u1', 'account', ACCOUNT, { seq: 5 })
  await Promise.all(clients.map((c) => c.next((f) => f.type === 'data_update' && f.seq === 5)))
  t.pass('all 20 sockets of the user got the update')
  // duplicate (same epoch+seq) and older seq are dropped by the cache
  h.publishAccount('u1', 'account', ACCOUNT, { seq: 5 })
  h.publishAccount('u1', 'account', ACCOUNT, { seq: 4 })
  h.publishAccount('u1', 'account', { ...ACCOUNT, balance: 2 }, { seq: 6, sourceTs: Date.now() - 31_000 })
  h.publishAccount('u1', 'account', { ...ACCOUNT, balance: 3 }, { seq: 7 })
  const got = await clients[0]!.next((f) => f.type === 'data_update' && f.seq !== 5)
  t.equal(got.seq, 7, 'duplicates, older seqs and a stale snapshot were not pushed; the next fresh one was')
  t.ok(
    (await h.metric('lnm_gateway_stale_frames_withheld_total', { channel: 'account' })) >= 1,
    'the stale snapshot is counted as withheld',
  )
  // a stale cached snapshot is not sent on connect either
  h.publishAccount(
    'u2',
    'positions',
    { running: [], open: [], totals: { margin: 0, pl: 0, quantity: 0, count: 0 } },
    { sourceTs: Date.now() - 60_000 },
  )
  const late = await WsClient.authed(h.url, token('u2'))
  await sleep(100) // proves no stale snapshot is sent within 100 ms of connecting
  t.equal(
    late.all((f) => f.type === 'data_update' && f.channel === 'positions').length,
    0,
    'a stale cached snapshot is not sent on connect',
  )
  const fanout = (await h.metrics.fanoutDuration.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0
  t.ok(fanout >= 2, 'fan-outs are timed')
  for (const c of [...clients, late]) c.close()
})

t.test('refresh_data answers from cache and asks upstream at most once per window', async (t) => {
  const h = await startHub(t, { refreshMinMs: 5000 })
  const cs = await Promise.all(Array.from({ length: 10 }, () => WsClient.authed(h.url, token('u1'))))
  h.publishAccount('u1', 'account', ACCOUNT)
  for (const c of cs) await c.next((f) => f.type === 'data_update')
  for (const [i, c] of cs.entries()) c.send({ type: 'refresh_data', request_id: `rf${i}` })
  for (const [i, c] of cs.entries()) {
    t.match(await c.next((f) => f.type === 'ack' && f.request_id === `rf${i}`), { status: 'ok' }, `refresh ${i} acked`)
    await c.next((f) => f.type === 'data_update' && f.channel === 'account')
  }
  t.equal(h.control.filter((e) => e.kind === 'refresh').length, 1, '10 refresh_data from 10 sockets → one upstream refresh')
  for (const c of cs) c.close()
})

t.test('close codes produced by the hub', async (t) => {
  t.test('4500: anything but auth before authentication', async (t) => {
    const h = await startHub(t)
    const c = await WsClient.open(h.url)
    c.send({ type: 'ping', request_id: 'p' })
    t.equal((await c.waitClose()).code, 4500, 'ping before auth → 4500')
    const b = await WsClient.open(h.url)
    b.ws.send(Buffer.from([0xde, 0xad]), { binary: true })
    t.equal((await b.waitClose()).code, 4500, 'a binary frame before auth → 4500')
    const j = await WsClient.open(h.url)
    j.ws.send('garbage')
    t.equal((await j.waitClose()).code, 4500, 'bad JSON before auth → 4500')
  })
  t.test('4501: invalid token; 4001: expired token; 4503: deleted user', async (t) => {
    const h = await startHub(t)
    const c = await WsClient.open(h.url)
    c.send({ type: 'auth', request_id: 'a', token: 'forged.token.value' })
    t.match(await c.next((f) => f.type === 'ack'), { request_id: 'a', status: 'error' }, 'the failed auth is answered')
    t.equal((await c.waitClose()).code, 4501, 'invalid token → 4501')
    const e = await WsClient.open(h.url)
    e.send({ type: 'auth', request_id: 'a', token: token('u1', -5) })
    t.equal((await e.waitClose()).code, 4001, 'expired token at auth → 4001')
    const d = await WsClient.open(h.url)
    d.send({ type: 'auth', request_id: 'a', token: token('deleted') })
    t.equal((await d.waitClose()).code, 4503, 'token of a deleted user → 4503')
    t.ok((await h.metric('lnm_gateway_auth_failures_total')) >= 3, 'auth failures are counted by reason')
  })
  t.test('4502: no auth within the time limit', async (t) => {
    const h = await startHub(t, { authTimeoutMs: 300 })
    const c = await WsClient.open(h.url)
    const t0 = Date.now()
    const info = await c.waitClose(3000)
    t.equal(info.code, 4502, 'auth timeout → 4502')
    t.ok(Date.now() - t0 >= 250, 'not before the limit')
  })
  t.test('4001: token expiry on an open socket, unless refreshed in-band', async (t) => {
    const h = await startHub(t)
    const a = await WsClient.authed(h.url, token('u1', 1))
    const b = await WsClient.authed(h.url, token('u1', 1))
    b.send({ type: 'auth', request_id: 'refresh', token: token('u1', 600) })
    t.match(await b.next((f) => f.type === 'ack' && f.request_id === 'refresh'), { status: 'ok' }, 'in-band re-auth acked')
    t.equal((await a.waitClose(4000)).code, 4001, 'expired token closes the socket with 4001')
    await sleep(300) // proves the refreshed socket is not closed within 300 ms after the other one expired
    t.equal(b.closeInfo, null, 'the socket that refreshed its token stays open')
    b.send({ type: 'auth', request_id: 'other', token: token('u2', 600) })
    t.equal((await b.waitClose()).code, 4503, "re-auth with another user's token → 4503")
  })
  t.test('1013: per-user admission limit', async (t) => {
    const h = await startHub(t, { maxConnectionsPerUser: 2 })
    const a = await WsClient.authed(h.url, token('u1'))
    const b = await WsClient.authed(h.url, token('u1'))
    const c = await WsClient.open(h.url)
    c.send({ type: 'auth', request_id: 'a', token: token('u1') })
    t.equal((await c.waitClose()).code, 1013, 'third socket of the same user → 1013')
    const other = await WsClient.authed(h.url, token('u2'))
    t.ok(other, 'another user is not affected')
    a.close()
    b.close()
    other.close()
  })
  t.test('1013: global limit reached after the upgrade (race)', async (t) => {
    const h = await startHub(t, { maxConnections: 2 })
    // MAX_CONNECTIONS counts authenticated sockets: unauthenticated ones have their own budget (the upgrade gate)
    const a = await WsClient.authed(h.url, token('u1'))
    const idle = await WsClient.open(h.url)
    t.equal(h.hub.refusal(), null, 'one authenticated socket and one still authenticating: below MAX_CONNECTIONS=2')
    const b = await WsClient.authed(h.url, token('u2'))
    idle.send({ type: 'auth', request_id: 'late', token: token('u3') })
    t.equal((await idle.waitClose()).code, 1013, 'authenticating when MAX_CONNECTIONS sockets are already authenticated → 1013')
    t.equal(h.hub.refusal(), 'over_capacity', 'the upgrade-level check now refuses too (503 on /ws)')
    a.close()
    b.close()
  })
  t.test('1009: message bigger than the limit', async (t) => {
    const h = await startHub(t, { maxPayload: 1024 })
    const c = await WsClient.authed(h.url, token('u1'))
    c.ws.send('x'.repeat(4096))
    t.equal((await c.waitClose()).code, 1009, 'too big → 1009')
    await until(async () => (await h.metric('lnm_gateway_ws_connections_closed_total', { code: '1009' })) === 1)
    t.equal(await h.metric('lnm_gateway_ws_connections_closed_total', { code: '1009' }), 1, '1009 counted')
  })
  t.test('4029: persistent flood after a rate_limited error frame', async (t) => {
    const h = await startHub(t, { rateLimitPerSec: 10 })
    const c = await WsClient.authed(h.url, token('u1'))
    for (let i = 0; i < 200; i++) c.send({ type: 'ping', request_id: `p${i}` })
    t.equal((await c.waitClose()).code, 4029, 'flood → 4029')
    t.ok(c.all((f) => f.type === 'error' && f.code === 'rate_limited').length === 1, 'one rate_limited error frame came first')
    t.ok(c.all((f) => f.type === 'pong').length <= 21, 'only the burst was answered')
  })
  t.test('1011: unexpected failure while verifying a token', async (t) => {
    const h = await startHub(t, {
      verify: async () => {
        throw new Error('database down')
      },
    })
    const c = await WsClient.open(h.url)
    c.send({ type: 'auth', request_id: 'a', token: 'whatever' })
    t.equal((await c.waitClose()).code, 1011, 'internal error → 1011')
  })
  t.test('4501 on logout of the token; 4503 when the user or credentials are gone', async (t) => {
    const h = await startHub(t)
    const a = await WsClient.authed(h.url, token('u1'))
    const b = await WsClient.authed(h.url, token('u1', 599))
    t.equal(h.hub.revokeToken('u1', `h:${token('u1')}`), 1, 'one socket used the revoked token')
    t.equal((await a.waitClose()).code, 4501, 'revoked token → 4501')
    await sleep(50) // proves the socket with another token is not closed within 50 ms of the revocation
    t.equal(b.closeInfo, null, 'a socket with another token of the same user stays')
    h.publishAccount('u1', 'account', ACCOUNT)
    t.equal(h.hub.forbidUser('u1', 'user deleted'), 1, 'forbidUser closes the rest')
    t.equal((await b.waitClose()).code, 4503, 'deleted user / credentials → 4503')
    t.notOk(h.hub.cache.get('account:u1', 'account'), "the user's cached snapshots are forgotten at once")
    t.ok(
      h.control.some((e) => e.kind === 'unwatch' && e.key === 'u1'),
      'the poller is released without grace',
    )
  })
  t.test('1001: drain closes every socket with 1001 spread over the window', async (t) => {
    const h = await startHub(t)
    const cs = await Promise.all(Array.from({ length: 30 }, () => WsClient.authed(h.url, token('u1'))))
    const t0 = Date.now()
    const drained = h.hub.drain(400)
    const codes = await Promise.all(cs.map((c) => c.waitClose().then((i) => ({ code: i.code, at: Date.now() - t0 }))))
    await drained
    t.ok(
      codes.every((c) => c.code === 1001),
      'all closed with 1001',
    )
    const spread = Math.max(...codes.map((c) => c.at)) - Math.min(...codes.map((c) => c.at))
    t.ok(spread >= 200, `closes were spread over the window (${spread} ms)`)
    t.equal(h.hub.refusal(), 'shutting_down', 'new sockets are refused while draining')
  })
})

t.test('heartbeat: a peer that does not answer pings is dropped', async (t) => {
  const h = await startHub(t, { heartbeatMs: 150 })
  const ws = new WebSocket(h.url, { autoPong: false })
  const c = new WsClient(ws)
  await new Promise((r) => ws.once('open', r))
  c.send({ type: 'auth', request_id: 'a', token: token('u1') })
  await c.next((f) => f.type === 'connection')
  const info = await c.waitClose(3000)
  t.equal(info.code, 1006, 'terminated without a close frame after a missed pong')
  const ok = await WsClient.authed(h.url, token('u1'))
  await sleep(500) // proves a peer answering pings is not terminated within 500 ms (several ping periods)
  t.equal(ok.closeInfo, null, 'a peer that answers pings stays')
  ok.close()
})

t.test('slow consumer: collapse to the latest snapshot, then 4008; others unaffected', async (t) => {
  const h = await startHub(t, { maxBufferedBytes: 64 * 1024, slowConsumerGraceMs: 400, closeGraceMs: 10_000 })
  const slow = await WsClient.authed(h.url, token('u1'))
  const fast = await WsClient.authed(h.url, token('u1'))
  // stop reading at the TCP level: the kernel buffers fill, then ws buffers on the server
  ;(slow.ws as unknown as { _socket: import('node:net').Socket })._socket.pause()
  const big = {
    running: Array.from({ length: 300 }, (_, i) => ({ id: `t${i}`, pad: 'x'.repeat(200) })),
    open: [],
    totals: { margin: 0, pl: 0, quantity: 0, count: 0 },
  }
  const lateness: number[] = []
  for (let i = 1; i <= 150; i++) {
    h.publishAccount('u1', 'positions', { ...big, totals: { ...big.totals, count: i } })
    const f = await fast.next((x) => x.type === 'data_update' && x.channel === 'positions' && x.data.totals.count === i, 3000)
    lateness.push(Date.now() - f.ts)
    if (slow.closeInfo || i % 10 === 0) await sleep(20)
  }
  t.ok((await h.metric('lnm_gateway_slow_consumer_collapsed_total')) >= 1, 'the slow socket was collapsed')
  await until(async () => (await h.metric('lnm_gateway_slow_consumer_drops_total')) >= 1, 3000)
  t.equal(await h.metric('lnm_gateway_slow_consumer_drops_total'), 1, 'then dropped as a slow consumer')
  lateness.sort((a, b) => a - b)
  const p99 = lateness[Math.floor(lateness.length * 0.99)]!
  t.ok(p99 < 250, `the fast socket's frames stayed on time (p99 lateness ${p99} ms)`)
  ;(slow.ws as unknown as { _socket: import('node:net').Socket })._socket.resume()
  t.equal((await slow.waitClose(8000)).code, 4008, 'the slow client, once it reads again, sees 4008')
  t.equal(fast.closeInfo, null, 'the fast socket is still open')
  fast.close()
})

t.test('a collapsed socket that catches up gets only the latest snapshot', async (t) => {
  const h = await startHub(t, { maxBufferedBytes: 32 * 1024, slowConsumerGraceMs: 5000 })
  const c = await WsClient.authed(h.url, token('u1'))
  const sock = (c.ws as unknown as { _socket: import('node:net').Socket })._socket
  sock.pause()
  // far more than loopback kernel buffers hold, so the gateway side has to buffer
  const pad = 'y'.repeat(50_000)
  for (let i = 1; i <= 200; i++) {
    h.publishAccount('u1', 'account', { ...ACCOUNT, balance: i, pad })
    if (i % 20 === 0) await sleep(5)
  }
  await until(async () => (await h.metric('lnm_gateway_slow_consumer_collapsed_total')) >= 1, 2000)
  t.ok((await h.metric('lnm_gateway_slow_consumer_collapsed_total')) >= 1, 'collapsed')
  sock.resume()
  const last = await c.next((f) => f.type === 'data_update' && f.data.balance === 200, 5000)
  t.ok(last, 'the latest snapshot arrives once the socket drains')
  const balances = c.all((f) => f.type === 'data_update').map((f) => f.data.balance)
  t.ok(balances.length < 200, `intermediate updates were collapsed (${balances.length} of 200 delivered)`)
  t.same(
    balances,
    [...balances].sort((a, b) => a - b),
    'in order, nothing older after newer',
  )
  t.equal(c.closeInfo, null, 'the socket that caught up stays open')
  c.close()
})

t.test('unexpected verify rejection shape is not an auth error', async (t) => {
  const h = await startHub(t, {
    verify: async () => {
      throw new FakeAuthError('revoked')
    },
  })
  const c = await WsClient.open(h.url)
  c.send({ type: 'auth', request_id: 'a', token: 'x' })
  t.equal((await c.waitClose()).code, 4501, 'revoked token → 4501 (do not reconnect with it)')
})
