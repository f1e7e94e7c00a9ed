/**
 * The exchange goes away: status down within about one poll interval and no fresh data_update; it comes
 * back: status ok and data again, on the same sockets (no reconnect).
 */
import t from 'tap'
import { startTestApp } from '../helpers/app.ts'
import { WsClient, sleep } from './helpers.ts'

const POLL_MS = 2000

t.test('simulator outage and recovery without reconnecting', async (t) => {
  // the exchange client's circuit breaker stays open UPSTREAM_BREAKER_OPEN_MS after the outage (default 10 s);
  // recovery then starts with its half-open probe, which the pollers aim at (circuit_open carries retryAfterMs)
  const g = await startTestApp(t, {
    POLL_INTERVAL_MS: String(POLL_MS),
    TICKER_INTERVAL_MS: '1000',
    SHUTDOWN_DRAIN_MS: '100',
    LOG_LEVEL: 'warn',
    UPSTREAM_BREAKER_OPEN_MS: '1000',
  })
  const user = await g.userWithCredentials(0)
  t.equal(
    // the client's call policy owns the breaker (backend/exchange/call-policy.ts)
    (g.app.exchange.client as unknown as { policy: { breaker: { openMs: number } } }).policy.breaker.openMs,
    1000,
    'the breaker open time comes from UPSTREAM_BREAKER_OPEN_MS',
  )
  const c = await WsClient.authed(g.wsUrl, user.token)
  await c.next((f) => f.type === 'data_update' && f.channel === 'positions', 8000)
  t.equal(c.frames.find((f) => f.type === 'connection').source, 'simulator', 'demo mode says source: simulator')
  // the outage starts half an interval after a poll: a full interval would land it just after the next poll
  // (by a few ms, less on a loaded machine), and the detection bound would hinge on those few ms
  await sleep(POLL_MS / 2)

  const stopAt = Date.now()
  await g.sim.pause()
  const pausedAt = Date.now()
  const down = await c.next((f) => f.type === 'status' && f.scope === 'account' && f.upstream === 'down', 3 * POLL_MS + 1000)
  const detectMs = Date.now() - stopAt
  t.comment(`account status down (${down.reason}) ${detectMs} ms after the simulator stopped (poll interval ${POLL_MS} ms)`)
  t.ok(detectMs <= POLL_MS, 'down within one poll interval (the ticker stream drop + REST probe, or the first account poll)')
  t.match(down, { lastSuccessTs: Number, reason: String }, 'the status says when data was last good and why')
  t.ok(
    down.lastSuccessTs <= pausedAt + 50,
    `lastSuccessTs is from before the outage (${down.lastSuccessTs - stopAt} ms after stop, pause took ${pausedAt - stopAt} ms)`,
  )
  await sleep(2 * POLL_MS) // proves no post-outage data within two poll intervals
  const freshAfter = c.all((f) => f.type === 'data_update' && f.channel !== 'ticker' && f.sourceTs > pausedAt + 50)
  t.equal(freshAfter.length, 0, 'no account/positions data_update with data from after the outage')
  const d = await g.http('GET', '/api/dashboard', { token: user.token })
  t.equal(d.status, 200, 'dashboard still answers from cache')
  t.equal(d.body.meta.upstream, 'down', 'and says upstream down')

  const resumedAt = Date.now()
  await g.sim.resume()
  const ok = await c.next((f) => f.type === 'status' && f.scope === 'account' && f.upstream === 'ok', 15_000)
  t.ok(ok, `account status ok again ${Date.now() - resumedAt} ms after the simulator came back`)
  const fresh = await c.next((f) => f.type === 'data_update' && f.sourceTs >= resumedAt, 15_000)
  t.ok(fresh, `fresh data_update (${fresh.channel}) on the same socket after recovery`)
  t.equal(c.closeInfo, null, 'the client never had to reconnect')
  c.close()
})
