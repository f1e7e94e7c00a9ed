import t from 'tap'
import { startTestApp, uniqueName } from './helpers/app.ts'

t.test('register, login, me, refresh rotation, reuse detection, logout', async (t) => {
  const g = await startTestApp(t)
  const username = uniqueName('alice')
  const password = 'correct horse battery'

  const reg = await g.http('POST', '/api/auth/register', { body: { username, password } })
  t.equal(reg.status, 201, 'register answers 201')
  t.equal(reg.body.user.username, username, 'with the user')
  t.notOk('passwordHash' in reg.body.user, 'never the password hash')

  const dup = await g.http('POST', '/api/auth/register', { body: { username, password } })
  t.equal(dup.status, 409, 'duplicate username → 409')
  t.equal(dup.body.error.code, 'username_taken', 'in the contract error shape')

  const u = await g.login(username, password)
  t.match(u.token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT access token')
  t.ok(u.expiresAt > Date.now() + 14 * 60_000 && u.expiresAt <= Date.now() + 15 * 60_000 + 1000, 'expires in about 15 minutes')
  const payload = JSON.parse(Buffer.from(u.token.split('.')[1]!, 'base64url').toString())
  t.same(Object.keys(payload).sort(), ['exp', 'iat', 'sub'], 'the token carries only the user id and its times')
  t.match(u.cookie, /^lnm_refresh=/, 'refresh cookie set')

  const login = await g.http('POST', '/api/auth/login', { body: { username, password } })
  const sc = login.setCookie.join('; ')
  t.match(sc, /HttpOnly/i, 'refresh cookie is httpOnly')
  t.match(sc, /SameSite=Strict/i, 'refresh cookie is SameSite=Strict')
  t.match(sc, /Path=\/api\/auth/i, 'refresh cookie scoped to /api/auth')

  const me = await g.http('GET', '/api/me', { token: u.token })
  t.equal(me.status, 200)
  t.equal(me.body.username, username, '/api/me answers the user')

  const r1 = await g.http('POST', '/api/auth/refresh', { cookie: u.cookie })
  t.equal(r1.status, 200, 'refresh with the cookie gives a new access token')
  t.ok(r1.body.accessToken, 'access token present')
  const rotated = r1.setCookie.map((c) => c.split(';')[0]).find((c) => c!.startsWith('lnm_refresh='))!
  t.not(rotated, u.cookie, 'the refresh token rotated')

  const reuse = await g.http('POST', '/api/auth/refresh', { cookie: u.cookie })
  t.equal(reuse.status, 401, 'reusing a rotated refresh token is refused')
  const after = await g.http('POST', '/api/auth/refresh', { cookie: rotated })
  t.equal(after.status, 401, 'and the whole session is revoked: the newest token is dead too')
  const events = await g.app.prisma.authEvent.findMany({ where: { userId: u.userId }, orderBy: { id: 'asc' } })
  t.ok(events.some((e) => e.event === 'refresh_reuse'), 'the reuse is in the audit trail')

  const u2 = await g.login(username, password)
  const out = await g.http('POST', '/api/auth/logout', { token: u2.token, cookie: u2.cookie })
  t.equal(out.status, 200, 'logout')
  const dead = await g.http('GET', '/api/me', { token: u2.token })
  t.equal(dead.status, 401, 'the access token is dead after logout')
  const deadRefresh = await g.http('POST', '/api/auth/refresh', { cookie: u2.cookie })
  t.equal(deadRefresh.status, 401, 'the refresh session is dead after logout')
})

t.test('every auth route answers bad input with 4xx in the contract shape, never 500', async (t) => {
  const g = await startTestApp(t)
  const { username, password } = await g.register(uniqueName('bob'), 'bobs password 1')
  const huge = 'x'.repeat(10 * 1024 * 1024)
  const cases: Array<{ name: string; method: string; path: string; body?: unknown; raw?: string; headers?: Record<string, string>; token?: string; expect: number }> = [
    { name: 'register: missing fields', method: 'POST', path: '/api/auth/register', body: {}, expect: 400 },
    { name: 'register: wrong types', method: 'POST', path: '/api/auth/register', body: { username: 42, password: ['a'] }, expect: 400 },
    { name: 'register: weak password', method: 'POST', path: '/api/auth/register', body: { username: uniqueName('c'), password: '12345678' }, expect: 400 },
    { name: 'register: short password', method: 'POST', path: '/api/auth/register', body: { username: uniqueName('c'), password: 'abc' }, expect: 400 },
    { name: 'register: SQL in username', method: 'POST', path: '/api/auth/register', body: { username: "x'; DROP TABLE users; --", password: 'a fine password' }, expect: 400 },
    { name: 'register: HTML in username', method: 'POST', path: '/api/auth/register', body: { username: '<script>alert(1)</script>', password: 'a fine password' }, expect: 400 },
    { name: 'register: extra fields', method: 'POST', path: '/api/auth/register', body: { username: uniqueName('c'), password: 'a fine password', admin: true }, expect: 400 },
    { name: 'register: malformed JSON', method: 'POST', path: '/api/auth/register', raw: '{"username":', headers: { 'content-type': 'application/json' }, expect: 400 },
    { name: 'register: 10 MB body', method: 'POST', path: '/api/auth/register', raw: JSON.stringify({ username: 'x', password: huge }), headers: { 'content-type': 'application/json' }, expect: 413 },
    { name: 'register: not JSON', method: 'POST', path: '/api/auth/register', raw: 'username=a&password=b', headers: { 'content-type': 'application/x-www-form-urlencoded' }, expect: 415 },
    { name: 'login: missing fields', method: 'POST', path: '/api/auth/login', body: { username }, expect: 400 },
    { name: 'login: SQL string', method: 'POST', path: '/api/auth/login', body: { username: "' OR 1=1 --", password: "' OR 1=1 --" }, expect: 401 },
    { name: 'login: wrong password', method: 'POST', path: '/api/auth/login', body: { username, password: 'not the password' }, expect: 401 },
    { name: 'login: 10 MB body', method: 'POST', path: '/api/auth/login', raw: JSON.stringify({ username, password: huge }), headers: { 'content-type': 'application/json' }, expect: 413 },
    { name: 'refresh: no cookie', method: 'POST', path: '/api/auth/refresh', expect: 401 },
    { name: 'refresh: forged cookie', method: 'POST', path: '/api/auth/refresh', headers: { cookie: 'lnm_refresh=forged' }, expect: 401 },
    { name: 'logout: no token', method: 'POST', path: '/api/auth/logout', expect: 401 },
    { name: 'me: forged token', method: 'GET', path: '/api/me', token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged', expect: 401 },
    { name: 'me: alg none token', method: 'GET', path: '/api/me', token: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'x', exp: 9e9 })).toString('base64url')}.`, expect: 401 },
    { name: 'me: garbage bearer', method: 'GET', path: '/api/me', headers: { authorization: 'Bearer' }, expect: 401 },
    { name: 'unknown route', method: 'GET', path: '/api/nope', expect: 404 },
  ]
  for (const c of cases) {
    const r = await g.http(c.method, c.path, { body: c.body, rawBody: c.raw, headers: c.headers, token: c.token })
    t.equal(r.status, c.expect, `${c.name} → ${c.expect}`)
    t.type(r.body?.error?.code, 'string', `${c.name}: error.code present`)
    t.type(r.body?.error?.message, 'string', `${c.name}: error.message present`)
  }
  const ok = await g.http('GET', '/health/live')
  t.equal(ok.status, 200, 'the server is still fine')
})

t.test('the same 401 for an unknown user and a wrong password', async (t) => {
  const g = await startTestApp(t)
  const { username } = await g.register(uniqueName('carol'), 'carols password')
  const a = await g.http('POST', '/api/auth/login', { body: { username, password: 'wrong password!' } })
  const b = await g.http('POST', '/api/auth/login', { body: { username: uniqueName('nobody'), password: 'wrong password!' } })
  t.equal(a.status, 401)
  t.equal(b.status, 401)
  t.same(a.body, b.body, 'identical bodies')
})

t.test('an expired token is refused with token_expired', async (t) => {
  const g = await startTestApp(t, { ACCESS_TOKEN_TTL_S: '5' })
  const { username, password } = await g.register(uniqueName('dave'), 'daves password')
  const u = await g.login(username, password)
  const expired = g.app.jwt.sign({ sub: u.userId, iat: Math.floor(Date.now() / 1000) - 100, exp: Math.floor(Date.now() / 1000) - 10 } as never)
  const r = await g.http('GET', '/api/me', { token: expired })
  t.equal(r.status, 401)
  t.equal(r.body.error.code, 'token_expired', 'says the token expired')
})

t.test('wrong password twenty times: 401s then 429, per username and per IP', async (t) => {
  const g = await startTestApp(t, { AUTH_RATE_LIMIT_USER_PER_MIN: '10', AUTH_RATE_LIMIT_IP_PER_MIN: '1000' })
  const { username, password } = await g.register(uniqueName('erin'), 'erins password')
  const statuses: number[] = []
  for (let i = 0; i < 20; i++) {
    const r = await g.http('POST', '/api/auth/login', { body: { username, password: `wrong-${i}-password` } })
    statuses.push(r.status)
    if (r.status === 429) {
      t.equal(r.body.error.code, 'rate_limited', 'rate limit in the contract shape')
      t.ok(Number(r.headers.get('retry-after')) > 0, 'with Retry-After')
    }
  }
  t.same(statuses.slice(0, 10), Array(10).fill(401), 'the first ten are 401')
  t.same(statuses.slice(10), Array(10).fill(429), 'the rest are 429')
  const right = await g.http('POST', '/api/auth/login', { body: { username, password } })
  t.equal(right.status, 429, 'even the right password waits out the window (no oracle)')

  const g2 = await startTestApp(t, { AUTH_RATE_LIMIT_IP_PER_MIN: '5' })
  const codes: number[] = []
  for (let i = 0; i < 8; i++) codes.push((await g2.http('POST', '/api/auth/login', { body: { username: `someone${i}`, password: 'whatever123' } })).status)
  t.same(codes, [401, 401, 401, 401, 401, 429, 429, 429], 'per-IP limit across usernames')
})

t.test('account deletion kills the tokens', async (t) => {
  const g = await startTestApp(t)
  const { username, password } = await g.register(uniqueName('fay'), 'fays password')
  const u = await g.login(username, password)
  const wrong = await g.http('DELETE', '/api/me', { token: u.token, body: { password: 'nope nope nope' } })
  t.equal(wrong.status, 401, 'needs the password')
  const del = await g.http('DELETE', '/api/me', { token: u.token, body: { password } })
  t.equal(del.status, 200, 'deleted')
  const me = await g.http('GET', '/api/me', { token: u.token })
  t.equal(me.status, 401, 'the token of a deleted user is refused')
  const login = await g.http('POST', '/api/auth/login', { body: { username, password } })
  t.equal(login.status, 401, 'cannot log in any more')
})
