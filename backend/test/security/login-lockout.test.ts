/**
 * Wrong passwords sent from one address cannot lock the owner out from another: login attempts are limited per
 * (username, address), and across addresses they are slowed down, never refused. With REDIS_URL the counters live
 * in Redis under readable keys.
 */
import t from 'tap'
import { request } from 'node:http'
import { startTestApp, uniqueName } from '../helpers/app.ts'

/** POST /api/auth/login from a chosen loopback source address */
function loginFrom(baseUrl: string, localAddress: string, username: string, password: string): Promise<{ status: number; ms: number }> {
  const u = new URL('/api/auth/login', baseUrl)
  const body = JSON.stringify({ username, password })
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        localAddress,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - started }))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

t.test('an attacker cannot lock the owner out', async (t) => {
  const g = await startTestApp(t, {
    AUTH_RATE_LIMIT_USER_PER_MIN: '5',
    AUTH_SLOWDOWN_USER_PER_MIN: '8',
    AUTH_RATE_LIMIT_IP_PER_MIN: '1000',
    LOG_LEVEL: 'warn',
  })
  const { username, password } = await g.register(uniqueName('owner'), 'the owners password')

  const attacker: number[] = []
  for (let i = 0; i < 10; i++) attacker.push((await loginFrom(g.baseUrl, '127.0.0.2', username, `guess ${i}`)).status)
  t.same(attacker, [401, 401, 401, 401, 401, 429, 429, 429, 429, 429], 'one address gets 5 tries for this username, then 429')
  const right = await loginFrom(g.baseUrl, '127.0.0.2', username, password)
  t.equal(right.status, 429, 'even with the right password from that address (no oracle)')

  const owner = await loginFrom(g.baseUrl, '127.0.0.1', username, password)
  t.equal(owner.status, 200, 'the owner logs in from another address')
  const caseVariant = await loginFrom(g.baseUrl, '127.0.0.3', username.toUpperCase(), 'guess x')
  t.equal(caseVariant.status, 401, 'a third address has its own budget (a case variant counts for the same username)')

  // attempts from everywhere past AUTH_SLOWDOWN_USER_PER_MIN=8 are slowed down, 250 ms per extra attempt
  for (let i = 0; i < 2; i++) await loginFrom(g.baseUrl, '127.0.0.4', username, `spread ${i}`)
  const slowed = await loginFrom(g.baseUrl, '127.0.0.1', username, password)
  t.equal(slowed.status, 200, 'the owner is still let in')
  // its attempt is the 10th for the username (429s are refused before they count): 2 over the 8 → 500 ms
  t.ok(slowed.ms >= 490, `but slowed down like everyone while the username is under attack (${slowed.ms} ms)`)
})

t.test('scale-out: readable counter keys in Redis', async (t) => {
  const { withRedis } = await import('../cluster/redis.ts')
  const redis = await withRedis(t)
  if (!redis) return
  const g = await startTestApp(t, { REDIS_URL: `${redis.url}?prefix=${redis.prefix}`, LOG_LEVEL: 'warn' })
  const name = uniqueName('keys')
  await loginFrom(g.baseUrl, '127.0.0.1', name, 'some password')
  await g.http('POST', '/api/auth/register', { body: { username: uniqueName('keys'), password: 'a long password' } })
  const keys = (await redis.admin.keys(`${redis.prefix}:auth:*`)).sort()
  t.ok(keys.includes(`${redis.prefix}:auth:login:user-addr:${name}|127.0.0.1`), `per (username, address) key (${keys.join(', ')})`)
  t.ok(keys.includes(`${redis.prefix}:auth:login:user:${name}`), 'per-username slow-down key')
  t.ok(
    keys.some((k) => k.startsWith(`${redis.prefix}:auth:register:user:`)),
    'per-username register key',
  )
  t.notOk((await redis.admin.keys(`${redis.prefix}:*undefined*`)).length, 'no key named undefinedundefined any more')
})
