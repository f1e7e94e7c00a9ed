import t from 'tap'
import { createHmac } from 'node:crypto'
import { passwordHasher, verifyPassword } from '../auth/passwords.ts'
import { startTestApp, TEST_PASSWORD_HASH_COST, uniqueName, type TestApp } from './helpers/app.ts'
import { until } from './streaming/helpers.ts'

/** an HS256 JWT signed with a key of our choosing (a forger's key, not the server's) */
const hs256 = (payload: object, key: string) => {
  const head = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url')
  return `${head}.${body}.${createHmac('sha256', key).update(`${head}.${body}`).digest('base64url')}`
}

/**
 * One gateway for the subtests that need no settings of their own: each works with users of its own. Strict: no
 * grace window for concurrent tabs (tested on its own below).
 */
let sharedApp: Promise<TestApp> | undefined
const shared = () => (sharedApp ??= startTestApp(t, { REFRESH_REUSE_GRACE_MS: '0' }))

t.test('password hashes: scrypt 2^15 in production, any stored cost verifies, the dummy hash costs the same', async (t) => {
  const prod = passwordHasher()
  t.equal(prod.log2N, 15, 'the default cost is 2^15')
  const prodHash = await prod.hash('correct horse battery')
  t.match(prodHash, /^scrypt\$32768\$8\$1\$/, 'stored with N = 2^15, r = 8, p = 1')
  t.match(await prod.dummyHash(), /^scrypt\$32768\$8\$1\$/, 'the unknown-user dummy hash has the same cost as real ones')
  t.throws(() => passwordHasher(14, 'production'), /below the production floor of 2\^15/, 'production refuses a cheaper hash')
  t.equal(passwordHasher(10, 'test').log2N, 10, 'outside production (tests) a cheaper cost is allowed')

  const cheap = passwordHasher(TEST_PASSWORD_HASH_COST, 'test')
  const cheapHash = await cheap.hash('correct horse battery')
  t.match(cheapHash, new RegExp(`^scrypt\\$${2 ** TEST_PASSWORD_HASH_COST}\\$`), 'a test app hashes with its own cost')
  t.match(await cheap.dummyHash(), new RegExp(`^scrypt\\$${2 ** TEST_PASSWORD_HASH_COST}\\$`), 'and so does its dummy hash')
  t.ok(await cheap.verify('correct horse battery', prodHash), 'a 2^15 hash verifies in an app hashing at another cost')
  t.ok(await prod.verify('correct horse battery', cheapHash), 'and the other way round')
  t.notOk(await verifyPassword('correct horse battery!', prodHash), 'a wrong password does not verify')
  t.notOk(await verifyPassword('correct horse battery!', cheapHash), 'whatever the cost')
})

t.test('register, login, me, refresh rotation, reuse detection, logout', async (t) => {
  const g = await shared()
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
  t.same(
    Object.keys(payload).sort(),
    ['exp', 'iat', 'jti', 'sid', 'sub'],
    'the token carries only the user id, its refresh session id, a unique id and its times',
  )
  t.match(payload, { sid: /^[0-9a-f-]{36}$/, jti: /^[0-9a-f-]{36}$/ }, 'session id and jti are opaque UUIDs (nothing personal)')
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
  t.ok(
    events.some((e) => e.event === 'refresh_reuse'),
    'the reuse is in the audit trail',
  )

  // not only the token rotated last: any earlier token of a session, presented again, revokes that session
  const cookieOf = (r: { setCookie: string[] }) => r.setCookie.map((c) => c.split(';')[0]!).find((c) => c.startsWith('lnm_refresh='))!
  const s0 = (await g.login(username, password)).cookie
  const s1r = await g.http('POST', '/api/auth/refresh', { cookie: s0 })
  t.equal(s1r.status, 200, 'second session: first rotation')
  const s2r = await g.http('POST', '/api/auth/refresh', { cookie: cookieOf(s1r) })
  t.equal(s2r.status, 200, 'second session: second rotation')
  const s2 = cookieOf(s2r)
  const old = await g.http('POST', '/api/auth/refresh', { cookie: s0 })
  t.equal(old.status, 401, 'a token two rotations old is refused')
  t.equal(
    (await g.http('POST', '/api/auth/refresh', { cookie: s2 })).status,
    401,
    'and its session is revoked: the newest token is dead too',
  )
  t.equal(
    (await g.app.prisma.authEvent.findMany({ where: { userId: u.userId, event: 'refresh_reuse' } })).length,
    2,
    'both reuses are in the audit trail',
  )

  const u2 = await g.login(username, password)
  const out = await g.http('POST', '/api/auth/logout', { token: u2.token, cookie: u2.cookie })
  t.equal(out.status, 200, 'logout')
  const dead = await g.http('GET', '/api/me', { token: u2.token })
  t.equal(dead.status, 401, 'the access token is dead after logout')
  const deadRefresh = await g.http('POST', '/api/auth/refresh', { cookie: u2.cookie })
  t.equal(deadRefresh.status, 401, 'the refresh session is dead after logout')
})

t.test('every auth route answers bad input with 4xx in the contract shape, never 500', async (t) => {
  const g = await shared()
  const { username } = await g.register(uniqueName('bob'), 'bobs password 1')
  const huge = 'x'.repeat(10 * 1024 * 1024)
  const cases: Array<{
    name: string
    method: string
    path: string
    body?: unknown
    raw?: string
    headers?: Record<string, string>
    token?: string
    expect: number
  }> = [
    { name: 'register: missing fields', method: 'POST', path: '/api/auth/register', body: {}, expect: 400 },
    { name: 'register: wrong types', method: 'POST', path: '/api/auth/register', body: { username: 42, password: ['a'] }, expect: 400 },
    {
      name: 'register: weak password',
      method: 'POST',
      path: '/api/auth/register',
      body: { username: uniqueName('c'), password: '12345678' },
      expect: 400,
    },
    {
      name: 'register: short password',
      method: 'POST',
      path: '/api/auth/register',
      body: { username: uniqueName('c'), password: 'abc' },
      expect: 400,
    },
    {
      name: 'register: SQL in username',
      method: 'POST',
      path: '/api/auth/register',
      body: { username: "x'; DROP TABLE users; --", password: 'a fine password' },
      expect: 400,
    },
    {
      name: 'register: HTML in username',
      method: 'POST',
      path: '/api/auth/register',
      body: { username: '<script>alert(1)</script>', password: 'a fine password' },
      expect: 400,
    },
    {
      name: 'register: extra fields',
      method: 'POST',
      path: '/api/auth/register',
      body: { username: uniqueName('c'), password: 'a fine password', admin: true },
      expect: 400,
    },
    {
      name: 'register: malformed JSON',
      method: 'POST',
      path: '/api/auth/register',
      raw: '{"username":',
      headers: { 'content-type': 'application/json' },
      expect: 400,
    },
    {
      name: 'register: 10 MB body',
      method: 'POST',
      path: '/api/auth/register',
      raw: JSON.stringify({ username: 'x', password: huge }),
      headers: { 'content-type': 'application/json' },
      expect: 413,
    },
    {
      name: 'register: not JSON',
      method: 'POST',
      path: '/api/auth/register',
      raw: 'username=a&password=b',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      expect: 415,
    },
    { name: 'login: missing fields', method: 'POST', path: '/api/auth/login', body: { username }, expect: 400 },
    {
      name: 'login: SQL string',
      method: 'POST',
      path: '/api/auth/login',
      body: { username: "' OR 1=1 --", password: "' OR 1=1 --" },
      expect: 401,
    },
    {
      name: 'login: wrong password',
      method: 'POST',
      path: '/api/auth/login',
      body: { username, password: 'not the password' },
      expect: 401,
    },
    {
      name: 'login: 10 MB body',
      method: 'POST',
      path: '/api/auth/login',
      raw: JSON.stringify({ username, password: huge }),
      headers: { 'content-type': 'application/json' },
      expect: 413,
    },
    { name: 'refresh: no cookie', method: 'POST', path: '/api/auth/refresh', expect: 401 },
    { name: 'refresh: forged cookie', method: 'POST', path: '/api/auth/refresh', headers: { cookie: 'lnm_refresh=forged' }, expect: 401 },
    { name: 'logout: no token', method: 'POST', path: '/api/auth/logout', expect: 401 },
    { name: 'me: forged token', method: 'GET', path: '/api/me', token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged', expect: 401 },
    {
      name: 'me: alg none token',
      method: 'GET',
      path: '/api/me',
      token: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'x', exp: 9e9 })).toString('base64url')}.`,
      expect: 401,
    },
    { name: 'me: garbage bearer', method: 'GET', path: '/api/me', headers: { authorization: 'Bearer' }, expect: 401 },
    { name: 'unknown route', method: 'GET', path: '/api/nope', expect: 404 },
    // NUL and other control characters: PostgreSQL refuses NUL in text, so these must never reach the database
    {
      name: 'login: NUL in username',
      method: 'POST',
      path: '/api/auth/login',
      body: { username: 'bob\u0000', password: 'whatever pw' },
      expect: 401,
    },
    {
      name: 'login: control chars in username',
      method: 'POST',
      path: '/api/auth/login',
      body: { username: '\u0001\r\n\u007f', password: 'whatever pw' },
      expect: 401,
    },
    {
      name: 'login: HTML in username',
      method: 'POST',
      path: '/api/auth/login',
      body: { username: '<img src=x onerror=alert(1)>', password: '<b>x</b>' },
      expect: 401,
    },
    {
      name: 'login: wrong types',
      method: 'POST',
      path: '/api/auth/login',
      body: { username: ['a'], password: { $ne: null } },
      expect: 400,
    },
    {
      name: 'login: JSON array body',
      method: 'POST',
      path: '/api/auth/login',
      raw: '[]',
      headers: { 'content-type': 'application/json' },
      expect: 400,
    },
    {
      name: 'login: JSON null body',
      method: 'POST',
      path: '/api/auth/login',
      raw: 'null',
      headers: { 'content-type': 'application/json' },
      expect: 400,
    },
    {
      name: 'register: NUL in username',
      method: 'POST',
      path: '/api/auth/register',
      body: { username: 'nul\u0000name', password: 'a fine password' },
      expect: 400,
    },
    {
      name: 'register: same name, other case',
      method: 'POST',
      path: '/api/auth/register',
      body: { username: username.toUpperCase(), password: 'a fine password' },
      expect: 409,
    },
    {
      name: 'me: token signed with another key',
      method: 'GET',
      path: '/api/me',
      token: hs256(
        { sub: '00000000-0000-4000-8000-000000000000', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 600 },
        'not-the-server-secret-0123456789abcdef',
      ),
      expect: 401,
    },
    {
      name: 'me: signed token, non-uuid subject',
      method: 'GET',
      path: '/api/me',
      token: g.app.jwt.sign({ sub: "x' OR 1=1 --" }),
      expect: 401,
    },
    {
      name: 'me: signed token, unknown user',
      method: 'GET',
      path: '/api/me',
      token: g.app.jwt.sign({ sub: '00000000-0000-4000-8000-000000000000' }),
      expect: 401,
    },
    { name: 'logout: forged token', method: 'POST', path: '/api/auth/logout', token: 'a.b.c', expect: 401 },
    {
      name: 'refresh: forged cookie naming a session',
      method: 'POST',
      path: '/api/auth/refresh',
      headers: { cookie: 'lnm_refresh=00000000-0000-4000-8000-000000000000.forged' },
      expect: 401,
    },
    {
      name: 'refresh: huge cookie',
      method: 'POST',
      path: '/api/auth/refresh',
      headers: { cookie: `lnm_refresh=${'A'.repeat(4000)}` },
      expect: 401,
    },
  ]
  for (const c of cases) {
    const r = await g.http(c.method, c.path, {
      body: c.body,
      ...(c.raw !== undefined && { rawBody: c.raw }),
      ...(c.headers !== undefined && { headers: c.headers }),
      ...(c.token !== undefined && { token: c.token }),
    })
    t.equal(r.status, c.expect, `${c.name} → ${c.expect}`)
    t.type(r.body?.error?.code, 'string', `${c.name}: error.code present`)
    t.type(r.body?.error?.message, 'string', `${c.name}: error.message present`)
  }
  const ok = await g.http('GET', '/health/live')
  t.equal(ok.status, 200, 'the server is still fine')
  t.notMatch(g.logs.text, /request failed/, 'no request ended in a 5xx')
  t.notMatch(g.logs.text, /audit write failed/, 'and every audit row (attacker-chosen usernames included) was written')
})

t.test('the same 401 for an unknown user and a wrong password', async (t) => {
  const g = await shared()
  const { username } = await g.register(uniqueName('carol'), 'carols password')
  const a = await g.http('POST', '/api/auth/login', { body: { username, password: 'wrong password!' } })
  const b = await g.http('POST', '/api/auth/login', { body: { username: uniqueName('nobody'), password: 'wrong password!' } })
  t.equal(a.status, 401)
  t.equal(b.status, 401)
  t.same(a.body, b.body, 'identical bodies')
})

t.test('an expired token is refused with token_expired', async (t) => {
  const g = await shared()
  const { username, password } = await g.register(uniqueName('dave'), 'daves password')
  const u = await g.login(username, password)
  const expired = g.app.jwt.sign({ sub: u.userId, iat: Math.floor(Date.now() / 1000) - 100, exp: Math.floor(Date.now() / 1000) - 10 })
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

  // register is limited per username as well, whatever the case of the name
  const name = uniqueName('gus')
  const regs: number[] = []
  for (let i = 0; i < 12; i++) {
    const variant = i % 2 ? name.toUpperCase() : name
    regs.push((await g.http('POST', '/api/auth/register', { body: { username: variant, password: `gus password ${i}` } })).status)
  }
  t.same(regs, [201, ...Array(9).fill(409), 429, 429], 'register: one 201, nine 409s, then 429 per username')

  const g2 = await startTestApp(t, { AUTH_RATE_LIMIT_IP_PER_MIN: '5' })
  const codes: number[] = []
  for (let i = 0; i < 8; i++)
    codes.push((await g2.http('POST', '/api/auth/login', { body: { username: `someone${i}`, password: 'whatever123' } })).status)
  t.same(codes, [401, 401, 401, 401, 401, 429, 429, 429], 'per-IP limit across usernames')
})

t.test('account deletion kills the tokens', async (t) => {
  const g = await shared()
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

t.test('live mode disables the public demo/demo login a demo run left in the database', async (t) => {
  const { rmSync } = await import('node:fs')
  const { buildApp } = await import('../app.ts')
  const { loadConfig } = await import('../config.ts')
  const { seedPGliteDataDir } = await import('./helpers/db.ts')
  const { LogCapture } = await import('./helpers/app.ts')
  const { testTmpDir } = await import('./helpers/tmp.ts')
  const dataDir = testTmpDir('lnm-gw-test-')
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  await seedPGliteDataDir(dataDir)
  const base = { NODE_ENV: 'test', DATA_DIR: dataDir, PORT: '0', SIM_PORT: '0', LOG_LEVEL: 'warn', MAX_EVENT_LOOP_DELAY_MS: '0' }
  const login = (app: Awaited<ReturnType<typeof buildApp>>) =>
    app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'demo', password: 'demo' } })

  // the production password cost (no option): the demo user's hash is a 2^15 one
  const demo = await buildApp(loadConfig(base), { logStream: new LogCapture() })
  await demo.ready()
  t.equal(demo.passwords.log2N, 15, 'an app built without the option hashes at 2^15')
  const demoUser = await demo.prisma.user.findUniqueOrThrow({ where: { username: 'demo' } })
  t.match(demoUser.passwordHash, /^scrypt\$32768\$/, 'the demo user is stored with a 2^15 hash')
  const d = await login(demo)
  t.equal(d.statusCode, 200, 'demo mode: demo/demo logs in')
  const refresh = d.cookies.find((c) => c.name === 'lnm_refresh')!.value
  const access = d.json().accessToken as string
  await demo.close()
  // the access token must be from an earlier second than the live start (token times are whole seconds)
  const { iat } = JSON.parse(Buffer.from(access.split('.')[1]!, 'base64url').toString()) as { iat: number }
  await until(() => Date.now() >= (iat + 1) * 1000, 3000, 'the second after the token was issued')

  // same database, now pointed at a (here unreachable) live exchange; hashing at the test cost, it still has to
  // verify the 2^15 demo hash to find the public demo password and disable it
  const live = await buildApp(loadConfig({ ...base, LNM_API_URL: 'http://127.0.0.1:9/v3' }), {
    logStream: new LogCapture(),
    passwordHashCost: TEST_PASSWORD_HASH_COST,
  })
  t.teardown(() => live.close())
  await live.ready()
  t.equal(live.config.mode, 'live', 'sanity: live mode')
  const l = await login(live)
  t.equal(l.statusCode, 401, 'live mode: demo/demo is refused')
  t.equal(l.json().error.code, 'invalid_credentials', 'with the ordinary bad-credentials answer')
  const r = await live.inject({ method: 'POST', url: '/api/auth/refresh', cookies: { lnm_refresh: refresh } })
  t.equal(r.statusCode, 401, 'the demo refresh session from the demo run is dead')
  const me = await live.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${access}` } })
  t.equal(me.statusCode, 401, 'so is its access token')
})

t.test('scale-out: with REDIS_URL the login limits are shared by every node', async (t) => {
  const { withRedis } = await import('./cluster/redis.ts')
  const redis = await withRedis(t)
  if (!redis) return
  const env = { REDIS_URL: `${redis.url}?prefix=${redis.prefix}`, AUTH_RATE_LIMIT_IP_PER_MIN: '5' }
  const nodes = [await startTestApp(t, env), await startTestApp(t, env)]
  const codes: number[] = []
  // a balancer spreads one client's attempts over both nodes
  for (let i = 0; i < 8; i++)
    codes.push((await nodes[i % 2]!.http('POST', '/api/auth/login', { body: { username: `spread${i}`, password: 'whatever123' } })).status)
  t.same(codes, [401, 401, 401, 401, 401, 429, 429, 429], 'one per-IP budget across the cluster, not one per node')
  const keys = await redis.admin.keys(`${redis.prefix}:rate-limit:*`)
  t.ok(keys.length > 0, 'the counters live in Redis under the deployment prefix')
})

t.test('tabs refreshing at the same moment keep the session; a reuse after the grace window still revokes it', async (t) => {
  const graceMs = 600
  const g = await startTestApp(t, { REFRESH_REUSE_GRACE_MS: String(graceMs) })
  const { username, password } = await g.register()
  const u = await g.login(username, password)
  const cookieOf = (r: { setCookie: string[] }) => r.setCookie.map((c) => c.split(';')[0]!).find((c) => c.startsWith('lnm_refresh='))
  const both = await Promise.all([0, 1, 2].map(() => g.http('POST', '/api/auth/refresh', { cookie: u.cookie })))
  t.same(
    both.map((r) => r.status),
    [200, 200, 200],
    'three tabs refreshing with the same cookie all get an access token',
  )
  const newCookies = both.map(cookieOf).filter(Boolean)
  t.equal(newCookies.length, 1, 'exactly one of them rotated the refresh token (and set the new cookie)')
  const me = await g.http('GET', '/api/me', { token: both[2]!.body.accessToken })
  t.equal(me.status, 200, 'the grace answer is a working access token')
  const next = await g.http('POST', '/api/auth/refresh', { cookie: newCookies[0]! })
  t.equal(next.status, 200, 'the session goes on with the newest cookie')
  const latest = cookieOf(next)!
  const rotatedBy = Date.now() // newCookies[0] was rotated before this
  await until(() => Date.now() > rotatedBy + graceMs + 50, 5000, 'the end of the grace window')
  const late = await g.http('POST', '/api/auth/refresh', { cookie: newCookies[0]! })
  t.equal(late.status, 401, 'the rotated token presented after the grace window is refused')
  t.equal((await g.http('POST', '/api/auth/refresh', { cookie: latest })).status, 401, 'and the session is revoked')
  const events = await g.app.prisma.authEvent.findMany({ where: { userId: u.userId } })
  t.ok(
    events.some((e) => e.event === 'refresh_grace'),
    'grace answers are audited',
  )
  t.ok(
    events.some((e) => e.event === 'refresh_reuse'),
    'the late reuse is audited as reuse',
  )
})
