/**
 * LnmClient + LnmStream against the LN Markets simulator (backend/simulator), one test per fault.
 * Measurements are made at the simulator (sim.stats / sim.stats.log()).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { Registry } from 'prom-client'
import { startSimulator, type Simulator } from '../../simulator/index.ts'
import { createMetrics } from '../../metrics.ts'
import { LnmClient, type LnmClientOptions } from '../../exchange/client.ts'
import { LnmStream } from '../../exchange/stream.ts'
import { collectingLogger, maxPerWindow, rejects, tripwire } from './helpers.ts'

const wire = tripwire()

async function setup(t: Test, opts: Partial<LnmClientOptions> = {}, simOpts: Parameters<typeof startSimulator>[0] = {}) {
  const sim: Simulator = await startSimulator({ port: 0, tickMs: 500, rateLimit: { publicPerSec: 1000, authPerSec: 1000 }, ...simOpts })
  const metrics = createMetrics(new Registry())
  const client = new LnmClient({
    baseUrl: sim.url,
    metrics,
    retry: { baseMs: 20, capMs: 80, retries: 3 },
    limits: { publicPerSec: 1000, authPerSec: 1000 },
    ...opts,
  })
  const a = sim.accounts[0]!
  const creds = { key: a.key, secret: a.secret, passphrase: a.passphrase }
  t.teardown(async () => {
    await client.close()
    await sim.close()
  })
  return { sim, client, creds, metrics }
}

t.test('latency within budget → result', async (t) => {
  const { sim, client, creds } = await setup(t)
  sim.faults.set({ latencyMs: 200 })
  const t0 = Date.now()
  const acc = await client.account(creds, { deadlineMs: 2000 })
  t.equal(acc.username, sim.accounts[0]!.username, 'account returned')
  t.ok(Date.now() - t0 >= 200, 'latency was applied')
  sim.faults.set({ latencyMs: 1500 })
  const t1 = Date.now()
  const e = await rejects(client.ticker({ deadlineMs: 400 }))
  const took = Date.now() - t1
  t.equal(e.kind, 'timeout', 'latency beyond the budget → typed timeout')
  t.ok(took < 800, `within budget (${took} ms)`)
})

t.test('timeouts → typed timeout, not retried', async (t) => {
  const { sim, client } = await setup(t, { timeouts: { connectMs: 1000, headersMs: 300, bodyMs: 300 } })
  sim.faults.set({ timeoutRate: 1 })
  const e = await rejects(client.ping())
  t.equal(e.kind, 'timeout', 'timeout')
  t.equal(sim.stats.requests({ path: '/v3/ping' }), 1, 'one request at the simulator: read timeouts are not retried')
})

t.test('5xx → retried then typed unavailable; recovers', async (t) => {
  const { sim, client, metrics } = await setup(t)
  sim.faults.set({ errorRate: 1, errorStatus: 503 })
  const e = await rejects(client.ping())
  t.equal(e.kind, 'unavailable', 'unavailable')
  t.equal(e.status, 503, 'status 503')
  t.equal(sim.stats.requests({ path: '/v3/ping' }), 4, '1 + 3 retries at the simulator')
  t.equal(
    (await metrics.upstreamRetries.get()).values.reduce((a, v) => a + v.value, 0),
    3,
    'retries counted',
  )
  sim.faults.reset()
  t.equal(await client.ping(), 'pong', 'healthy again')
})

t.test('429 from the real limiter + Retry-After → waits and retries', async (t) => {
  // the simulator limits public calls to 1/s; the client is deliberately configured to not throttle
  const { sim, client } = await setup(t, {}, { rateLimit: { publicPerSec: 1, authPerSec: 5 } })
  const t0 = Date.now()
  const [a, b] = await Promise.all([client.ping(), client.time()])
  t.equal(a, 'pong', 'first call ok')
  t.ok(typeof b.time === 'string', 'second call ok after the 429')
  const log = sim.stats.log()
  const limited = log.filter((e) => e.status === 429)
  t.ok(limited.length >= 1, `the simulator answered 429 (${limited.length}×)`)
  const last = log.filter((e) => e.path === '/v3/time')
  const gap = last[last.length - 1]!.ts - limited[0]!.ts
  t.ok(gap >= 900, `the retry waited for Retry-After (${gap} ms after the 429)`)
  t.comment(`sim 429 → retry after ${gap} ms; both calls done in ${Date.now() - t0} ms`)
})

t.test('429 storm → typed rate_limited within the budget', async (t) => {
  const { sim, client } = await setup(t)
  sim.faults.set({ rateLimitStorm: true })
  // every answer says Retry-After: 1 s. Without a budget the client would give up after 3 retries (3 s); a 1.5 s
  // budget has room for one of them, then the next wait would overrun it
  const budget = 1500
  const t0 = Date.now()
  const e = await rejects(client.ticker({ deadlineMs: budget }))
  const took = Date.now() - t0
  t.equal(e.kind, 'rate_limited', 'rate_limited')
  t.ok(took <= budget, `within the budget (${took} ms, ${sim.stats.requests({ path: '/v3/futures/ticker' })} attempts)`)
})

t.test('malformed and truncated JSON → bad_response; dropped connection → typed error', async (t) => {
  const { sim, client } = await setup(t, { cacheTtl: { tickerMs: 1 } })
  sim.faults.set({ malformedRate: 1 })
  t.equal((await rejects(client.ticker())).kind, 'bad_response', 'malformed → bad_response')
  sim.faults.set({ malformedRate: 0, truncatedRate: 1 })
  t.equal((await rejects(client.ticker())).kind, 'bad_response', 'truncated → bad_response')
  sim.faults.set({ truncatedRate: 0, dropRate: 1 })
  const e = await rejects(client.ticker())
  t.ok(['bad_response', 'unavailable'].includes(e.kind), `dropped mid-response → typed ${e.kind}`)
  sim.faults.reset()
  t.equal((await client.ticker()).prices.length > 0, true, 'healthy afterwards')
})

t.test('clock skew → learned offset makes signed requests accepted', async (t) => {
  const { sim, client, creds } = await setup(t)
  sim.faults.set({ clockSkewMs: 90_000 })
  const acc = await client.account(creds)
  t.equal(acc.username, sim.accounts[0]!.username, 'accepted with a server clock 90 s ahead')
  t.ok(Math.abs(client.clockOffsetMs - 90_000) < 1000, `offset ${client.clockOffsetMs} ms`)
  sim.faults.set({ clockSkewMs: -60_000 })
  const running = await client.runningTrades(creds)
  t.ok(Array.isArray(running), 'after the skew changed, a 401 triggered a re-learn and the call succeeded')
  t.ok(Math.abs(client.clockOffsetMs + 60_000) < 1000, `offset re-learned ${client.clockOffsetMs} ms`)
})

t.test('outage → breaker opens, then a half-open probe recovers', async (t) => {
  const { sim, client, metrics } = await setup(t, {
    retry: { baseMs: 5, capMs: 10, retries: 1 },
    breaker: { failureThreshold: 3, openMs: 400 },
  })
  sim.faults.set({ outage: true })
  for (let i = 0; i < 3; i++) t.equal((await rejects(client.ping())).kind, 'unavailable', `outage call ${i + 1} → unavailable`)
  t.equal(client.circuitState, 'open', 'breaker open')
  const n = sim.stats.requests()
  t.equal((await rejects(client.ping())).kind, 'circuit_open', 'fast fail while open')
  t.equal(sim.stats.requests(), n, 'nothing sent while open')
  sim.faults.reset()
  await sleep(450) // waits out the breaker's openMs: the next call is the half-open probe
  t.equal(await client.ping(), 'pong', 'half-open probe succeeds')
  t.equal(client.circuitState, 'closed', 'breaker closed')
  const g = (await metrics.circuitState.get()).values[0]!.value
  t.equal(g, 0, 'gauge closed')
})

t.test('simulator paused (connection refused) → retried connect errors → unavailable; resume → ok', async (t) => {
  const { sim, client } = await setup(t)
  await sim.pause()
  const e = await rejects(client.ping())
  t.equal(e.kind, 'unavailable', 'unavailable')
  t.equal(e.code, 'ECONNREFUSED', 'connection refused')
  await sim.resume()
  t.equal(await client.ping(), 'pong', 'ok after resume')
})

/** the throttle test runs the exchange's limits twice as fast and counts in half-second windows (same bounds) */
const SPEEDUP = 2

t.test('throttle: burst of 20 private calls → ≤ 5/s at the simulator and no 429', async (t) => {
  const limits = { publicPerSec: 1 * SPEEDUP, authPerSec: 5 * SPEEDUP }
  const { sim, client, creds } = await setup(t, { limits }, { rateLimit: limits })
  await client.time()
  const t0 = Date.now()
  await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      i % 2 ? client.closedTrades(creds, { limit: i + 1 }) : client.closedTrades(creds, { limit: 100 + i }),
    ),
  )
  const log = sim.stats.log().filter((e) => e.key === creds.key)
  t.equal(log.length, 20, '20 requests reached the simulator')
  t.equal(log.filter((e) => e.status === 429).length, 0, 'none was rate limited')
  const max = maxPerWindow(
    log.map((e) => e.ts),
    1000 / SPEEDUP,
  )
  t.ok(max <= 5, `≤ 5 in any ${1000 / SPEEDUP} ms window, 5/s at the real limits (max ${max})`)
  t.comment(`sim throttle at ${SPEEDUP}×: 20 private calls in ${Date.now() - t0} ms, max ${max} per ${1000 / SPEEDUP} ms`)
})

t.test('100 concurrent ticker() → 1 upstream request per cache period', async (t) => {
  const { sim, client } = await setup(t, { cacheTtl: { tickerMs: 1000 } })
  await Promise.all(Array.from({ length: 100 }, () => client.ticker()))
  await Promise.all(Array.from({ length: 100 }, () => client.ticker()))
  t.equal(sim.stats.requests({ path: '/v3/futures/ticker' }), 1, 'exactly one upstream ticker request')
})

t.test('credentials rejected; secrets never in errors or logs', async (t) => {
  const { lines, logger } = collectingLogger()
  const { sim, client, creds } = await setup(t, { logger })
  sim.faults.set({ errorRate: 1, errorStatus: 502 })
  const e1 = await rejects(client.account(creds))
  sim.faults.reset()
  const bad = { ...creds, secret: `${creds.secret}x` }
  const e2 = await rejects(client.account(bad))
  t.equal(e2.kind, 'credentials_rejected', 'bad secret → credentials_rejected')
  t.equal(e2.status, 401, '401')
  const text = [e1, e2].map((e) => `${e.message} ${e.stack} ${JSON.stringify(e)}`).join('\n') + lines.join('\n')
  for (const [name, s] of [
    ['key', creds.key],
    ['secret', creds.secret],
    ['passphrase', creds.passphrase],
  ] as const)
    t.notOk(text.includes(s), `${name} never in errors/logs`)
})

t.test('stream against the simulator: ticker, outage → down, recovery → up', async (t) => {
  // a tick every 100 ms (not 500): each wait for the next ticker below is a tick period at most
  const { sim } = await setup(t, {}, { tickMs: 100 })
  const metrics = createMetrics(new Registry())
  const stream = new LnmStream({ url: sim.streamUrl, metrics, reconnect: { baseMs: 100, capMs: 300 } })
  t.teardown(() => stream.close())
  stream.connect()
  await once(stream, 'up')
  const [tick] = await once(stream, 'ticker')
  t.ok(tick.lastPrice > 0 && tick.index > 0, 'ticker with lastPrice and index')
  t.match(tick.fundingTime, /^\d{4}-\d\d-\d\dT/, 'fundingTime as ISO')
  const down = once(stream, 'down')
  sim.faults.set({ outage: true })
  await down
  t.equal(stream.isUp, false, 'down during the outage')
  await sleep(300) // keeps the outage on for several reconnect attempts, which must fail
  sim.faults.reset()
  await once(stream, 'up')
  t.equal(stream.isUp, true, 'up again after the outage (resubscribed)')
  const [tick2] = await once(stream, 'ticker')
  t.ok(tick2.time >= tick.time, 'ticker flows after the reconnect')
})

t.test('no uncaught exceptions or unhandled rejections', async (t) => {
  await sleep(50) // proves no late exception or rejection surfaces within 50 ms of the last test
  wire.stop()
  t.same(wire.seen.map(String), [], 'tripwire saw nothing')
})
