/**
 * LnmClient against small local node:http servers: signing on the wire, validation, typed errors,
 * caching/coalescing, clock offset, secrets never leaking, metrics labels.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { Registry } from 'prom-client'
import { until } from '../streaming/helpers.ts'
import { createMetrics } from '../../metrics.ts'
import { LnmClient, LnmError } from '../../exchange/client.ts'
import { toAccountSnapshot, toPositionsSnapshot, toTickerSnapshot } from '../../exchange/snapshots.ts'
import {
  clientOnLocalServer,
  rejects,
  ACCOUNT,
  CREDS,
  CREDS2,
  TICKER,
  collectingLogger,
  json,
  lnmHandler,
  localServer,
  trade,
  tripwire,
  verifySignature,
} from './helpers.ts'

const wire = tripwire()
const fast = { retry: { baseMs: 10, capMs: 40, retries: 3 }, limits: { publicPerSec: 1000, authPerSec: 1000 } }

const setup = (t: Test, handler = lnmHandler(), extra: Partial<ConstructorParameters<typeof LnmClient>[0]> = {}) =>
  clientOnLocalServer(t, handler, { ...fast, ...extra })

t.test('read-only calls: signed on the wire, validated, typed results', async (t) => {
  const { server, client } = await setup(t)
  t.equal(await client.ping(), 'pong', 'ping → "pong"')
  const time = await client.time()
  t.ok(Math.abs(time.offsetMs) < 1000, 'offset learned from /time is ~0 on a local server')
  t.same(await client.account(CREDS), ACCOUNT, 'account validated and returned')
  t.equal((await client.runningTrades(CREDS))[0]!.running, true, 'running trades')
  t.equal((await client.openTrades(CREDS))[0]!.open, true, 'open trades')
  const closed = await client.closedTrades(CREDS, { from: new Date('2023-10-31T00:00:00.000Z'), limit: 10 })
  t.equal(closed.data[0]!.closed, true, 'closed trades page data')
  t.equal(closed.nextCursor, null, 'closed trades nextCursor')
  t.equal((await client.ticker()).lastPrice, TICKER.lastPrice, 'ticker')
  t.equal((await client.candles({ from: '2026-01-01T00:00:00.000Z', range: '1h' })).data.length, 1, 'candles page')
  t.equal((await client.oracleIndex({ limit: 1 }))[0]!.index, 67500, 'oracle index')
  t.equal((await client.oracleLastPrice({ limit: 1 }))[0]!.lastPrice, 67520, 'oracle last price')

  const closedReq = server.requests.find((r) => r.url.startsWith('/v3/futures/isolated/trades/closed'))!
  t.equal(
    closedReq.url,
    '/v3/futures/isolated/trades/closed?from=2023-10-31T00%3A00%3A00.000Z&limit=10',
    'query percent-encoded on the wire, undefined params dropped',
  )
  t.ok(verifySignature(closedReq, closedReq.body, CREDS.secret), 'signature verifies over the raw query with its "?"')
  const acc = server.requests.find((r) => r.url === '/v3/account')!
  t.equal(acc.headers['accept'], 'application/json', 'accept: application/json')
  t.equal(acc.headers['content-type'], undefined, 'GET sends no content-type')
  t.equal(acc.headers['lnm-access-key'], CREDS.key, 'key header')
  t.equal(acc.headers['lnm-access-passphrase'], CREDS.passphrase, 'passphrase header')
  const ping = server.requests.find((r) => r.url === '/v3/ping')!
  t.equal(ping.headers['lnm-access-signature'], undefined, 'public calls are unsigned')
})

t.test('POST body: exact bytes signed, content-type set', async (t) => {
  const { server, client } = await setup(t)
  const res = await client
    .request({
      method: 'POST',
      path: '/futures/isolated/trade',
      creds: CREDS,
      body: { type: 'market', side: 'buy', leverage: 10, quantity: 100 },
      validator: (await import('../../exchange/schemas.ts')).V.trades,
    })
    .catch((e: LnmError) => e)
  t.equal(
    (res as LnmError).kind,
    'bad_response',
    'single trade does not match an array validator → bad_response (validation applies to POST too)',
  )
  const post = server.requests.find((r) => r.method === 'POST')!
  t.equal(post.body, '{"type":"market","side":"buy","leverage":10,"quantity":100}', 'body sent is JSON.stringify in key order')
  t.equal(post.headers['content-type'], 'application/json', 'content-type on POST with body')
  t.ok(verifySignature(post, post.body, CREDS.secret), 'signature is over the exact body bytes')
})

t.test('re-signs every attempt with a fresh timestamp', async (t) => {
  let n = 0
  const ok = lnmHandler()
  const { server, client } = await setup(t, (req, res, body, i) => {
    if (req.url === '/v3/account' && n++ < 2) return json(res, 503, { code: 'maintenance', message: 'down' })
    ok(req, res, body, i)
  })
  await client.account(CREDS)
  const acc = server.requests.filter((r) => r.url === '/v3/account')
  t.equal(acc.length, 3, 'two 503 then success')
  t.ok(
    acc.every((r) => verifySignature(r, r.body, CREDS.secret)),
    'every attempt carries a valid signature',
  )
  t.equal(new Set(acc.map((r) => r.headers['lnm-access-timestamp'])).size, 3, 'each attempt has its own timestamp')
})

t.test('validation: garbage, truncated, wrong shape → bad_response, no retry', async (t) => {
  let mode = 'garbage'
  const { server, client } = await setup(
    t,
    (req, res) => {
      if (mode === 'garbage') return json(res, 200, '<html>oops</html>')
      if (mode === 'truncated-json') return json(res, 200, '{"index": 67500.5, "lastPri')
      if (mode === 'wrong-shape') return json(res, 200, { index: 'high', lastPrice: null })
      if (mode === 'empty') return json(res, 200, '')
      if (mode === 'short-body') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' })
        res.write('{"index": 675')
        setTimeout(() => res.socket?.destroy(), 20)
      }
    },
    { cacheTtl: { tickerMs: 1 } },
  )
  for (const m of ['garbage', 'truncated-json', 'wrong-shape', 'empty', 'short-body']) {
    mode = m
    const before = server.requests.length
    const e = await rejects(client.ticker())
    t.equal(e.kind, 'bad_response', `${m} → bad_response`)
    t.equal(e.endpoint, '/futures/ticker', `${m}: endpoint is the route template`)
    t.equal(server.requests.length - before, 1, `${m}: not retried`)
  }
})

t.test('typed HTTP errors', async (t) => {
  let status = 401
  const { client } = await setup(t, (_req, res) => json(res, status, { code: 'someCode', message: 'nope' }))
  const cases: Array<[number, string]> = [
    [401, 'credentials_rejected'],
    [403, 'credentials_rejected'],
    [400, 'client_error'],
    [404, 'client_error'],
    [500, 'unavailable'],
  ]
  for (const [s, kind] of cases) {
    status = s
    const e = await rejects(client.account(CREDS))
    t.equal(e.kind, kind, `${s} → ${kind}`)
    t.equal(e.status, s, `${s}: status kept`)
    t.equal(e.code, 'someCode', `${s}: server code kept`)
  }
})

t.test('dropped connection → typed unavailable, no crash', async (t) => {
  const { server, client } = await setup(t, (req, res) => {
    res.socket?.destroy()
  })
  const e = await rejects(client.ping())
  t.equal(e.kind, 'unavailable', 'socket destroyed by the server → unavailable')
  t.equal(server.count('/v3/ping'), 1, 'a dropped (post-connect) connection is not a connect-phase error: no retry')
})

t.test('connection refused → connect-phase error retried, then unavailable', async (t) => {
  const server = await localServer(() => {})
  const port = server.port
  await server.close()
  const metrics = createMetrics(new Registry())
  const client = new LnmClient({ baseUrl: `http://127.0.0.1:${port}/v3`, metrics, ...fast })
  t.teardown(() => client.close())
  const e = await rejects(client.ping())
  t.equal(e.kind, 'unavailable', 'refused → unavailable')
  t.equal(e.code, 'ECONNREFUSED', 'code says why')
  const retries = (await metrics.upstreamRetries.get()).values.reduce((a, v) => a + v.value, 0)
  t.equal(retries, 3, 'connect errors were retried 3 times')
})

t.test('100 concurrent ticker() callers → exactly 1 upstream request per cache period', async (t) => {
  const { server, client, metrics } = await setup(t, (req, res) => setTimeout(() => json(res, 200, TICKER), 30), {
    cacheTtl: { tickerMs: 300 },
  })
  const r1 = await Promise.all(Array.from({ length: 100 }, () => client.ticker()))
  t.equal(server.count('/v3/futures/ticker'), 1, 'one upstream call for 100 concurrent callers')
  t.ok(
    r1.every((x) => x.lastPrice === TICKER.lastPrice),
    'every caller got the ticker',
  )
  await Promise.all(Array.from({ length: 100 }, () => client.ticker()))
  t.equal(server.count('/v3/futures/ticker'), 1, 'still one within the TTL (cache hits)')
  await sleep(350) // waits out the ticker cache TTL, which is what is tested
  await Promise.all(Array.from({ length: 100 }, () => client.ticker()))
  t.equal(server.count('/v3/futures/ticker'), 2, 'one more after the TTL expired')
  const hits = (await metrics.cacheHits.get()).values.find((v) => v.labels.cache === 'ticker')?.value ?? 0
  t.ok(hits >= 100, 'ticker cache hits counted')
})

t.test('candles cached per query', async (t) => {
  const { server, client } = await setup(t)
  await client.candles({ from: '2026-01-01T00:00:00.000Z', range: '1h' })
  await client.candles({ from: '2026-01-01T00:00:00.000Z', range: '1h' })
  await client.candles({ from: '2026-01-01T00:00:00.000Z', range: '1m' })
  t.equal(server.count('/v3/futures/candles'), 2, 'same query served from cache, different range fetched')
})

t.test('private coalescing: same creds + endpoint in flight → one call; other creds → own call', async (t) => {
  const base = lnmHandler()
  const { server, client } = await setup(t, (req, res, body, n) => setTimeout(() => base(req, res, body, n), 50))
  await client.time()
  const results = await Promise.all([...Array.from({ length: 10 }, () => client.account(CREDS)), client.account(CREDS2)])
  t.equal(server.count('/v3/account'), 2, '10 identical calls collapsed into 1, the other key has its own')
  t.ok(
    results.every((r) => r.username === 'satoshi'),
    'all callers resolved',
  )
  const keys = server.requests
    .filter((r) => r.url === '/v3/account')
    .map((r) => r.headers['lnm-access-key'])
    .sort()
  t.same(keys, [CREDS.key, CREDS2.key].sort(), 'each key signed its own request')
  await client.account(CREDS)
  t.equal(server.count('/v3/account'), 3, 'private calls are not cached after completion')
})

t.test('clock skew: learned offset makes signed requests accepted; 401 timestamp → re-learn', async (t) => {
  let skew = 120_000
  const { server, client } = await setup(t, lnmHandler({ skewMs: () => skew }))
  const acc = await client.account(CREDS)
  t.equal(acc.username, 'satoshi', 'accepted despite a server clock 120 s ahead')
  t.ok(Math.abs(client.clockOffsetMs - 120_000) < 1000, `offset learned lazily (${client.clockOffsetMs} ms)`)
  t.equal(server.count('/v3/time'), 1, 'one /time call before the first signed call')
  skew = -90_000
  const acc2 = await client.account(CREDS)
  t.equal(acc2.username, 'satoshi', 'after the server clock jumped, the 401 triggered a re-learn and one re-signed retry')
  t.ok(Math.abs(client.clockOffsetMs + 90_000) < 1000, `offset re-learned (${client.clockOffsetMs} ms)`)
  t.equal(server.count('/v3/time'), 2, 'exactly one extra /time call')
})

t.test('an exchange without a working /time: signed calls go on with the previous offset, /time is retried later', async (t) => {
  const base = lnmHandler()
  const { server, client } = await setup(t, (req, res, body, n) => {
    if (req.url?.startsWith('/v3/time')) return json(res, 404, { code: 'notFound', message: 'Not Found' })
    return base(req, res, body, n)
  })
  for (let i = 0; i < 5; i++)
    t.equal((await client.account(CREDS, { deadlineMs: 5000 })).username, 'satoshi', `signed call ${i + 1} answered`)
  t.equal(server.count('/v3/time'), 1, 'one failed /time attempt, not one per signed call')
  t.equal(server.count('/v3/account'), 5, 'every signed call reached the exchange')
})

t.test('deadline and caller abort', async (t) => {
  const { client } = await setup(t, (req, res) => setTimeout(() => json(res, 200, '"pong"'), req.url === '/v3/ping' ? 2000 : 100))
  const t0 = Date.now()
  const e = await rejects(client.ping({ deadlineMs: 300 }))
  const took = Date.now() - t0
  t.equal(e.kind, 'timeout', 'slow upstream past the budget → timeout')
  t.ok(took >= 280 && took < 700, `rejected within budget (${took} ms)`)
  const ac = new AbortController()
  setTimeout(() => ac.abort(), 100)
  const e2 = await rejects(client.ping({ signal: ac.signal }))
  t.equal(e2.kind, 'timeout', 'caller abort → typed timeout')
  t.equal(e2.code, 'ABORTED', 'code ABORTED')
  const ok = await client.request(
    {
      method: 'GET',
      path: '/time-slow',
      validator: { name: 'x', check: (v: unknown): v is string => typeof v === 'string', firstError: () => 'x' },
    },
    { deadlineMs: 1000 },
  )
  t.equal(ok, 'pong', 'latency (100 ms) within the budget (1 s) → result')
})

t.test('secrets never appear in errors, logs or metrics', async (t) => {
  const { lines, logger } = collectingLogger()
  const echo = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    // a hostile upstream that echoes what it got
    const h = req.headers
    if (req.url === '/v3/time') return json(res, 200, { time: new Date().toISOString() })
    const msg = `bad ${h['lnm-access-key']} ${h['lnm-access-passphrase']} ${h['lnm-access-signature']} ${CREDS.secret}`
    const status = req.url === '/v3/account' ? 401 : req.url?.startsWith('/v3/futures/isolated/trades/open') ? 503 : 200
    if (status === 200) return json(res, 200, { nope: msg })
    json(res, status, { code: status === 401 ? String(h['lnm-access-key']) : 'echo', message: msg }, { 'retry-after': '0' })
  }
  const server = await localServer(echo)
  const metrics = createMetrics(new Registry())
  const client = new LnmClient({ baseUrl: server.url, metrics, logger, ...fast })
  t.teardown(async () => {
    await client.close()
    await server.close()
  })
  const errs = [await rejects(client.account(CREDS)), await rejects(client.openTrades(CREDS)), await rejects(client.runningTrades(CREDS))]
  const sigs = server.requests.map((r) => String(r.headers['lnm-access-signature'] ?? '')).filter(Boolean)
  const forbidden = [CREDS.key, CREDS.secret, CREDS.passphrase, ...sigs]
  const text = [...errs.map((e) => `${e.message} ${e.stack} ${JSON.stringify(e)}`), ...lines, await metrics.registry.metrics()].join('\n')
  for (const s of forbidden)
    t.notOk(
      text.includes(s),
      `never leaked: ${s === CREDS.secret ? 'secret' : s === CREDS.passphrase ? 'passphrase' : s === CREDS.key ? 'key' : 'a signature'}`,
    )
  t.ok(lines.length > 0, 'logs were written (retries)')
  t.match(errs[0]!.message, /\[redacted\]/, 'echoed credentials were redacted')
})

t.test('metrics: endpoint labels are route templates', async (t) => {
  const { client, metrics } = await setup(t)
  await client.runningTrades(CREDS)
  await client.closedTrades(CREDS, { cursor: 'abc', limit: 5 })
  const values = (await metrics.upstreamRequests.get()).values
  const endpoints = new Set(values.map((v) => String(v.labels.endpoint)))
  t.ok(endpoints.has('/futures/isolated/trades/running'), 'running template')
  t.ok(endpoints.has('/futures/isolated/trades/closed'), 'closed template without query')
  t.ok(
    [...endpoints].every((e) => !e.includes('?') && !e.includes(CREDS.key)),
    'no query, no key in labels',
  )
  t.ok(
    values.some((v) => v.labels.status === '200'),
    'status label',
  )
  const dur = (await metrics.upstreamDuration.get()).values.filter((v) => v.metricName?.endsWith('_count'))
  t.ok(dur.length > 0, 'duration histogram observed')
})

t.test('snapshot mappers', async (t) => {
  t.same(
    toAccountSnapshot(ACCOUNT),
    { username: 'satoshi', balance: 100000, syntheticUsdBalance: 0, feeTier: 1, equity: 100000 },
    'account snapshot keeps only wire fields; equity starts at the balance',
  )
  const running = [trade({ margin: 1000, pl: 50, quantity: 10 }), trade({ id: 'b', margin: 500, pl: -20, quantity: 5 })] as never[]
  const open = [trade({ id: 'o', open: true, running: false, margin: 99, pl: 0, quantity: 1 })] as never[]
  const pos = toPositionsSnapshot(running, open)
  t.same(pos.totals, { margin: 1500, pl: 30, quantity: 15, count: 2 }, 'totals over running trades only')
  t.equal(pos.open.length, 1, 'open trades carried')
  t.same(
    toTickerSnapshot(TICKER),
    { index: 67500.5, lastPrice: 67520, bidPrice: 67515, askPrice: 67525, fundingRate: 0.0001, fundingTime: '2026-07-17T16:00:00.000Z' },
    'best bid/ask from the smallest minSize bucket',
  )
  t.same(toTickerSnapshot({ ...TICKER, prices: [] }).bidPrice, 67520, 'no buckets → lastPrice')
})

t.test('close() rejects pending calls with a typed error', async (t) => {
  const server = await localServer(() => {})
  const client = new LnmClient({ baseUrl: server.url, ...fast })
  t.teardown(() => server.close())
  const p = rejects(client.ping())
  await until(() => server.requests.length === 1, 3000, 'the ping in flight at the server')
  await client.close()
  const e = await p
  t.equal(e.kind, 'unavailable', 'pending call rejected on close')
  const e2 = await rejects(client.ping())
  t.equal(e2.code, 'CLIENT_CLOSED', 'calls after close are rejected')
})

t.test('no uncaught exceptions or unhandled rejections', async (t) => {
  await sleep(50) // proves no late exception or rejection surfaces within 50 ms of the last test
  wire.stop()
  t.same(wire.seen.map(String), [], 'tripwire saw nothing')
})
