/**
 * GET /api/dashboard: the same cache as the WebSocket, ETag → 304, never an exchange call per request.
 */
import t from 'tap'
import { liveGateway } from './live.ts'
import { sleep, until } from './helpers.ts'

// one gateway for the file: the test without credentials runs first, before the other pauses the exchange
const L = await liveGateway(t, { env: { POLL_INTERVAL_MS: '1000', STALE_AFTER_MS: '2000', LOG_LEVEL: 'warn' } })

t.test('dashboard without credentials: ticker only, says so', async (t) => {
  const u0 = await L.g.register()
  const u = await L.g.login(u0.username, u0.password)
  const d = await L.g.http('GET', '/api/dashboard', { token: u.token })
  t.equal(d.status, 200, '200')
  t.equal(d.body.account, null, 'no account')
  t.equal(d.body.meta.hasCredentials, false, 'hasCredentials false')
  t.equal(d.body.meta.reason, 'no_credentials', 'reason no_credentials')
  t.ok(d.body.ticker, 'the ticker is there')
})

t.test('dashboard from cache with ETag', async (t) => {
  const u = await L.user(0)
  t.equal((await L.g.http('GET', '/api/dashboard')).status, 401, 'needs a bearer token')
  const first = await L.g.http('GET', '/api/dashboard', { token: u.token })
  t.equal(first.status, 200, '200')
  t.equal(first.body.account?.username, L.accounts[0]!.username, 'account from the first poll (cold cache waited for)')
  t.ok(first.body.positions?.running, 'positions')
  t.ok(first.body.ticker?.lastPrice, 'ticker')
  t.match(first.body.meta, { source: 'lnmarkets', staleAfterMs: 2000, hasCredentials: true, upstream: 'ok' }, 'meta')
  const etag = first.headers.get('etag')!
  t.match(etag, /^W\/".+"$/, 'weak ETag')
  const again = await L.g.http('GET', '/api/dashboard', { token: u.token, headers: { 'if-none-match': etag } })
  t.ok(again.status === 304 || again.headers.get('etag') !== etag, '304 while nothing changed (or a new ETag when it did)')

  const t0 = Date.now()
  await Promise.all(Array.from({ length: 100 }, () => L.g.http('GET', '/api/dashboard', { token: u.token })))
  await sleep(1000)
  const n = L.accountRequests(t0, Date.now())
  t.ok(n <= 9, `100 dashboard requests in ~1 s cost the exchange only the poller's calls (${n})`)

  await L.sim.pause()
  let stale = await L.g.http('GET', '/api/dashboard', { token: u.token })
  await until(
    async () => {
      stale = await L.g.http('GET', '/api/dashboard', { token: u.token })
      return stale.body?.meta?.channels?.account?.stale === true && stale.body?.meta?.upstream === 'down'
    },
    15_000,
    { what: 'the dashboard to say stale and upstream down', stepMs: 200 },
  )
  t.equal(stale.status, 200, 'still answers while the exchange is away')
  t.equal(stale.body.meta.channels.account.stale, true, 'old account data is marked stale')
  t.equal(stale.body.meta.upstream, 'down', 'upstream down')
  t.not(stale.headers.get('etag'), etag, 'staleness changes the ETag')
  await L.sim.resume()
})
