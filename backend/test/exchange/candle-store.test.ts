/**
 * CandleStore with a fake exchange and a fake clock: blocks aligned on the epoch, a finished block never asked
 * again, the live block refetched after its TTL, concurrent misses sharing one call, the cursor followed, the last
 * copy served stale when the exchange fails, and a cap on distinct blocks waiting for the exchange.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { BLOCK_CANDLES, CandleStore, MAX_INFLIGHT_BLOCKS } from '../../exchange/candle-store.ts'

const M = 60_000
const SPAN = BLOCK_CANDLES * M

function fakeExchange(clock: { now: number }) {
  const calls: Array<Record<string, unknown>> = []
  let fail: Error | null = null
  let hold: Promise<void> | null = null
  let pageSize = 1000
  const client = {
    async get(spec: { query?: Record<string, unknown> }) {
      calls.push(spec.query ?? {})
      if (hold) await hold
      if (fail) throw fail
      const q = spec.query!
      const from = Math.max(Date.parse(q.from as string), q.cursor ? Date.parse(q.cursor as string) : 0)
      const to = Math.min(Date.parse(q.to as string), clock.now)
      const data = []
      for (let x = Math.ceil(from / M) * M; x <= to && data.length < pageSize + 1; x += M)
        data.push({ time: new Date(x).toISOString(), open: 1, high: 2, low: 0.5, close: x / M, volume: 1 })
      const more = data.length > pageSize
      return { data: data.slice(0, pageSize), nextCursor: more ? data[pageSize]!.time : null }
    },
  }
  return {
    client: client as never,
    calls,
    failWith(e: Error | null) {
      fail = e
    },
    holdWith(p: Promise<void> | null) {
      hold = p
    },
    pages(n: number) {
      pageSize = n
    },
  }
}

t.test('finished blocks are kept, the live block is refetched after its TTL', async (t) => {
  const clock = { now: 10 * SPAN + 100 * M + 5_000 }
  const ex = fakeExchange(clock)
  const store = new CandleStore(ex.client, { liveTtlMs: 10_000, now: () => clock.now })
  const a = await store.get('1m', clock.now - 300 * M, clock.now)
  t.equal(ex.calls.length, 2, 'the window spans the finished block and the live one: two calls')
  t.same(
    ex.calls.map((q) => q.from),
    [new Date(9 * SPAN).toISOString(), new Date(10 * SPAN).toISOString()],
    'blocks aligned on the epoch',
  )
  t.equal(a.candles.length, 300, 'every minute in [from, to]')
  t.ok(
    a.candles.every((c, i) => i === 0 || c.time - a.candles[i - 1]!.time === M),
    'ascending, one per minute',
  )
  t.equal(a.stale, false)

  clock.now += 5_000
  await store.get('1m', clock.now - 300 * M, clock.now)
  t.equal(ex.calls.length, 2, 'within the TTL: no call')
  clock.now += 60_000
  const b = await store.get('1m', clock.now - 300 * M, clock.now)
  t.equal(ex.calls.length, 3, 'after the TTL only the live block is asked again')
  t.equal(ex.calls[2]!.from, new Date(10 * SPAN).toISOString(), 'the live block')
  t.equal(b.fetchedAt, a.fetchedAt, 'fetchedAt is the oldest answer used (the finished block)')
  t.ok(b.candles.at(-1)!.time > a.candles.at(-1)!.time, 'the newer candles')
})

t.test('concurrent misses share one call; pages are followed', async (t) => {
  const clock = { now: 3 * SPAN + 400 * M }
  const ex = fakeExchange(clock)
  ex.pages(150)
  const store = new CandleStore(ex.client, { now: () => clock.now })
  let release!: () => void
  ex.holdWith(
    new Promise<void>((r) => {
      release = r
    }),
  )
  const many = Array.from({ length: 20 }, () => store.get('1m', 3 * SPAN, clock.now))
  await sleep(10) // proves the other 19 requests start no call of their own within 10 ms
  t.equal(ex.calls.length, 1, '20 concurrent requests, one call in flight')
  ex.holdWith(null)
  release()
  const got = await Promise.all(many)
  t.ok(
    got.every((g) => g.candles.length === 401),
    'all answered with the whole block',
  )
  t.equal(ex.calls.length, 3, 'the cursor was followed: 3 pages of 150 for 401 candles')
})

t.test('exchange failure: the last copy marked stale, else the error', async (t) => {
  const clock = { now: 5 * SPAN + 50 * M }
  const ex = fakeExchange(clock)
  const store = new CandleStore(ex.client, { liveTtlMs: 1_000, now: () => clock.now })
  const [from, to] = [clock.now - 20 * 5 * M, clock.now]
  const first = await store.get('5m', from, to)
  clock.now += 2_000
  ex.failWith(Object.assign(new Error('down'), { kind: 'unavailable' }))
  const again = await store.get('5m', from, to)
  t.equal(again.stale, true, 'stale')
  t.equal(again.fetchedAt, first.fetchedAt, 'with the time of the copy')
  t.same(again.candles, first.candles, 'the same candles')
  await t.rejects(store.get('1h', clock.now - 10 * 3600_000, clock.now), { message: 'down' }, 'nothing cached: the error')
})

t.test('at most MAX_INFLIGHT_BLOCKS distinct blocks wait for the exchange', async (t) => {
  const clock = { now: 100 * SPAN }
  const ex = fakeExchange(clock)
  const store = new CandleStore(ex.client, { now: () => clock.now })
  let release!: () => void
  ex.holdWith(
    new Promise<void>((r) => {
      release = r
    }),
  )
  const waiting = Array.from({ length: MAX_INFLIGHT_BLOCKS }, (_, i) => store.get('1m', (50 + i) * SPAN, (50 + i) * SPAN + 10 * M))
  await sleep(10)
  await t.rejects(store.get('1m', 70 * SPAN, 70 * SPAN + 10 * M), { code: 'candles_busy' }, 'one more distinct block is refused')
  ex.holdWith(null)
  release()
  t.equal((await Promise.all(waiting)).length, MAX_INFLIGHT_BLOCKS, 'the waiting ones are answered')
  t.ok(await store.get('1m', 70 * SPAN, 70 * SPAN + 10 * M), 'and then the refused one works')
})
