/**
 * Retry-After holds the whole rate-limit bucket it came from (lnmarkets-api.md §5): after a 429 with
 * `Retry-After: N` on one key, no request for that key leaves for N s (another key is not held); after a 429
 * on the public bucket, no public request leaves for N s (private ones are not held). Real simulator, real
 * signatures; the client's own throttles are out of the way so only the server's buckets decide.
 */
import t from 'tap'
import { Registry } from 'prom-client'
import { createMetrics } from '../../metrics.ts'
import { LnmClient } from '../../exchange/client.ts'
import { Throttle } from '../../exchange/resilience.ts'
import { startSimulator } from '../../simulator/index.ts'
import { testAccounts } from '../simulator/helpers.ts'
import { rejects, tripwire } from './helpers.ts'

const wire = tripwire()

async function setup(t: { teardown(fn: () => unknown): void }, rateLimit: { publicPerSec: number; authPerSec: number }) {
  const sim = await startSimulator({ accounts: testAccounts(), tickMs: 0, initialPrice: 100_000, rateLimit })
  // no client retries: the test looks at what the NEXT calls do; client-side throttles far above the server's
  const client = new LnmClient({
    baseUrl: sim.url,
    metrics: createMetrics(new Registry()),
    retry: { baseMs: 10, capMs: 20, retries: 0 },
    limits: { publicPerSec: 1000, authPerSec: 1000, publicMode: 'spaced' },
  })
  t.teardown(async () => {
    await client.close()
    await sim.close()
  })
  const alice = sim.accounts[0]!
  const bob = sim.accounts[1]!
  return { sim, client, alice, bob }
}

t.test('a 429 on one key holds every request of that key for Retry-After, not other keys', async (t) => {
  const { sim, client, alice, bob } = await setup(t, { publicPerSec: 1000, authPerSec: 1 })
  await client.time() // learn the clock first (public bucket)
  // the key's bucket holds one token: the second concurrent call is refused with Retry-After: 1
  const results = await Promise.allSettled([client.account(alice), client.runningTrades(alice)])
  const refused = results.find((r) => r.status === 'rejected')
  t.ok(refused, 'one of two concurrent calls on a 1/s key is refused')
  const err = await rejects(Promise.reject((refused as PromiseRejectedResult).reason))
  t.equal(err.kind, 'rate_limited')
  t.equal(err.retryAfterMs, 1000, 'Retry-After: 1 → 1000 ms')
  const log429 = sim.stats.log().find((e) => e.status === 429 && e.key === alice.key)!
  t.ok(log429, 'the simulator answered 429')

  const otherKey = client.account(bob)
  const sameKey = [client.openTrades(alice), client.closedTrades(alice), client.crossPosition(alice)]
  await otherKey
  const bobEntry = sim.stats.log().find((e) => e.key === bob.key)!
  t.ok(bobEntry.ts - log429.ts < 900, `another key is not held (${bobEntry.ts - log429.ts} ms after the 429)`)
  await Promise.allSettled(sameKey)
  const after = sim.stats.log().filter((e) => e.key === alice.key && e.ts > log429.ts)
  t.equal(after.length >= 1, true, 'the held calls went out afterwards')
  for (const e of after) t.ok(e.ts - log429.ts >= 950, `${e.path} left ${e.ts - log429.ts} ms after the 429 (≥ Retry-After)`)
  t.ok(
    after.some((e) => e.status === 200),
    'the first held call succeeds',
  )
})

t.test('a 429 on the public bucket holds public requests, not private ones', async (t) => {
  const { sim, client, alice } = await setup(t, { publicPerSec: 1, authPerSec: 1000 })
  await client.time() // takes the public token and learns the clock
  const e = await rejects(client.ticker())
  t.equal(e.kind, 'rate_limited', 'the next public call is refused')
  const log429 = sim.stats.log().find((x) => x.status === 429)!
  t.ok(log429, 'the simulator answered 429')
  t.equal(log429.key, undefined, 'on the public bucket')
  const publicCall = client.ping()
  const privateCall = client.account(alice)
  await privateCall
  const priv = sim.stats.log().find((x) => x.key === alice.key)!
  t.ok(priv.ts - log429.ts < 900, `a private call is not held (${priv.ts - log429.ts} ms)`)
  t.equal(await publicCall, 'pong', 'the held public call succeeds')
  const ping = sim.stats.log().find((x) => x.path === '/v3/ping')!
  t.ok(ping.ts - log429.ts >= 950, `the public call left ${ping.ts - log429.ts} ms after the 429`)
  t.equal(sim.stats.log().filter((x) => x.status === 429).length, 1, 'no second 429: the block kept the bucket clean')
})

t.test('a call whose deadline ends inside the block fails fast with the time left', async (t) => {
  const { client, alice } = await setup(t, { publicPerSec: 1000, authPerSec: 1 })
  await client.time()
  const sent = Date.now()
  await Promise.allSettled([client.account(alice), client.runningTrades(alice)])
  // the 429 arrived after `sent`, so the 1 s block lasts at least until sent + 1000: a deadline well inside it
  const deadlineMs = Math.max(10, Math.floor((sent + 1000 - Date.now()) / 2))
  const e = await rejects(client.openTrades(alice, { deadlineMs }))
  t.equal(e.kind, 'rate_limited', 'rate_limited')
  t.equal(e.code, 'CLIENT_THROTTLE', 'decided by the throttle at once (a wait until the deadline would end with DEADLINE)')
  t.ok(
    (e.retryAfterMs ?? 0) > deadlineMs,
    `retryAfterMs tells the caller how long the block lasts (${e.retryAfterMs} ms > ${deadlineMs} ms)`,
  )
})

t.test('Throttle.blockUntil holds waiters already queued, in both modes', async (t) => {
  for (const mode of ['serial', 'spaced'] as const) {
    const th = new Throttle(1000, { mode })
    const signal = new AbortController().signal
    const first = await th.acquire(undefined, signal)
    first!.sent(Date.now())
    // a waiter queued BEFORE the block (serial: behind the busy slot; spaced: booked 1 ms ahead)
    const waiting = th.acquire(undefined, signal)
    const t0 = Date.now()
    th.blockUntil(t0 + 300)
    first!.done(Date.now())
    const slot = await waiting
    const waited = Date.now() - t0
    t.ok(slot !== null && waited >= 290, `${mode}: the queued waiter was granted after ${waited} ms (block 300 ms)`)
    slot!.done(Date.now())
    t.ok(th.pending(Date.now()) < 50, `${mode}: nothing pending once the block is over`)
    th.blockUntil(Date.now() + 500)
    t.equal(await th.acquire(Date.now() + 100, signal), null, `${mode}: a deadline inside the block gets null`)
  }
})

t.teardown(() => {
  wire.stop()
  if (wire.seen.length) throw new Error(`uncaught: ${wire.seen.map(String).join('; ')}`)
})
