/**
 * /ws through the real app: the upgrade-level answers (401, 503, 400), header auth, and the close codes
 * that depend on the app's wiring (1009 from maxPayload, 4502, 4001 from real token expiry, 1001 at shutdown).
 */
import t from 'tap'
import { startTestApp } from '../helpers/app.ts'
import { WsClient, metricValue, until, upgradeStatus } from './helpers.ts'

t.test('/ws in the real app', async (t) => {
  const g = await startTestApp(t, {
    MAX_CONNECTIONS: '4',
    WS_AUTH_TIMEOUT_MS: '400',
    WS_MAX_MESSAGE_BYTES: '1024',
    ACCESS_TOKEN_TTL_S: '5',
    SHUTDOWN_DRAIN_MS: '300',
    LOG_LEVEL: 'warn',
  })
  const u = await g.userWithCredentials(0)

  const viaHeader = await WsClient.open(g.wsUrl, { token: u.token })
  const conn = await viaHeader.next((f) => f.type === 'connection', 5000)
  t.match(conn, { userId: u.userId, source: 'simulator' }, 'Authorization header on the upgrade: no auth message needed')
  t.equal(await upgradeStatus(g.wsUrl, 'garbage'), 401, 'a bad header token is refused with 401 before upgrading')
  const inUrl = await WsClient.open(`${g.wsUrl}?token=${u.token}`).then(
    () => 101,
    (err: { status?: number }) => err.status,
  )
  t.equal(inUrl, 400, 'a token in the URL is refused before upgrading')

  const big = await WsClient.authed(g.wsUrl, u.token)
  big.ws.send('x'.repeat(2048))
  t.equal((await big.waitClose()).code, 1009, 'a message over WS_MAX_MESSAGE_BYTES → 1009')

  const silent = await WsClient.open(g.wsUrl)
  t.equal((await silent.waitClose(3000)).code, 4502, 'no auth within WS_AUTH_TIMEOUT_MS → 4502')

  // capacity: 4 authenticated sockets max (sockets still authenticating have their own budget)
  const held = await Promise.all([WsClient.authed(g.wsUrl, u.token), WsClient.authed(g.wsUrl, u.token), WsClient.authed(g.wsUrl, u.token)])
  t.equal(await upgradeStatus(g.wsUrl, u.token), 503, 'over MAX_CONNECTIONS: 503 on the upgrade request, before upgrading')
  t.ok(
    (await metricValue(g.app.metrics.registry, 'lnm_gateway_ws_connections_refused_total', { reason: 'over_capacity_http' })) >= 1,
    'refusal counted',
  )
  const open0 = g.app.streaming.hub.stats().connections
  for (const h of held) h.close()
  await until(() => g.app.streaming.hub.stats().connections === open0 - held.length, 5000, 'the closed sockets to free their slots')

  // the access token lives 5 s: the header-authenticated socket is closed with 4001 when it expires
  const left = u.expiresAt - Date.now()
  t.equal((await viaHeader.waitClose(left + 3000)).code, 4001, 'token expiry on an open socket → 4001')

  const fresh = await g.login(u.username, u.password)
  const last = await WsClient.authed(g.wsUrl, fresh.token)
  const closing = g.close()
  t.equal((await last.waitClose(5000)).code, 1001, 'shutdown closes sockets with 1001')
  await closing
  t.ok((await metricValue(g.app.metrics.registry, 'lnm_gateway_ws_connections_closed_total', { code: '1001' })) >= 1, '1001 counted')
})
