/**
 * The exchange's clock moves by 60 s while its /time endpoint is failing (an outage of part of it): the signed calls
 * are refused with a timestamp 401 and the client cannot re-learn the offset. That is the clock, not the user's
 * key: the account status must never say `credentials_rejected` (which also backs the poller off as for a dead key),
 * and data flows again once /time answers.
 */
import t from 'tap'
import { createServer, request } from 'node:http'
import { startSimulator } from '../../simulator/index.ts'
import { FAST_EXCHANGE_LIMITS, startTestApp, testAccounts } from '../helpers/app.ts'
import { WsClient } from '../streaming/helpers.ts'

t.test('a timestamp 401 is not a credentials rejection', async (t) => {
  const accounts = testAccounts(1)
  const sim = await startSimulator({
    port: 0,
    host: '127.0.0.1',
    accounts,
    admin: true,
    rateLimit: { publicPerSec: 1000, authPerSec: 1000 },
  })
  t.teardown(() => sim.close())
  // a real HTTP hop in front of the simulator that can fail GET /v3/time with 503, passing everything else through
  const target = new URL(sim.url)
  let timeDown = false
  const proxy = createServer((req, res) => {
    if (timeDown && req.url?.startsWith(`${target.pathname}/time`)) {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"code":"unavailable","message":"down"}')
      return
    }
    const up = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.pipe(res)
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
  t.teardown(
    () =>
      new Promise<void>((r) => {
        proxy.closeAllConnections()
        proxy.close(() => r())
      }),
  )
  const port = (proxy.address() as { port: number }).port

  // the gateway's throttle at 20 signed / 10 public calls per second (the simulator allows 1000/s) and retries
  // 50-200 ms apart instead of 1-8 s: the failing /time re-learn gives up, and the re-learn after it succeeds, in
  // a fraction of a second instead of several, by the same path (this test is about the status, not the pacing)
  const exchangeClient = { limits: FAST_EXCHANGE_LIMITS, retry: { baseMs: 50, capMs: 200, retries: 3 } }
  const g = await startTestApp(
    t,
    {
      LNM_API_URL: `http://127.0.0.1:${port}${target.pathname}`,
      LNM_STREAM_URL: sim.streamUrl,
      POLL_INTERVAL_MS: '500',
      TICKER_INTERVAL_MS: '500',
      SHUTDOWN_DRAIN_MS: '100',
      LOG_LEVEL: 'warn',
    },
    { exchangeClient },
  )
  const u = await g.register()
  const user = await g.login(u.username, u.password)
  const a = accounts[0]!
  t.equal(
    (await g.http('PUT', '/api/credentials', { token: user.token, body: { apiKey: a.key, apiSecret: a.secret, passphrase: a.passphrase } }))
      .status,
    200,
    'credentials stored',
  )
  const c = await WsClient.authed(g.wsUrl, user.token)
  await c.next((f) => f.type === 'status' && f.scope === 'account' && f.upstream === 'ok', 10_000)

  timeDown = true
  sim.faults.set({ clockSkewMs: 60_000 })
  const bad = await c.next((f) => f.type === 'status' && f.scope === 'account' && f.upstream !== 'ok', 10_000)
  t.not(bad.reason, 'credentials_rejected', `the status does not blame the credentials (${bad.upstream}: ${bad.reason})`)
  const seen = () => c.all((f) => f.type === 'status' && f.scope === 'account').map((f) => `${f.upstream}:${f.reason}`)

  timeDown = false
  const back = await c.next((f) => f.type === 'status' && f.scope === 'account' && f.upstream === 'ok', 20_000).catch(() => null)
  t.ok(back, `once /time answers, the client re-learns the clock and the account is ok again (statuses: ${seen().join(', ')})`)
  t.notOk(
    seen().some((s) => s.endsWith('credentials_rejected')),
    'credentials_rejected was never sent',
  )
  c.close()
})
