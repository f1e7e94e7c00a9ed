import t from 'tap'
import Fastify from 'fastify'
import WebSocket from 'ws'
import { connect } from 'node:net'
import { installErrorHandlers } from '../errors.ts'
import { loggerOptions, redactUrl } from '../logger.ts'
import { LogCapture, startTestApp, type TestApp } from './helpers/app.ts'
import { firstMessage, until } from './streaming/helpers.ts'

/**
 * Gateways shared by subtests that need no fresh state: one at LOG_LEVEL trace (health, the log checks, the
 * parser errors; each check of the logs looks for values only its own subtest sent), which the graceful-shutdown
 * subtest then shuts down (it runs last on that app), one with METRICS_TOKEN, whose database the database-gone
 * subtest then closes (it runs last on that app).
 */
let traceApp: Promise<TestApp> | undefined
const traced = () => (traceApp ??= startTestApp(t, { LOG_LEVEL: 'trace', SHUTDOWN_DRAIN_MS: '1000' }))
let tokenApp: Promise<TestApp> | undefined
const withMetricsToken = () => (tokenApp ??= startTestApp(t, { METRICS_TOKEN: 'scrape-me-please' }))
/**
 * The event-loop pressure subtest's own app. A 200 ms warm-up instead of 5 s: by its subtest the app has long
 * been listening, the start-up stall the warm-up covers is over.
 */
let pressureApp: Promise<TestApp> | undefined
const underPressure = () => (pressureApp ??= startTestApp(t, { MAX_EVENT_LOOP_DELAY_MS: '5' }, { pressureWarmupMs: 200 }))

// the three apps start together, now: much of a start waits on the file system, and the starts overlap (each
// subtest still awaits its app, and a failed start fails it there)
for (const app of [traced(), withMetricsToken(), underPressure()]) app.catch(() => {})

t.test('health and metrics', async (t) => {
  const g = await traced()
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
  const g = await withMetricsToken()
  t.equal((await g.http('GET', '/metrics')).status, 401, 'no token → 401')
  t.equal((await g.http('GET', '/metrics', { token: 'wrong-token-value' })).status, 401, 'wrong token → 401')
  t.equal((await g.http('GET', '/metrics', { token: 'scrape-me-pleasX' })).status, 401, 'wrong token of the same length → 401')
  const ok = await g.http('GET', '/metrics', { token: 'scrape-me-please' })
  t.equal(ok.status, 200, 'right token → 200')
  t.notOk(ok.text.includes('scrape-me-please'), 'the token is not a label')
})

const refreshOf = (cookie: string) => cookie.slice(cookie.indexOf('=') + 1)

t.test('no password, token, cookie or secret appears in the logs', async (t) => {
  const g = await traced()
  const password = 'very secret password 42'
  const { username } = await g.register(undefined, password)
  const u = await g.login(username, password)
  await g.http('POST', '/api/auth/login', { body: { username, password: 'wrong secret guess' } })
  await g.http('GET', '/api/me', { token: u.token, cookie: u.cookie })
  await g.http('POST', '/api/auth/refresh', { cookie: u.cookie })
  const acc = g.sim.accounts[0]!
  await g.http('PUT', '/api/credentials', { token: u.token, body: { apiKey: acc.key, apiSecret: acc.secret, passphrase: acc.passphrase } })
  await g.http('PUT', '/api/credentials', {
    token: u.token,
    body: { apiKey: acc.key, apiSecret: 'WRONG-secret-xyz', passphrase: 'WRONG-pass-xyz' },
  })
  await g.http('GET', '/api/dashboard', { token: u.token })
  // a careless client puts its token in the URL: it is refused, and the request log must not keep it
  const inUrl = await g.http('GET', `/ws?token=${encodeURIComponent(u.token)}`, {})
  t.ok(inUrl.status >= 400, `a token in the URL is refused (${inUrl.status})`)
  await g.http('GET', `/api/dashboard?access_token=${encodeURIComponent(u.token)}&x=1`)
  await g.http('GET', `/health/live?refresh_token=${encodeURIComponent(refreshOf(u.cookie))}&password=${encodeURIComponent(password)}`)
  // the last request's completion line is written once its response is sent: wait for it, not a fixed time
  const count = (msg: string) => g.logs.entries().filter((e) => e.msg === msg).length
  await until(() => count('request completed') >= count('incoming request'), 3000, 'every request logged as completed')
  const text = g.logs.text
  t.ok(text.length > 1000, 'the test produced logs to check')
  t.match(text, /"url":"\/api\/dashboard\?access_token=\[redacted\]&x=1"/, 'URLs are still logged, with the secret query values redacted')
  const refresh = refreshOf(u.cookie)
  for (const [name, value] of Object.entries({
    password,
    wrongPassword: 'wrong secret guess',
    token: u.token,
    tokenSig: u.token.split('.')[2]!,
    refresh,
    secret: acc.secret,
    passphrase: acc.passphrase,
    wrongSecret: 'WRONG-secret-xyz',
    wrongPass: 'WRONG-pass-xyz',
    jwtSecret: g.config.jwtSecret,
    credKey: g.config.credentialsKey.key.toString('base64'),
  })) {
    t.notOk(text.includes(value), `${name} is not in the logs`)
  }
  const m = await g.http('GET', '/metrics')
  t.notOk(
    m.text.includes(acc.key) || m.text.includes(acc.secret) || m.text.includes(u.userId),
    'no key, secret or user id in metric labels',
  )
})

t.test('database gone: readiness says so, and a 5xx hides its details', async (t) => {
  // the last subtest on this app: it closes the app's database
  const g = await withMetricsToken()
  const { username, password } = await g.register()
  const u = await g.login(username, password)
  // a token of the same session this node never verified: no 1 s positive-verification cache, the check needs the database
  const { sid } = g.app.jwt.decode<{ sid: string }>(u.token)!
  const fresh = g.app.authn.issueAccessToken(u.userId, sid).accessToken
  await g.app.db.close()
  const ready = await g.http('GET', '/health/ready')
  t.equal(ready.status, 503, 'not ready without the database')
  t.equal(ready.body.database, 'down')
  const me = await g.http('GET', '/api/me', { token: fresh })
  // a database outage is not "your token is invalid": a 401 would make every client throw its session away
  t.equal(me.status, 500, 'a request needing the database fails with a 5xx, not a 401')
  t.same(me.body, { error: { code: 'internal', message: 'Internal Server Error' } }, 'the generic 5xx body, no details')
  t.match(g.logs.text, /request failed/, 'the details are logged instead')
  const live = await g.http('GET', '/health/live')
  t.equal(live.status, 200, 'still alive')
})

t.test('redactUrl hides the values of sensitive query parameters only', async (t) => {
  t.equal(redactUrl('/api/me'), '/api/me', 'no query: unchanged')
  t.equal(redactUrl('/ws?token=abc.def.ghi'), '/ws?token=[redacted]', 'token')
  t.equal(redactUrl('/x?a=1&access_token=s3cr3t&b=2'), '/x?a=1&access_token=[redacted]&b=2', 'access_token among others')
  t.equal(redactUrl('/x?Pass%77ord=hunter2'), '/x?Pass%77ord=[redacted]', 'an encoded parameter name')
  t.equal(
    redactUrl('/x?apiSecret=a&passphrase=b&refresh_token=c'),
    '/x?apiSecret=[redacted]&passphrase=[redacted]&refresh_token=[redacted]',
    'secrets and passphrases',
  )
  t.equal(redactUrl('/x?page=2&%E0%A4%A=1'), '/x?page=2&%E0%A4%A=1', 'a malformed name does not throw')
})

t.test('the error handler: 5xx hidden, odd statuses treated as 5xx, secrets in nested log objects redacted', async (t) => {
  const logs = new LogCapture()
  const app = Fastify({ logger: loggerOptions('info', logs) })
  installErrorHandlers(app)
  app.get('/boom', async () => {
    throw Object.assign(new Error('db password=hunter2 at 10.0.0.1'), { statusCode: 200 })
  })
  app.get('/boom3xx', async () => {
    throw Object.assign(new Error('redirect internals'), { statusCode: 302 })
  })
  app.get('/nested', async (request) => {
    request.log.warn(
      {
        upstream: {
          headers: {
            authorization: 'Bearer nested-secret-1',
            cookie: 'lnm_refresh=nested-secret-2',
            'lnm-access-passphrase': 'nested-secret-3',
          },
        },
        creds: { apiSecret: 'nested-secret-4' },
        cfg: { jwtSecret: 'nested-secret-5' },
      },
      'upstream said no',
    )
    return { ok: true }
  })
  t.teardown(() => app.close())
  for (const path of ['/boom', '/boom3xx']) {
    const r = await app.inject({ method: 'GET', url: path })
    t.equal(r.statusCode, 500, `${path}: an error whose status is not an error status is a 500`)
    t.same(r.json(), { error: { code: 'internal', message: 'Internal Server Error' } }, `${path}: generic body, no details`)
  }
  await app.inject({ method: 'GET', url: '/nested' })
  t.match(logs.text, /hunter2/, 'the 5xx details are logged (operators need them)')
  for (let i = 1; i <= 5; i++) t.notMatch(logs.text, new RegExp(`nested-secret-${i}`), `nested secret ${i} is redacted`)
})

/** one raw HTTP exchange on a fresh connection: what node's parser refuses never reaches fastify's routes */
function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.end(request))
    let out = ''
    s.on('data', (d) => {
      out += d.toString()
    })
    s.on('close', () => resolve(out))
    s.on('error', (err) => (out ? resolve(out) : reject(err)))
  })
}

t.test('requests the HTTP parser refuses get the contract error shape, and their raw bytes are not logged', async (t) => {
  const g = await traced()
  const port = Number(new URL(g.baseUrl).port)
  const secret = 'raw-packet-bearer-secret-123'
  const bad = await rawHttp(
    port,
    `GET /health/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${secret}\r\nCookie: lnm_refresh=${secret}\r\nBroken header line\r\n\r\n`,
  )
  t.match(bad, /^HTTP\/1\.1 400 /, 'a malformed request → 400')
  t.same(
    JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4)),
    { error: { code: 'bad_request', message: 'Malformed HTTP request' } },
    'in the contract shape',
  )
  const big = await rawHttp(port, `GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
  t.match(big, /^HTTP\/1\.1 431 /, 'headers too large → 431')
  t.match(big, /"code":"headers_too_large"/, 'in the contract shape')
  // the client-error handler logs (at debug) before it answers: by the time both answers arrived, it has logged
  t.match(g.logs.text, /"code":"HPE_HEADER_OVERFLOW"/, 'the parser errors were logged (their code only)')
  t.notOk(g.logs.text.includes(secret), 'the raw request bytes (token, cookie) are not logged')
  t.notMatch(g.logs.text, /rawPacket/, 'not even as a byte array (the parser error carries the whole request)')
  t.equal((await g.http('GET', '/health/live')).status, 200, 'the server is fine')
})

t.test('during a graceful shutdown new requests get a 503 in the contract shape', async (t) => {
  // the last subtest on the traced app (its drain window is 1 s): it shuts the app down
  const g = await traced()
  const { username, password } = await g.register()
  const u = await g.login(username, password)
  // two open sockets: the drain spreads their closing over the 1 s window, so shutdown takes a while
  const sockets = [0, 1].map(() => new WebSocket(g.wsUrl, { headers: { authorization: `Bearer ${u.token}` } }))
  t.teardown(() => sockets.forEach((ws) => ws.terminate()))
  await Promise.all(sockets.map(firstMessage))
  const closed = g.close()
  // ask until the drain has begun (before it, the answer is a 200); a connection refused means the drain is over
  let r: Awaited<ReturnType<typeof g.http>> | undefined
  await until(async () => (r = await g.http('GET', '/health/live')).status !== 200, 3000, 'an answer other than 200 while draining')
  t.equal(r!.status, 503, 'a request arriving while the gateway drains is refused with 503')
  t.same(r!.body, { error: { code: 'unavailable', message: 'The server is shutting down; retry shortly' } }, 'in the contract error shape')
  await closed
})

t.test('under event-loop pressure the API sheds load but liveness and metrics still answer', async (t) => {
  // no wait for the end of the warm-up: the loop below blocks until a request is shed (warm-up over), at most 8 times
  const g = await underPressure()
  const seen = { live: [] as number[], metrics: [] as number[], api: [] as number[] }
  for (let i = 0; i < 8 && !seen.api.includes(503); i++) {
    const until = Date.now() + 400
    while (Date.now() < until) {
      /* block the event loop: what a real overload looks like to under-pressure */
    }
    const [live, metrics, api] = await Promise.all([
      g.http('GET', '/health/live'),
      g.http('GET', '/metrics'),
      g.http('GET', '/api/config/public'),
    ])
    seen.live.push(live.status)
    seen.metrics.push(metrics.status)
    seen.api.push(api.status)
    if (api.status === 503) t.equal(api.body?.error?.code, 'overloaded', 'the shed request says why, in the contract shape')
  }
  t.ok(seen.api.includes(503), `sanity: the pressure was detected and an API request was shed (${seen.api.join(',')})`)
  t.ok(
    seen.live.every((s) => s === 200),
    `/health/live answered 200 throughout (${seen.live.join(',')})`,
  )
  t.ok(
    seen.metrics.every((s) => s === 200),
    `/metrics answered 200 throughout (${seen.metrics.join(',')})`,
  )
})
