/**
 * Isolation between users, as an attacker would try it: forged tokens, other users' ids in messages,
 * tokens after logout, after deleting credentials, of a deleted user.
 */
import t from 'tap'
import { createHmac } from 'node:crypto'
import { startTestApp } from '../helpers/app.ts'
import { WsClient, sleep, upgradeStatus } from './helpers.ts'

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
function forge(sub: string, secret = 'not-the-server-secret-not-the-server-secret') {
  const head = b64({ alg: 'HS256', typ: 'JWT' })
  const body = b64({ sub, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 })
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url')
  return `${head}.${body}.${sig}`
}

t.test('isolation', async (t) => {
  const g = await startTestApp(t, { POLL_INTERVAL_MS: '1000', SHUTDOWN_DRAIN_MS: '100', LOG_LEVEL: 'warn' })
  const alice = await g.userWithCredentials(1)
  const bob = await g.userWithCredentials(2)
  const aliceName = g.sim.accounts[1]!.username
  const bobName = g.sim.accounts[2]!.username

  t.test('forged tokens', async (t) => {
    const c = await WsClient.open(g.wsUrl)
    c.send({ type: 'auth', request_id: 'a', token: forge(bob.userId) })
    t.equal((await c.waitClose()).code, 4501, "a token for bob's id signed with another key → 4501")
    const [h, , s] = alice.token.split('.')
    const tampered = `${h}.${b64({ sub: bob.userId, exp: Math.floor(Date.now() / 1000) + 600 })}.${s}`
    const c2 = await WsClient.open(g.wsUrl)
    c2.send({ type: 'auth', request_id: 'a', token: tampered })
    t.equal((await c2.waitClose()).code, 4501, "alice's signature on bob's claims → 4501")
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: bob.userId, exp: 9999999999 })}.`
    const c3 = await WsClient.open(g.wsUrl)
    c3.send({ type: 'auth', request_id: 'a', token: none })
    t.equal((await c3.waitClose()).code, 4501, 'alg none → 4501')
    t.equal(await upgradeStatus(g.wsUrl, forge(bob.userId)), 401, 'a forged Authorization header is refused with 401 before the upgrade')
  })

  t.test("another user's id in messages is ignored", async (t) => {
    const c = await WsClient.authed(g.wsUrl, alice.token)
    c.send({ type: 'subscribe', request_id: 's', channels: ['account'], userId: bob.userId, user_id: bob.userId })
    c.send({ type: 'refresh_data', request_id: 'r', userId: bob.userId, account: bob.userId })
    await c.next((f) => f.type === 'ack' && f.request_id === 'r')
    await c.next((f) => f.type === 'data_update' && f.channel === 'account', 5000)
    await sleep(300) // proves no foreign account frame arrives within 300 ms
    const names = new Set(c.all((f) => f.type === 'data_update' && f.channel === 'account').map((f) => f.data.username))
    t.same([...names], [aliceName], "alice's socket only ever carries alice's account")
    t.equal(c.frames.find((f) => f.type === 'connection').userId, alice.userId, 'the connection is alice')
    const d = await g.http('GET', `/api/dashboard?userId=${bob.userId}`, { token: alice.token, headers: { 'x-user-id': bob.userId } })
    t.equal(d.body.account?.username, aliceName, 'the dashboard ignores user ids in the query and headers')
    c.close()
  })

  t.test('a token after logout', async (t) => {
    const u = await g.userWithCredentials(1)
    const c = await WsClient.authed(g.wsUrl, u.token)
    const r = await g.http('POST', '/api/auth/logout', { token: u.token, cookie: u.cookie })
    t.ok(r.status < 300, 'logout ok')
    t.equal((await c.waitClose()).code, 4501, 'the open socket closes with 4501 at logout')
    const again = await WsClient.open(g.wsUrl)
    again.send({ type: 'auth', request_id: 'a', token: u.token })
    t.equal((await again.waitClose()).code, 4501, 'the token is refused afterwards (4501)')
    t.equal(await upgradeStatus(g.wsUrl, u.token), 401, 'and as an Authorization header (401)')
    t.equal((await g.http('GET', '/api/dashboard', { token: u.token })).status, 401, 'and by /api/dashboard')
  })

  t.test('a token after the credentials were deleted', async (t) => {
    const u = await g.userWithCredentials(1)
    const c = await WsClient.authed(g.wsUrl, u.token)
    await c.next((f) => f.type === 'data_update' && f.channel === 'account', 5000)
    const r = await g.http('DELETE', '/api/credentials', { token: u.token })
    t.equal(r.status, 200, 'credentials deleted')
    t.equal((await c.waitClose()).code, 4503, 'the open socket closes with 4503')
    const again = await WsClient.authed(g.wsUrl, u.token)
    t.match(await again.next((f) => f.type === 'error'), { code: 'no_credentials' }, 'a new socket is told there are no credentials')
    await sleep(1500) // proves no account/positions data within 1.5 s without credentials
    t.equal(again.all((f) => f.type === 'data_update' && f.channel !== 'ticker').length, 0, 'and never receives account or positions data')
    const d = await g.http('GET', '/api/dashboard', { token: u.token })
    t.equal(d.body.account, null, 'the dashboard has no account data')
    t.equal(d.body.meta.hasCredentials, false, 'and says why')
    again.close()
  })

  t.test('a token of a deleted user', async (t) => {
    const u = await g.userWithCredentials(1)
    const c = await WsClient.authed(g.wsUrl, u.token)
    const r = await g.http('DELETE', '/api/me', { token: u.token, body: { password: u.password } })
    t.equal(r.status, 200, 'user deleted')
    t.equal((await c.waitClose()).code, 4503, 'the open socket closes with 4503')
    const again = await WsClient.open(g.wsUrl)
    again.send({ type: 'auth', request_id: 'a', token: u.token })
    const code = (await again.waitClose()).code
    t.ok(code === 4503 || code === 4501, `the token no longer opens a socket (${code})`)
  })

  t.test("bob never received alice's data", async (t) => {
    const c = await WsClient.authed(g.wsUrl, bob.token)
    await c.next((f) => f.type === 'data_update' && f.channel === 'account', 5000)
    const names = new Set(c.all((f) => f.type === 'data_update' && f.channel === 'account').map((f) => f.data.username))
    t.same([...names], [bobName], "bob's socket only carries bob's account")
    c.close()
  })
})
