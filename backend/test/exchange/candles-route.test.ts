/**
 * GET /api/candles end to end: a gateway in live mode against a simulator this test owns, counting the
 * `/v3/futures/candles` calls the exchange sees. Candles come back per range, aligned and ascending; one
 * gateway-wide cache answers every user (one upstream call per block however many ask at once); bad input is
 * a 400 that names the problem; no token is a 401; an exchange outage serves the cached copy marked stale, or a
 * 503 when nothing is cached.
 */
import t from 'tap'
import { liveGateway } from '../streaming/live.ts'
import { testAccounts } from '../helpers/app.ts'
import { until } from '../streaming/helpers.ts'

const PATH = '/v3/futures/candles'
const MIN = 60_000
/**
 * The official policy's 3 retries, with a backoff of 20 ms base / 160 ms cap instead of 1 s / 8 s, and the
 * client-side throttle at 50 public calls a second instead of 1: the simulator here answers at once, so what is
 * tested (blocks, the shared cache, coalescing, stale copies) is unchanged, without seconds of waiting.
 */
const build = { exchangeClient: { retry: { baseMs: 20, capMs: 160, retries: 3 }, limits: { publicPerSec: 50 } } }

t.test('candles per range, shared cache, validation, auth', async (t) => {
  const L = await liveGateway(t, {
    accounts: testAccounts(2),
    env: { LOG_LEVEL: 'warn', CANDLES_CACHE_MS: '600000' },
    sim: { tickMs: 0 },
    build,
  })
  const a = await L.user(0)
  const b = await L.user(1)

  t.match(await L.g.http('GET', '/api/candles?range=1m'), { status: 401 }, 'no bearer token → 401')

  const before = L.sim.stats.requests({ path: PATH })
  const r = await L.g.http('GET', '/api/candles?range=1m', { token: a.token })
  t.equal(r.status, 200, '1m candles ' + r.text.slice(0, 200))
  const calls = L.sim.stats.requests({ path: PATH }) - before
  t.ok(calls >= 1 && calls <= 2, `one exchange call per block of 500 candles (${calls})`)
  const c = r.body.candles as Array<{ time: number; open: number; high: number; low: number; close: number; volume: number }>
  t.ok(c.length >= 300, `hours of 1m history by default (${c.length} candles)`)
  t.ok(c[c.length - 1]!.time - c[0]!.time >= 5 * 3600_000, 'spanning more than 5 hours')
  t.ok(
    c.every((x) => x.time % MIN === 0),
    'open times on minute boundaries, epoch ms',
  )
  t.ok(
    c.every((x, i) => i === 0 || x.time > c[i - 1]!.time),
    'ascending, no duplicates',
  )
  t.ok(
    c.every((x) => x.low <= Math.min(x.open, x.close) && x.high >= Math.max(x.open, x.close)),
    'OHLC consistent',
  )
  t.equal(r.body.range, '1m')
  t.equal(r.body.stale, false, 'fresh')
  t.ok(r.body.fetchedAt <= Date.now() && Date.now() - r.body.fetchedAt < 60_000, 'fetchedAt is the time of the exchange answer')
  t.ok(r.body.ageMs >= 0, 'its age')

  const mid = L.sim.stats.requests({ path: PATH })
  const again = await L.g.http('GET', '/api/candles?range=1m', { token: b.token })
  t.equal(again.status, 200)
  // the default window ends now: across a minute boundary it may have moved by one candle, so compare the overlap
  const byTime = new Map(c.map((x) => [x.time, x]))
  const overlap = (again.body.candles as typeof c).filter((x) => byTime.has(x.time))
  t.ok(
    overlap.length >= c.length - 2 && overlap.every((x) => JSON.stringify(x) === JSON.stringify(byTime.get(x.time))),
    `the same history for another user (${overlap.length} of ${c.length} candles identical)`,
  )
  t.equal(L.sim.stats.requests({ path: PATH }), mid, 'a second request (another user) within the TTL does not reach the exchange')

  // a cold range asked by many dashboards at once: the misses share the upstream calls
  const cold = L.sim.stats.requests({ path: PATH })
  const many = await Promise.all(
    Array.from({ length: 8 }, (_, i) => L.g.http('GET', '/api/candles?range=5m', { token: i % 2 ? a.token : b.token })),
  )
  t.ok(
    many.every((x) => x.status === 200 && x.body.candles.length >= 250),
    '8 concurrent 5m answers',
  )
  t.ok(
    many.every((x) => x.body.candles.every((k: { time: number }) => k.time % (5 * MIN) === 0)),
    '5m buckets',
  )
  const coldCalls = L.sim.stats.requests({ path: PATH }) - cold
  t.ok(coldCalls >= 1 && coldCalls <= 2, `8 concurrent cold requests → ${coldCalls} exchange call(s), one per block`)

  // an explicit window, ISO and epoch ms
  const now = Date.now()
  const from = new Date(now - 48 * 3600_000).toISOString()
  const w = await L.g.http('GET', `/api/candles?range=1h&from=${encodeURIComponent(from)}&to=${now - 24 * 3600_000}`, { token: a.token })
  t.equal(w.status, 200, 'explicit window ' + w.text.slice(0, 200))
  t.ok(w.body.candles.length >= 20 && w.body.candles.length <= 25, `one day of 1h candles (${w.body.candles.length})`)
  t.ok(
    w.body.candles.every((k: { time: number }) => k.time >= Date.parse(from) && k.time <= now - 24 * 3600_000),
    'inside [from, to]',
  )

  t.match(
    await L.g.http('GET', '/api/candles?range=7m', { token: a.token }),
    { status: 400, body: { error: { code: 'validation_failed' } } },
    'unknown range → 400',
  )
  t.match(
    await L.g.http('GET', '/api/candles', { token: a.token }),
    { status: 400, body: { error: { code: 'validation_failed' } } },
    'range is required',
  )
  t.match(
    await L.g.http('GET', '/api/candles?range=1m&from=yesterday', { token: a.token }),
    { status: 400, body: { error: { code: 'bad_date', message: /^from: expected/ } } },
    'unreadable date → 400 bad_date',
  )
  t.match(
    await L.g.http('GET', `/api/candles?range=1m&from=${now}&to=${now - MIN}`, { token: a.token }),
    { status: 400, body: { error: { code: 'bad_date' } } },
    'from after to → 400',
  )
  t.match(
    await L.g.http('GET', `/api/candles?range=1m&from=${now - 2 * 86400_000}`, { token: a.token }),
    { status: 400, body: { error: { code: 'too_many_candles', message: /at most 1000 candles/ } } },
    'span over 1000 candles → 400',
  )
  t.match(await L.g.http('GET', '/api/candles?range=1m&limit=5', { token: a.token }), { status: 400 }, 'unknown parameter → 400')
})

t.test('exchange down: stale-marked cached copy, else 503 upstream_unavailable', async (t) => {
  const L = await liveGateway(t, {
    accounts: testAccounts(1),
    env: { LOG_LEVEL: 'warn', CANDLES_CACHE_MS: '1000' },
    sim: { tickMs: 0 },
    build,
  })
  const u = await L.user(0)
  const first = await L.g.http('GET', '/api/candles?range=15m', { token: u.token })
  t.equal(first.status, 200, 'cached while the exchange is up')
  t.equal(first.body.stale, false)

  L.sim.faults.set({ outage: true })
  t.teardown(() => L.sim.faults.reset())
  // CANDLES_CACHE_MS cannot go below 1 s: wait until the copy is older than that, not a fixed time
  await until(() => Date.now() > first.body.fetchedAt + 1050, 3000, 'the end of the cache TTL')
  const before = L.sim.stats.requests({ path: PATH })
  const stale = await L.g.http('GET', '/api/candles?range=15m', { token: u.token })
  t.equal(stale.status, 200, 'served from the cache ' + stale.text.slice(0, 200))
  t.ok(L.sim.stats.requests({ path: PATH }) > before, 'after the TTL the exchange was asked again')
  t.equal(stale.body.stale, true, 'marked stale')
  t.ok(stale.body.ageMs >= 1000, `with its age (${stale.body.ageMs} ms)`)
  t.equal(stale.body.fetchedAt, first.body.fetchedAt, 'the time of the copy served')
  t.same(stale.body.candles.slice(0, 10), first.body.candles.slice(0, 10), 'the cached candles')
  t.equal(stale.headers.get('cache-control'), 'no-store', 'a stale answer is not cached by the browser')

  const none = await L.g.http('GET', '/api/candles?range=4h', { token: u.token })
  t.equal(none.status, 503, 'nothing cached for 4h → 503')
  t.equal(none.body.error.code, 'upstream_unavailable')
  t.match(none.body.error.message, /LN Markets did not answer/, 'a clear message')
  t.ok(none.headers.get('retry-after'), 'with Retry-After')
})
