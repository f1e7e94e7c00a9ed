/**
 * buildDashboard with a memo (what /api/dashboard uses): the same bytes and ETag as without one, for
 * every request, while reusing the serialized parts until a snapshot, a staleness or a status changes.
 */
import t from 'tap'
import { SnapshotCache } from '../../streaming/cache.ts'
import { TICKER_TOPIC } from '../../streaming/bus.ts'
import { buildDashboard, createDashboardMemo } from '../../streaming/dashboard.ts'

t.test('memoized dashboards are byte-identical to fresh ones and follow every change', async (t) => {
  const c = new SnapshotCache()
  const memo = createDashboardMemo()
  const now = 100_000
  const o = (at: number) => ({ now: at, staleAfterMs: 30_000, source: 'simulator' as const })
  c.apply('account:u', {
    kind: 'snapshot',
    channel: 'account',
    epoch: 10,
    seq: 1,
    sourceTs: now - 1000,
    json: '{"username":"a","balance":1}',
  })
  c.apply(TICKER_TOPIC, { kind: 'snapshot', channel: 'ticker', epoch: 3, seq: 7, sourceTs: now - 500, json: '{"index":1}' })

  const same = (at: number, what: string, user = 'u') => {
    const fresh = buildDashboard(c, user, o(at))
    const memoized = buildDashboard(c, user, o(at), memo)
    t.equal(memoized.body, fresh.body, `${what}: same body`)
    t.equal(memoized.etag, fresh.etag, `${what}: same ETag`)
    return memoized
  }
  const first = same(now, 'first request')
  t.equal(JSON.parse(first.body).meta.serverTime, now, 'serverTime is the request time')
  const second = same(now + 7, 'second request, nothing changed')
  t.equal(JSON.parse(second.body).meta.serverTime, now + 7, 'serverTime moves with each request')
  t.equal(second.etag, first.etag, 'unchanged data keeps its ETag')

  c.apply(TICKER_TOPIC, { kind: 'snapshot', channel: 'ticker', epoch: 3, seq: 8, sourceTs: now + 10, json: '{"index":2}' })
  const third = same(now + 20, 'after a ticker update')
  t.equal(JSON.parse(third.body).ticker.index, 2, 'the new ticker is served')
  t.not(third.etag, first.etag, 'and a new ETag')

  const stale = same(now + 40_000, 'after the account went stale')
  t.equal(JSON.parse(stale.body).meta.channels.account.stale, true, 'staleness is served')

  c.apply('account:u', { kind: 'status', scope: 'account', upstream: 'down', lastSuccessTs: now, reason: 'upstream_unavailable' })
  const down = same(now + 40_001, 'after a status change')
  t.equal(JSON.parse(down.body).meta.upstream, 'down', 'the status is served')

  const other = same(now + 40_002, 'another user', 'v')
  t.equal(JSON.parse(other.body).account, null, "another user never gets this user's memo")
})
