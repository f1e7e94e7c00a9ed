import t from 'tap'
import { startTestApp } from './helpers/app.ts'

t.test('health and metrics', async (t) => {
  const g = await startTestApp(t)
  const live = await g.http('GET', '/health/live')
  t.equal(live.status, 200, 'live')
  const ready = await g.http('GET', '/health/ready')
  t.equal(ready.status, 200, 'ready: database reachable')
  t.equal(ready.body.database, 'ok')
  t.equal(ready.body.databaseKind, 'pglite', 'embedded database by default')
  const m = await g.http('GET', '/metrics')
  t.equal(m.status, 200, 'metrics open without METRICS_TOKEN')
  t.match(m.text, /lnm_gateway_process_resident_memory_bytes/, 'Node default metrics with the prefix')
  t.match(m.text, /lnm_gateway_ws_connections_open/, 'gateway metrics')
  t.match(m.headers.get('content-type') ?? '', /text\/plain/, 'Prometheus text format')
  const sec = await g.http('GET', '/health/live')
  t.ok(sec.headers.get('x-content-type-options'), 'helmet headers present')
  t.equal(sec.headers.get('access-control-allow-origin'), null, 'no CORS by default')
})

t.test('METRICS_TOKEN protects /metrics', async (t) => {
  const g = await startTestApp(t, { METRICS_TOKEN: 'scrape-me-please' })
  t.equal((await g.http('GET', '/metrics')).status, 401, 'no token → 401')
  t.equal((await g.http('GET', '/metrics', { token: 'wrong-token-value' })).status, 401, 'wrong token → 401')
  const ok = await g.http('GET', '/metrics', { token: 'scrape-me-please' })
  t.equal(ok.status, 200, 'right token → 200')
  t.notOk(ok.text.includes('scrape-me-please'), 'the token is not a label')
})

t.test('no password, token, cookie or secret appears in the logs', async (t) => {
  const g = await startTestApp(t, { LOG_LEVEL: 'trace' })
  const password = 'very secret password 42'
  const { username } = await g.register(undefined, password)
  const u = await g.login(username, password)
  await g.http('POST', '/api/auth/login', { body: { username, password: 'wrong secret guess' } })
  await g.http('GET', '/api/me', { token: u.token, cookie: u.cookie })
  await g.http('POST', '/api/auth/refresh', { cookie: u.cookie })
  const acc = g.sim.accounts[0]!
  await g.http('PUT', '/api/credentials', { token: u.token, body: { apiKey: acc.key, apiSecret: acc.secret, passphrase: acc.passphrase } })
  await g.http('PUT', '/api/credentials', { token: u.token, body: { apiKey: acc.key, apiSecret: 'WRONG-secret-xyz', passphrase: 'WRONG-pass-xyz' } })
  await g.http('GET', '/api/dashboard', { token: u.token })
  await new Promise((r) => setTimeout(r, 300))
  const text = g.logs.text
  t.ok(text.length > 1000, 'the test produced logs to check')
  const refresh = u.cookie.split('=')[1]!
  for (const [name, value] of Object.entries({ password, wrongPassword: 'wrong secret guess', token: u.token, tokenSig: u.token.split('.')[2]!, refresh, secret: acc.secret, passphrase: acc.passphrase, wrongSecret: 'WRONG-secret-xyz', wrongPass: 'WRONG-pass-xyz', jwtSecret: g.config.jwtSecret, credKey: g.config.credentialsKey.key.toString('base64') })) {
    t.notOk(text.includes(value), `${name} is not in the logs`)
  }
  const m = await g.http('GET', '/metrics')
  t.notOk(m.text.includes(acc.key) || m.text.includes(acc.secret) || m.text.includes(u.userId), 'no key, secret or user id in metric labels')
})

t.test('database gone: readiness says so, and a 5xx hides its details', async (t) => {
  const g = await startTestApp(t)
  const { username, password } = await g.register()
  const u = await g.login(username, password)
  await g.app.db.close()
  const ready = await g.http('GET', '/health/ready')
  t.equal(ready.status, 503, 'not ready without the database')
  t.equal(ready.body.database, 'down')
  const me = await g.http('GET', '/api/me', { token: u.token })
  t.ok(me.status >= 500 || me.status === 401, `a request needing the database fails (${me.status})`)
  if (me.status >= 500) {
    t.same(me.body, { error: { code: 'internal', message: 'Internal Server Error' } }, 'the generic 5xx body, no details')
    t.match(g.logs.text, /request failed/, 'the details are logged instead')
  }
  const live = await g.http('GET', '/health/live')
  t.equal(live.status, 200, 'still alive')
})
