import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startSimulator } from '../../simulator/index.ts'
import { call, testAccounts } from './helpers.ts'

t.test('authenticated: 5 req/s per key, then 429 with Retry-After and X-Ratelimit-*', async (t) => {
  const sim = await startSimulator({ accounts: testAccounts(), tickMs: 3_600_000 })
  t.teardown(() => sim.close())
  const alice = sim.accounts[0]!
  const bob = sim.accounts[1]!
  const burst = []
  for (let i = 0; i < 6; i++) burst.push(await call(sim, alice, 'GET', '/account'))
  t.same(
    burst.slice(0, 5).map((r) => r.status),
    [200, 200, 200, 200, 200],
    'the first 5 pass',
  )
  t.equal(burst[0]!.headers['x-ratelimit-remaining'], '4', 'successful responses carry X-Ratelimit-Remaining')
  const limited = burst[5]!
  t.equal(limited.status, 429, 'the 6th within a second is limited')
  t.same(limited.json, { code: 'rateLimited', message: 'Too Many Requests' }, '429 body')
  t.equal(limited.headers['retry-after'], '1', 'Retry-After in seconds')
  t.equal(limited.headers['x-ratelimit-remaining'], '0', 'nothing remaining')
  const reset = Number(limited.headers['x-ratelimit-reset'])
  t.ok(reset > Date.now() - 50 && reset <= Date.now() + 1000, 'X-Ratelimit-Reset is an epoch-ms instant within the next second')
  t.equal((await call(sim, bob, 'GET', '/account')).status, 200, 'the limit is per key: another key still passes')
  await sleep(Math.max(0, reset - Date.now()) + 20) // waits out the window: a token back at the announced reset is the point
  t.equal((await call(sim, alice, 'GET', '/account')).status, 200, 'a token is back at X-Ratelimit-Reset')
})

t.test('public: 1 req/s per IP; configurable', async (t) => {
  const sim = await startSimulator({ accounts: testAccounts(), tickMs: 3_600_000 })
  t.teardown(() => sim.close())
  t.equal((await call(sim, undefined, 'GET', '/futures/ticker')).status, 200, 'first public request passes')
  const second = await call(sim, undefined, 'GET', '/ping')
  t.equal(second.status, 429, 'second public request in the same second → 429')
  t.ok(Number(second.headers['retry-after']) >= 1, 'Retry-After present')

  const fast = await startSimulator({ accounts: testAccounts(), tickMs: 3_600_000, rateLimit: { publicPerSec: 20, authPerSec: 50 } })
  t.teardown(() => fast.close())
  const statuses = []
  for (let i = 0; i < 20; i++) statuses.push((await call(fast, undefined, 'GET', '/ping')).status)
  t.ok(
    statuses.every((s) => s === 200),
    'opts.rateLimit.publicPerSec raises the public limit',
  )
})
