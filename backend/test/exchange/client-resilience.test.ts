/**
 * LnmClient robustness against local servers: timeouts, retry policy, Retry-After, 429 storms,
 * circuit breaker, client-side throttle (measured at the server).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { LnmClientOptions } from '../../exchange/client.ts'
import { V } from '../../exchange/schemas.ts'
import { fullJitterBackoff, parseRetryAfter } from '../../exchange/resilience.ts'
import { CREDS, CREDS2, clientOnLocalServer, json, lnmHandler, maxPerWindow, rejects, tripwire, type Handler } from './helpers.ts'

const wire = tripwire()
type T = Test

const setup = (t: T, handler: Handler, opts: Partial<LnmClientOptions> = {}) =>
  clientOnLocalServer(t, handler, { retry: { baseMs: 20, capMs: 80, retries: 3 }, ...opts })

const sum = async (
  m: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> },
  f: (l: Record<string, unknown>) => boolean = () => true,
) => (await m.get()).values.filter((v) => f(v.labels)).reduce((a, v) => a + v.value, 0)

t.test('backoff helpers', async (t) => {
  t.equal(
    fullJitterBackoff(0, 1000, 8000, () => 0.999),
    999,
    'attempt 0 ceiling is the base',
  )
  t.equal(
    fullJitterBackoff(5, 1000, 8000, () => 0.999),
    7992,
    'ceiling capped at 8 s',
  )
  t.equal(
    fullJitterBackoff(2, 1000, 8000, () => 0),
    0,
    'full jitter can be 0',
  )
  t.equal(parseRetryAfter('2'), 2000, 'Retry-After seconds → ms')
  t.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT'), undefined, 'HTTP-date form not supported (like the official SDK)')
})

t.test('5xx 502/503/504 → retried 3 times then typed unavailable; 500 not retried', async (t) => {
  let status = 503
  const { server, client, metrics } = await setup(t, (_req, res) => json(res, status, { code: 'x', message: 'down' }))
  for (const s of [502, 503, 504]) {
    status = s
    const before = server.requests.length
    const e = await rejects(client.ping())
    t.equal(e.kind, 'unavailable', `${s} → unavailable`)
    t.equal(e.status, s, `${s}: status kept`)
    t.equal(server.requests.length - before, 4, `${s}: 1 attempt + 3 retries`)
  }
  status = 500
  const before = server.requests.length
  t.equal((await rejects(client.ping())).kind, 'unavailable', '500 → unavailable')
  t.equal(server.requests.length - before, 1, '500 is not retried')
  t.equal(await sum(metrics.upstreamRetries), 9, 'retries counted in metrics')
})

t.test('5xx then success → result', async (t) => {
  const { server, client } = await setup(t, (_req, res, _b, n) => (n <= 2 ? json(res, 502, {}) : json(res, 200, '"pong"')))
  t.equal(await client.ping(), 'pong', 'recovered after two 502')
  t.equal(server.requests.length, 3, 'three attempts')
})

t.test('429 + Retry-After → waits max(retryAfter, backoff) and retries', async (t) => {
  const { server, client, metrics } = await setup(t, (_req, res, _b, n) =>
    n === 1 ? json(res, 429, { code: 'rateLimited', message: 'Too Many Requests' }, { 'retry-after': '1' }) : json(res, 200, '"pong"'),
  )
  const t0 = Date.now()
  t.equal(await client.ping(), 'pong', 'succeeded after the 429')
  const gap = server.requests[1]!.at - server.requests[0]!.at
  t.ok(gap >= 1000, `second attempt waited Retry-After (gap ${gap} ms ≥ 1000)`)
  t.ok(gap < 1400, `and not much more (gap ${gap} ms)`)
  t.comment(`measured Retry-After wait: ${gap} ms; call took ${Date.now() - t0} ms`)
  t.equal(await sum(metrics.upstreamRetries, (l) => l.reason === '429'), 1, 'retry reason 429 counted')
})

t.test('429 storm → typed rate_limited within the budget', async (t) => {
  const { server, client } = await setup(t, (req, res) =>
    req.url === '/v3/time'
      ? json(res, 200, { time: new Date().toISOString() })
      : json(res, 429, { message: 'Too Many Requests' }, { 'retry-after': '1' }),
  )
  await client.time()
  // the call without a budget (below) waits out three Retry-After seconds on the public bucket: it runs alongside
  // the signed call with a budget, whose bucket is its key's, instead of after it
  const unbudgeted = rejects(client.ping())
  const t0 = Date.now()
  const e = await rejects(client.account(CREDS, { deadlineMs: 2500 }))
  const took = Date.now() - t0
  t.equal(e.kind, 'rate_limited', 'rate_limited')
  t.equal(e.retryAfterMs, 1000, 'retryAfterMs from the header')
  t.ok(took <= 2500, `returned within the 2.5 s budget (${took} ms)`)
  t.ok(server.count('/v3/account') >= 2, 'it did retry while the budget allowed')
  t.comment(`429 storm: ${server.count('/v3/account')} attempts, rejected after ${took} ms`)
  // without a budget: 4 attempts
  const e2 = await unbudgeted
  t.equal(e2.kind, 'rate_limited', 'without a deadline: rate_limited after 3 retries')
  t.equal(server.count('/v3/ping'), 4, '1 + 3 attempts')
})

t.test('headers timeout → typed timeout, not retried', async (t) => {
  const { server, client } = await setup(t, () => {}, { timeouts: { connectMs: 1000, headersMs: 200, bodyMs: 200 } })
  const t0 = Date.now()
  const e = await rejects(client.ping())
  t.equal(e.kind, 'timeout', 'timeout')
  t.equal(e.code, 'HEADERS_TIMEOUT', 'headers phase')
  const took = Date.now() - t0
  t.ok(took >= 190 && took < 600, `fails at the 200 ms headers timeout (${took} ms)`)
  t.equal(server.requests.length, 1, 'read timeouts are not retried')
})

t.test('body timeout → typed timeout', async (t) => {
  const { client } = await setup(
    t,
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
      res.write('{"ti')
    },
    { timeouts: { connectMs: 1000, headersMs: 1000, bodyMs: 200 } },
  )
  const e = await rejects(client.time())
  t.equal(e.kind, 'timeout', 'stalled body → timeout')
  t.equal(e.code, 'BODY_TIMEOUT', 'body phase')
})

t.test('POST is never retried after a read timeout', async (t) => {
  const { server, client } = await setup(
    t,
    (req, res) => {
      if (req.url === '/v3/time') return json(res, 200, { time: new Date().toISOString() })
      // swallow the POST: the trade "may have gone through"
    },
    { timeouts: { connectMs: 1000, headersMs: 200, bodyMs: 200 } },
  )
  const e = await rejects(
    client.request({
      method: 'POST',
      path: '/futures/isolated/trade',
      creds: CREDS,
      body: { side: 'buy', type: 'market', leverage: 10, quantity: 1 },
      validator: V.account,
    }),
  )
  t.equal(e.kind, 'timeout', 'typed timeout')
  t.equal(server.requests.filter((r) => r.method === 'POST').length, 1, 'exactly one POST reached the server')
})

t.test('POST is retried on 503 (server did not process it)', async (t) => {
  const base = lnmHandler()
  const { server, client } = await setup(t, (req, res, body, n) =>
    req.method === 'POST' && server.requests.filter((r) => r.method === 'POST').length === 1 ? json(res, 503, {}) : base(req, res, body, n),
  )
  const tr = await client.request({
    method: 'POST',
    path: '/futures/isolated/trade',
    creds: CREDS,
    body: { side: 'buy' },
    validator: V.trade,
  })
  t.equal(tr.running, true, 'second attempt succeeded')
  t.equal(server.requests.filter((r) => r.method === 'POST').length, 2, 'two POSTs')
})

t.test('outage → breaker opens; half-open single probe; closes on success', async (t) => {
  let down = true
  const { server, client, metrics } = await setup(
    t,
    (_req, res) => (down ? json(res, 503, {}) : setTimeout(() => json(res, 200, '"pong"'), 100)),
    {
      retry: { baseMs: 5, capMs: 10, retries: 0 },
      breaker: { failureThreshold: 3, openMs: 300 },
      limits: { publicPerSec: 1000, authPerSec: 1000, publicMode: 'spaced' },
    },
  )
  const origin = new URL(server.url).origin
  const state = async () => (await metrics.circuitState.get()).values.find((v) => v.labels.origin === origin)?.value
  for (let i = 0; i < 3; i++) t.equal((await rejects(client.ping())).kind, 'unavailable', `failure ${i + 1} is unavailable`)
  t.equal(client.circuitState, 'open', 'open after 3 consecutive failures')
  t.equal(await state(), 2, 'gauge says open (2)')
  const before = server.requests.length
  const t0 = Date.now()
  const e = await rejects(client.ping())
  t.equal(e.kind, 'circuit_open', 'fails fast with circuit_open')
  t.ok(Date.now() - t0 < 50, 'without waiting')
  t.ok((e.retryAfterMs ?? 0) > 0, 'retryAfterMs says when to come back')
  t.equal(server.requests.length, before, 'no upstream request while open')

  await sleep(320) // waits out openMs (300): the breaker half-opens on the first call after it
  down = false
  // first call after openMs is the single probe; a concurrent call is refused
  const slowProbe = client.ping()
  const concurrent = await rejects(client.time())
  t.equal(concurrent.kind, 'circuit_open', 'while the half-open probe is in flight, others are refused')
  t.equal(await slowProbe, 'pong', 'the probe succeeds')
  t.equal(client.circuitState, 'closed', 'closed after the successful probe')
  t.equal(await state(), 0, 'gauge says closed (0)')
  t.equal(await client.ping(), 'pong', 'traffic flows again')

  // a failing probe re-opens
  down = true
  for (let i = 0; i < 3; i++) await rejects(client.ping())
  await sleep(320) // waits out openMs again, so the next call is the probe
  t.equal((await rejects(client.ping())).kind, 'unavailable', 'failed probe')
  t.equal(client.circuitState, 'open', 'failed probe re-opens the circuit')
})

t.test('4xx and 429 do not open the breaker', async (t) => {
  const { client } = await setup(t, (_req, res) => json(res, 404, {}), {
    retry: { baseMs: 1, capMs: 1, retries: 0 },
    breaker: { failureThreshold: 2, openMs: 1000 },
  })
  for (let i = 0; i < 4; i++) await rejects(client.ping())
  t.equal(client.circuitState, 'closed', 'client errors mean the upstream is alive')
})

/**
 * The throttle tests run the exchange's limits (5 signed/s per key, 1 public/s) twice as fast and count in
 * half-second windows: the same number of slots per window, and the same bounds, in half the time.
 */
const SPEEDUP = 2
const WINDOW_MS = 1000 / SPEEDUP
const LIMITS = { publicPerSec: 1 * SPEEDUP, authPerSec: 5 * SPEEDUP }

t.test('throttle: a burst of 20 private calls stays ≤ 5/s at the server; other keys are independent', async (t) => {
  const { server, client } = await setup(t, lnmHandler(), { limits: LIMITS })
  await client.time()
  const t0 = Date.now()
  const calls = Array.from({ length: 20 }, (_, i) => client.closedTrades(CREDS, { cursor: `c${i}`, limit: 1 }))
  const other = client.account(CREDS2)
  await Promise.all([...calls, other])
  const elapsed = Date.now() - t0
  const times = server.requests.filter((r) => r.headers['lnm-access-key'] === CREDS.key).map((r) => r.at)
  const max = maxPerWindow(times, WINDOW_MS)
  const rate = ((times.length - 1) / ((times[times.length - 1]! - times[0]!) / 1000) / SPEEDUP).toFixed(2)
  t.equal(times.length, 20, '20 requests reached the server')
  t.ok(max <= 5, `at most 5 in any ${WINDOW_MS} ms window, 5/s at the real limits (max ${max})`)
  t.ok(elapsed >= 3800 / SPEEDUP, `the burst was spread over ≥ 3.8 s at the real limits (${elapsed} ms at ${SPEEDUP}×)`)
  t.comment(
    `throttle at ${SPEEDUP}×: 20 private calls in ${elapsed} ms, mean ${rate} req/s at the real limits, max ${max} per ${WINDOW_MS} ms window`,
  )
  const otherAt = server.requests.find((r) => r.headers['lnm-access-key'] === CREDS2.key)!.at
  t.ok(otherAt - t0 < 500 / SPEEDUP, 'another key was not queued behind the burst')
})

t.test('throttle: public calls ≤ 1/s shared by all callers; deadline → rate_limited instead of waiting', async (t) => {
  const { server, client } = await setup(t, lnmHandler(), { limits: LIMITS })
  await Promise.all([client.ping(), client.oracleIndex(), client.oracleLastPrice()])
  const times = server.requests.map((r) => r.at)
  t.ok(maxPerWindow(times, WINDOW_MS) <= 1, `public calls spaced ≥ ${WINDOW_MS} ms (max ${maxPerWindow(times, WINDOW_MS)} per window)`)
  const e = await rejects(client.ping({ deadlineMs: 200 / SPEEDUP }))
  t.equal(e.kind, 'rate_limited', 'the throttle slot is beyond the deadline → rate_limited at once')
  t.equal(e.code, 'CLIENT_THROTTLE', 'client-side throttle code')
})

t.test('no uncaught exceptions or unhandled rejections', async (t) => {
  await sleep(50) // proves no late exception or rejection surfaces within 50 ms of the last test
  wire.stop()
  t.same(wire.seen.map(String), [], 'tripwire saw nothing')
})
