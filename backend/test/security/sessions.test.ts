/**
 * Logout ends the refresh session the access token belongs to, whatever the race: with or without the cookie,
 * and with a refresh of the same session in flight. Two logins in the same second get distinct tokens, so one
 * logout never ends the other.
 */
import t from 'tap'
import { startTestApp, type HttpResult } from '../helpers/app.ts'

const cookieOf = (r: HttpResult) =>
  r.setCookie.map((c) => c.split(';')[0]!).find((c) => c.startsWith('lnm_refresh=') && c !== 'lnm_refresh=') ?? null

t.test('logout ends the session', async (t) => {
  const g = await startTestApp(t, { LOG_LEVEL: 'warn' })
  const { username, password } = await g.register()

  t.test('with a bearer token and no cookie', async (t) => {
    const s = await g.login(username, password)
    const out = await g.http('POST', '/api/auth/logout', { token: s.token })
    t.equal(out.status, 200, 'logout without the cookie answers 200')
    const r = await g.http('POST', '/api/auth/refresh', { cookie: s.cookie })
    t.equal(r.status, 401, "the session's refresh cookie no longer works")
    t.equal((await g.http('GET', '/api/me', { token: s.token })).status, 401, 'the access token is revoked')
  })

  t.test('tokens issued by the session die with it', async (t) => {
    const s = await g.login(username, password)
    const refreshed = await g.http('POST', '/api/auth/refresh', { cookie: s.cookie })
    t.equal(refreshed.status, 200, 'a refresh issues a second access token of the same session')
    const second = refreshed.body.accessToken as string
    t.not(second, s.token, 'a distinct token, even within the same second (jti)')
    t.equal((await g.http('GET', '/api/me', { token: second })).status, 200, 'which works')
    await g.http('POST', '/api/auth/logout', { token: s.token })
    t.equal(
      (await g.http('GET', '/api/me', { token: second })).status,
      401,
      'after logout with the first token, the second one is refused too',
    )
  })

  t.test('a refresh racing the logout leaves nothing usable (8 trials)', async (t) => {
    for (let i = 0; i < 8; i++) {
      const s = await g.login(username, password)
      const [refresh, logout] = await Promise.all([
        g.http('POST', '/api/auth/refresh', { cookie: s.cookie }),
        g.http('POST', '/api/auth/logout', { token: s.token, cookie: s.cookie }),
      ])
      t.equal(logout.status, 200, `trial ${i}: logout answers 200`)
      const rotated = cookieOf(refresh)
      for (const c of [s.cookie, rotated].filter((x): x is string => x !== null)) {
        const again = await g.http('POST', '/api/auth/refresh', { cookie: c })
        t.equal(again.status, 401, `trial ${i}: ${c === s.cookie ? 'the original' : 'the rotated'} cookie no longer refreshes`)
      }
      if (refresh.status === 200) {
        const me = await g.http('GET', '/api/me', { token: refresh.body.accessToken })
        t.equal(me.status, 401, `trial ${i}: the access token the racing refresh got is refused`)
      }
    }
  })

  t.test('two logins in the same second are distinct sessions', async (t) => {
    // log in twice at once (same second, same user): the tokens differ, and one logout leaves the other working
    let a = await g.login(username, password)
    let b = await g.login(username, password)
    for (let i = 0; i < 5 && Math.floor(a.expiresAt / 1000) !== Math.floor(b.expiresAt / 1000); i++) {
      ;[a, b] = await Promise.all([g.login(username, password), g.login(username, password)])
    }
    t.equal(Math.floor(a.expiresAt / 1000), Math.floor(b.expiresAt / 1000), 'both issued in the same second')
    t.not(a.token, b.token, 'the tokens differ (jti)')
    await g.http('POST', '/api/auth/logout', { token: a.token, cookie: a.cookie })
    t.equal((await g.http('GET', '/api/me', { token: a.token })).status, 401, 'the logged-out token is refused')
    t.equal((await g.http('GET', '/api/me', { token: b.token })).status, 200, 'the other login still works')
    t.equal((await g.http('POST', '/api/auth/refresh', { cookie: b.cookie })).status, 200, 'and its session still refreshes')
  })
})
