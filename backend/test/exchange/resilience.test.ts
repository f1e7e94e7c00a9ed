/** Unit tests of the throttle and circuit breaker building blocks. */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { AbortedError, CircuitBreaker, Throttle } from '../../exchange/resilience.ts'

t.test('serial throttle: one at a time, next start ≥ interval after the previous finished', async (t) => {
  const th = new Throttle(10, { mode: 'serial', margin: 0 }) // 100 ms
  const ac = new AbortController()
  const starts: number[] = []
  const work = async (ms: number) => {
    const slot = await th.acquire(undefined, ac.signal)
    starts.push(Date.now())
    await sleep(ms)
    slot!.done(Date.now())
  }
  const t0 = Date.now()
  await Promise.all([work(50), work(50), work(50)])
  t.equal(starts.length, 3, 'all three ran')
  t.ok(starts[1]! - starts[0]! >= 145, `second started ≥ 50 ms work + 100 ms after the first (${starts[1]! - starts[0]!} ms)`)
  t.ok(starts[2]! - starts[1]! >= 145, `third likewise (${starts[2]! - starts[1]!} ms)`)
  t.ok(Date.now() - t0 < 1000, 'bounded')
})

t.test('serial throttle: deadline → null, abort → AbortedError, queue keeps flowing', async (t) => {
  const th = new Throttle(10, { mode: 'serial', margin: 0 })
  const ac = new AbortController()
  const first = await th.acquire(undefined, ac.signal)
  const late = await th.acquire(Date.now() + 30, ac.signal)
  t.equal(late, null, 'a waiter whose deadline passes gets null')
  const ac2 = new AbortController()
  const p = th.acquire(undefined, ac2.signal)
  ac2.abort()
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  )
  t.ok(err instanceof AbortedError, 'aborted waiter rejects with AbortedError')
  first!.done(Date.now())
  const next = await th.acquire(Date.now() + 500, ac.signal)
  t.ok(next, 'after done(), the next waiter is admitted')
  next!.done(Date.now())
})

t.test('spaced throttle: booked slots never closer than the interval', async (t) => {
  const th = new Throttle(20, { margin: 0 }) // 50 ms
  const ac = new AbortController()
  const grants: number[] = []
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      const slot = await th.acquire(undefined, ac.signal)
      grants.push(Date.now())
      slot?.sent(Date.now())
    }),
  )
  grants.sort((a, b) => a - b)
  const gaps = grants.slice(1).map((g, i) => g - grants[i]!)
  t.ok(
    gaps.every((g) => g >= 48),
    `gaps ≥ 50 ms (${gaps.join(', ')})`,
  )
  t.equal(th.reserve(Date.now(), Date.now() - 1), null, 'a slot beyond the deadline is not booked')
})

t.test('circuit breaker state machine', async (t) => {
  let now = 0
  const states: string[] = []
  const b = new CircuitBreaker(
    2,
    100,
    (s) => states.push(s),
    () => now,
  )
  t.equal(b.acquire(), 'go', 'closed → go')
  b.failure()
  t.equal(b.state, 'closed', 'one failure keeps it closed')
  b.failure()
  t.equal(b.state, 'open', 'threshold reached → open')
  t.equal(b.acquire(), 'reject', 'open → reject')
  t.equal(b.blockedFor(), 100, 'blocked for openMs')
  now = 100
  t.equal(b.acquire(), 'probe', 'after openMs → single probe')
  t.equal(b.state, 'half_open', 'half-open')
  t.equal(b.acquire(), 'reject', 'second caller refused while the probe is in flight')
  b.release()
  t.equal(b.acquire(), 'probe', 'a released probe slot can be taken again')
  b.failure()
  t.equal(b.state, 'open', 'failed probe re-opens')
  now = 250
  t.equal(b.acquire(), 'probe', 'probe again')
  b.success()
  t.equal(b.state, 'closed', 'successful probe closes')
  t.same(states, ['open', 'half_open', 'open', 'half_open', 'closed'], 'state changes reported')
})

t.test('circuit breaker: an active health probe before openMs', async (t) => {
  let now = 0
  const b = new CircuitBreaker(
    1,
    10_000,
    () => {},
    () => now,
  )
  t.equal(b.probeNow(), false, 'closed: nothing to probe')
  b.failure()
  now = 1000
  t.equal(b.acquire(), 'reject', 'callers are still refused 1 s into the 10 s open period')
  t.equal(b.probeNow(), true, 'the health probe takes the probe slot anyway')
  t.equal(b.state, 'half_open', 'half-open while it is in flight')
  t.equal(b.probeNow(), false, 'one probe at a time')
  t.equal(b.acquire(), 'reject', 'and callers wait for it')
  b.failure()
  t.equal(b.state, 'open', 'a failed probe re-opens')
  t.equal(b.blockedFor(), 10_000, 'for a full openMs for callers')
  t.equal(b.probeNow(), true, 'the next health probe may go at once')
  b.success()
  t.equal(b.state, 'closed', 'its success closes the circuit')
  t.equal(b.acquire(), 'go', 'callers go again')
})
