/**
 * Session changes cross the cluster: a logout, a credentials deletion or an account deletion made through
 * node A closes the user's sockets on node B too (two gateway apps, one PostgreSQL, one Redis).
 */
import t from 'tap'
import { testAccounts } from '../helpers/app.ts'
import { WsClient } from '../streaming/helpers.ts'
import { startCluster } from './cluster.ts'

t.test('logout and deletions on one node close the sockets on the other', async (t) => {
  const accounts = testAccounts(1)
  const cluster = await startCluster(t, accounts, { POLL_INTERVAL_MS: '1500' })
  if (!cluster) return
  const { a, b } = cluster
  const acc = accounts[0]!

  // logout through node a → the socket that token opened on node b closes with 4501
  const r1 = await a.register()
  const u1 = await a.login(r1.username, r1.password)
  const onB = await WsClient.authed(b.wsUrl, u1.token)
  t.teardown(() => onB.close())
  const out = await a.http('POST', '/api/auth/logout', { token: u1.token })
  t.equal(out.status, 200, 'logged out through node a')
  const c1 = await Promise.race([onB.closed, new Promise<null>((r) => setTimeout(() => r(null), 5000))])
  t.equal(c1?.code, 4501, 'the socket on node b is closed with 4501 (invalid token) within 5 s')

  // credentials deleted through node a → the user's socket on node b closes with 4503
  const r2 = await a.register()
  const u2 = await a.login(r2.username, r2.password)
  t.equal(
    (
      await a.http('PUT', '/api/credentials', {
        token: u2.token,
        body: { apiKey: acc.key, apiSecret: acc.secret, passphrase: acc.passphrase },
      })
    ).status,
    200,
  )
  const onB2 = await WsClient.authed(b.wsUrl, u2.token)
  t.teardown(() => onB2.close())
  t.equal((await a.http('DELETE', '/api/credentials', { token: u2.token })).status, 200, 'credentials deleted through node a')
  const c2 = await Promise.race([onB2.closed, new Promise<null>((r) => setTimeout(() => r(null), 5000))])
  t.equal(c2?.code, 4503, 'the socket on node b is closed with 4503 (forbidden)')

  // account deleted through node a → its socket on node b closes with 4503
  const r3 = await a.register()
  const u3 = await a.login(r3.username, r3.password)
  const onB3 = await WsClient.authed(b.wsUrl, u3.token)
  t.teardown(() => onB3.close())
  t.equal(
    (await a.http('DELETE', '/api/me', { token: u3.token, body: { password: r3.password } })).status,
    200,
    'account deleted through node a',
  )
  const c3 = await Promise.race([onB3.closed, new Promise<null>((r) => setTimeout(() => r(null), 5000))])
  t.equal(c3?.code, 4503, 'the socket on node b is closed with 4503')
  t.equal((await b.http('GET', '/api/me', { token: u3.token })).status, 401, 'and node b refuses the token')
})
