/**
 * The shared rate limits on Redis (REDIS_URL): sensible key names, and while Redis does not answer (hung, then
 * gone) login answers 503 `rate_limit_unavailable` at once with a clear message, not a 500 — and works again
 * once Redis is back. Uses a redis-server of the test's own, which it stalls and kills.
 */
import t from 'tap'
import { startTestApp } from '../helpers/app.ts'
import { withOwnRedis } from './redis.ts'

t.test('rate-limit keys are named sensibly; login answers 503 while Redis hangs or is gone', async (t) => {
  const redis = await withOwnRedis(t)
  if (!redis) return
  const g = await startTestApp(t, {
    REDIS_URL: `${redis.url}?prefix=${redis.prefix}`,
    REDIS_LEASE_MS: '1000',
    SHUTDOWN_DRAIN_MS: '100',
    LOG_LEVEL: 'warn',
  })
  const { username, password } = await g.register()
  await g.login(username, password)
  const keys = [...(await redis.admin.keys(`${redis.prefix}:rate-limit:*`)), ...(await redis.admin.keys(`${redis.prefix}:auth:*`))].sort()
  t.ok(
    keys.some((k) => k.startsWith(`${redis.prefix}:auth:login:user-addr:${username.toLowerCase()}|`)),
    `the login counter per (username, address) is <prefix>:auth:login:user-addr:<name>|<address> (${keys.join(', ')})`,
  )
  t.ok(
    keys.some((k) => k === `${redis.prefix}:rate-limit:POST:/api/auth/login:127.0.0.1`),
    'a route counter is <prefix>:rate-limit:<METHOD>:<url>:<ip>',
  )
  t.notOk(
    keys.some((k) => k.includes('undefined')),
    'no "undefined" in any key name',
  )

  const login = () => g.http('POST', '/api/auth/login', { body: { username, password } })
  redis.stall()
  try {
    const t0 = Date.now()
    const r = await login()
    const took = Date.now() - t0
    t.equal(r.status, 503, 'Redis hung: login answers 503')
    t.equal(r.body.error.code, 'rate_limit_unavailable', 'with its own code')
    t.match(r.body.error.message, /rate-limit store \(Redis\) is not answering/, 'and a message saying what is wrong')
    t.equal(r.headers.get('retry-after'), '5', 'and Retry-After')
    t.ok(took < 3000, `without hanging (${took} ms)`)
  } finally {
    redis.resume()
  }
  const back = await login()
  t.equal(back.status, 200, 'Redis answering again: login works')

  await redis.kill()
  const t1 = Date.now()
  const gone = await login()
  t.equal(gone.status, 503, 'Redis gone: login answers 503')
  t.equal(gone.body.error.code, 'rate_limit_unavailable', 'with the same code')
  t.ok(Date.now() - t1 < 3000, `at once (${Date.now() - t1} ms)`)
  t.notMatch(g.logs.text, new RegExp(password), 'the password is never logged')
})
