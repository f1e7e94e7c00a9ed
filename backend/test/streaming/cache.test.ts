import t from 'tap'
import { SnapshotCache, acceptsSnapshot, dataUpdateFrame } from '../../streaming/cache.ts'
import { InProcessBus, TICKER_TOPIC } from '../../streaming/bus.ts'
import { buildDashboard, etagMatches } from '../../streaming/dashboard.ts'

const snap = (seq: number, epoch = 10, sourceTs = 1000, json = `{"v":${seq}}`) => ({
  kind: 'snapshot' as const,
  channel: 'account' as const,
  epoch,
  seq,
  sourceTs,
  json,
})

t.test('cache: newer wins, duplicates and older are dropped, fresh advances sourceTs', async (t) => {
  const c = new SnapshotCache()
  t.match(c.apply('account:u', snap(1)), { kind: 'snapshot' }, 'first snapshot stored')
  t.equal(c.apply('account:u', snap(1)), null, 'same epoch+seq is a duplicate')
  t.equal(c.apply('account:u', snap(0)), null, 'older seq dropped')
  t.equal(c.apply('account:u', snap(5, 9)), null, 'older epoch dropped')
  t.match(c.apply('account:u', snap(1, 11)), { kind: 'snapshot' }, 'a newer epoch wins even with a lower seq')
  c.apply('account:u', { kind: 'fresh', channels: ['account'], epoch: 11, sourceTs: 5000 })
  t.equal(c.get('account:u', 'account')!.sourceTs, 5000, 'fresh advances sourceTs')
  c.apply('account:u', { kind: 'fresh', channels: ['account'], epoch: 10, sourceTs: 9000 })
  t.equal(c.get('account:u', 'account')!.sourceTs, 5000, 'fresh of another epoch is ignored')
  const s1 = c.apply('account:u', { kind: 'status', scope: 'account', upstream: 'down', lastSuccessTs: 1, reason: 'x' })
  t.match(s1, { kind: 'status', changed: true }, 'first status is a change')
  const s2 = c.apply('account:u', { kind: 'status', scope: 'account', upstream: 'down', lastSuccessTs: 1, reason: 'x' })
  t.match(s2, { changed: false }, 'same status is not a change')
  c.apply('account:u', { kind: 'reset', reason: 'credentials_changed' })
  t.equal(c.get('account:u', 'account'), undefined, 'reset forgets snapshots')
  c.drop('account:u')
  t.equal(c.size, 0, 'drop forgets the topic')
})

t.test('cache fencing: a generation once seen on a topic fences older ones out of every channel, even after a reset', async (t) => {
  t.ok(acceptsSnapshot(undefined, 0, { epoch: 5, seq: 1 }), 'an empty cache takes anything at or above the floor')
  t.notOk(acceptsSnapshot(undefined, 6, { epoch: 5, seq: 9 }), 'but nothing below it')
  t.ok(acceptsSnapshot({ epoch: 5, seq: 9 }, 5, { epoch: 6, seq: 1 }), 'a newer generation replaces, whatever its seq')
  t.notOk(acceptsSnapshot({ epoch: 5, seq: 9 }, 5, { epoch: 5, seq: 9 }), 'the same version is not newer')
  const c = new SnapshotCache()
  c.apply('account:u', snap(3, 20))
  t.equal(
    c.apply('account:u', { ...snap(7, 19), channel: 'positions' as const }),
    null,
    "an older generation's snapshot is refused on another channel of the topic too",
  )
  c.apply('account:u', { kind: 'reset', reason: 'credentials_changed' })
  t.equal(c.apply('account:u', snap(8, 19)), null, 'after a reset, a straggler of an older generation does not refill the cache')
  t.match(c.apply('account:u', snap(1, 20)), { kind: 'snapshot' }, 'the current generation refills it')
  c.drop('account:u')
  t.match(c.apply('account:u', snap(1, 19)), { kind: 'snapshot' }, 'drop (no more interest) forgets the fence too')
})

t.test('cache: whenReady resolves on first data or timeout', async (t) => {
  const c = new SnapshotCache()
  const t0 = Date.now()
  await c.whenReady('ticker', 50)
  t.ok(Date.now() - t0 >= 45, 'times out when nothing arrives')
  const p = c.whenReady('ticker', 5000)
  setTimeout(() => c.apply('ticker', { ...snap(1), channel: 'ticker' }), 20)
  await p
  t.ok(c.has('ticker'), 'resolves when a snapshot arrives')
})

t.test('dataUpdateFrame is the contract frame', async (t) => {
  const f = JSON.parse(dataUpdateFrame({ channel: 'account', epoch: 1, seq: 2, sourceTs: 3, json: '{"a":[1,"x\\"y"]}' }, 4, 'simulator'))
  t.same(
    f,
    { type: 'data_update', channel: 'account', epoch: 1, seq: 2, sourceTs: 3, ts: 4, source: 'simulator', data: { a: [1, 'x"y'] } },
    'valid JSON with every field',
  )
})

t.test('bus: topics, unsubscribe, isolated handler errors', async (t) => {
  const errors: unknown[] = []
  const bus = new InProcessBus((e) => errors.push(e))
  const got: string[] = []
  const off = bus.subscribe('a', () => got.push('a1'))
  bus.subscribe('a', () => {
    throw new Error('boom')
  })
  bus.subscribe('a', () => got.push('a3'))
  bus.subscribe('b', () => got.push('b'))
  bus.publish('a', { kind: 'reset', reason: 'x' })
  t.same(got, ['a1', 'a3'], 'every handler of the topic runs, in order, despite one throwing')
  t.equal(errors.length, 1, 'the error is reported')
  off()
  bus.publish('a', { kind: 'reset', reason: 'x' })
  t.same(got, ['a1', 'a3', 'a3'], 'unsubscribed handler no longer runs')
  t.equal(bus.topicCount, 2, 'topics counted')
})

t.test('dashboard: body, stale marking and ETag', async (t) => {
  const c = new SnapshotCache()
  const now = 100_000
  c.apply('account:u', { ...snap(1, 10, now - 1000), json: '{"username":"a","balance":1,"syntheticUsdBalance":0,"feeTier":0}' })
  c.apply(TICKER_TOPIC, { kind: 'snapshot', channel: 'ticker', epoch: 3, seq: 7, sourceTs: now - 40_000, json: '{"index":1}' })
  const v1 = buildDashboard(c, 'u', { now, staleAfterMs: 30_000, source: 'simulator' })
  const body = JSON.parse(v1.body)
  t.equal(body.account.username, 'a', 'account from cache')
  t.equal(body.positions, null, 'missing channel is null')
  t.match(
    body.meta.channels,
    { account: { epoch: 10, seq: 1, stale: false }, ticker: { epoch: 3, seq: 7, stale: true } },
    'stale marked per channel',
  )
  t.match(v1.etag, /^W\/"/, 'weak ETag')
  t.equal(buildDashboard(c, 'u', { now: now + 10, staleAfterMs: 30_000, source: 'simulator' }).etag, v1.etag, 'same data → same ETag')
  t.not(
    buildDashboard(c, 'u', { now: now + 30_000, staleAfterMs: 30_000, source: 'simulator' }).etag,
    v1.etag,
    'staleness change → new ETag',
  )
  t.ok(etagMatches(`"x", ${v1.etag}`, v1.etag), 'If-None-Match list matches')
  t.ok(etagMatches(v1.etag.slice(2), v1.etag), 'weak comparison')
  t.notOk(etagMatches('"nope"', v1.etag), 'no match')
  t.not(buildDashboard(c, 'other', { now, staleAfterMs: 30_000, source: 'simulator' }).body.includes('"username"'), true, 'sanity')
  t.equal(
    JSON.parse(buildDashboard(c, 'other', { now, staleAfterMs: 30_000, source: 'simulator' }).body).account,
    null,
    "another user never sees this user's account",
  )
})
