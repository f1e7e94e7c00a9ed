/**
 * GET/PUT/DELETE /api/alerts on a real gateway (embedded PGlite; PostgreSQL too when reachable): defaults, round trip,
 * each validation error in words, auth, isolation between users, optimistic concurrency, persistence across a
 * restart on the same DATA_DIR, and a second login ("another device") reading the same settings.
 */
import t from 'tap'
import { rmSync } from 'node:fs'
import { startTestApp, type TestApp } from '../helpers/app.ts'
import { seedPGliteDataDir, withMigratedPostgres } from '../helpers/db.ts'
import { testTmpDir } from '../helpers/tmp.ts'

const settings = (over: Record<string, unknown> = {}) => ({
  liquidationPct: 7.5,
  notify: { connectionLoss: true, exchangeDown: false, fills: true, closes: false, liquidations: true },
  browserNotifications: true,
  priceLevels: [
    { id: 'lvl-1', price: 101_000, direction: 'above', note: 'breakout' },
    { id: 'lvl-2', price: 95_000.5, direction: 'below', triggeredAt: '2026-11-30T12:00:00.000Z' },
  ],
  version: 0,
  ...over,
})

/**
 * One gateway for the subtests that work with users of their own (the PUT rate limit is per user): the
 * restart and PostgreSQL subtests build their own.
 */
let sharedApp: Promise<TestApp> | undefined
const shared = () => (sharedApp ??= startTestApp(t))

async function signedIn(g: TestApp) {
  const u = await g.register()
  return g.login(u.username, u.password)
}

t.test('defaults, round trip, versions, DELETE', async (t) => {
  const g = await shared()
  const u = await signedIn(g)

  const first = await g.http('GET', '/api/alerts', { token: u.token })
  t.equal(first.status, 200)
  t.same(
    first.body,
    {
      liquidationPct: 10,
      notify: { connectionLoss: true, exchangeDown: true, fills: true, closes: true, liquidations: true },
      browserNotifications: false,
      priceLevels: [],
      version: 0,
      updatedAt: null,
    },
    'nothing saved: the defaults, version 0',
  )

  const put = await g.http('PUT', '/api/alerts', { token: u.token, body: settings() })
  t.equal(put.status, 200, put.text)
  t.equal(put.body.version, 1, 'first save: version 1')
  t.match(put.body.updatedAt, /^\d{4}-\d\d-\d\dT/, 'updatedAt set')
  const read = await g.http('GET', '/api/alerts', { token: u.token })
  t.same(
    read.body.priceLevels,
    [
      { id: 'lvl-1', price: 101_000, direction: 'above', note: 'breakout', triggeredAt: null },
      { id: 'lvl-2', price: 95_000.5, direction: 'below', triggeredAt: '2026-11-30T12:00:00.000Z' },
    ],
    'price levels round-trip (triggeredAt null until crossed)',
  )
  t.equal(read.body.liquidationPct, 7.5)
  t.same(read.body.notify, settings().notify)
  t.equal(read.body.browserNotifications, true)
  t.equal(read.body.version, 1)

  const second = await g.http('PUT', '/api/alerts', { token: u.token, body: settings({ version: 1, liquidationPct: 12, priceLevels: [] }) })
  t.equal(second.status, 200)
  t.equal(second.body.version, 2, 'each save increments the version')
  t.same(second.body.priceLevels, [], 'full replace: the levels are gone')

  // another device still holding version 1 must not overwrite version 2
  const stale = await g.http('PUT', '/api/alerts', { token: u.token, body: settings({ version: 1, liquidationPct: 3 }) })
  t.equal(stale.status, 409, 'a stale version is refused')
  t.equal(stale.body.error.code, 'version_conflict')
  t.match(stale.body.error.message, /changed elsewhere/)
  t.equal((await g.http('GET', '/api/alerts', { token: u.token })).body.liquidationPct, 12, 'the stale write lost nothing')
  const staleCreate = await g.http('PUT', '/api/alerts', { token: u.token, body: settings({ version: 0 }) })
  t.equal(staleCreate.status, 409, 'version 0 (first save) when a row exists is a conflict too')

  const del = await g.http('DELETE', '/api/alerts', { token: u.token })
  t.same(del.body, { ok: true })
  const after = await g.http('GET', '/api/alerts', { token: u.token })
  t.equal(after.body.version, 0, 'after DELETE: the defaults again')
  t.equal(after.body.liquidationPct, 10)
})

t.test('validation: every bad field is refused with a sentence naming it, and nothing is stored', async (t) => {
  const g = await shared()
  const u = await signedIn(g)
  await g.http('PUT', '/api/alerts', { token: u.token, body: settings() })
  const level = { id: 'a', price: 100, direction: 'above' }
  const many = Array.from({ length: 21 }, (_, i) => ({ ...level, id: `l${i}` }))
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['threshold 0', { liquidationPct: 0 }, /^The liquidation alert distance must be more than 0\.$/],
    ['threshold negative', { liquidationPct: -5 }, /^The liquidation alert distance must be more than 0\.$/],
    ['threshold above 90', { liquidationPct: 100.5 }, /^The liquidation alert distance must be at most 90\.$/],
    ['threshold not a number', { liquidationPct: 'ten' }, /^The liquidation alert distance must be a number\.$/],
    ['price 0', { priceLevels: [{ ...level, price: 0 }] }, /^The price of price level 1 must be more than 0\.$/],
    ['price negative', { priceLevels: [level, { ...level, id: 'b', price: -1 }] }, /^The price of price level 2 must be more than 0\.$/],
    ['price absurd', { priceLevels: [{ ...level, price: 1e12 }] }, /^The price of price level 1 must be at most 100000000\.$/],
    [
      'direction',
      { priceLevels: [{ ...level, direction: 'sideways' }] },
      /^The direction of price level 1 has a value that is not allowed\.$/,
    ],
    ['missing price', { priceLevels: [{ id: 'a', direction: 'above' }] }, /^The price of price level 1 is required\.$/],
    ['too many levels', { priceLevels: many }, /^The list of price levels may hold at most 20 entries\.$/],
    ['duplicate ids', { priceLevels: [level, { ...level, price: 200 }] }, /^Price level 2 has the same id as an earlier one/],
    ['note too long', { priceLevels: [{ ...level, note: 'x'.repeat(81) }] }, /^The note of price level 1 must be at most 80 characters\.$/],
    [
      'bad triggeredAt',
      { priceLevels: [{ ...level, triggeredAt: 'yesterday' }] },
      /^The triggered time of price level 1 must be a date and time/,
    ],
    ['notify flag not boolean', { notify: { ...settings().notify, fills: 'yes' } }, /^The fills choice must be true or false\.$/],
    [
      'notify flag missing',
      { notify: { connectionLoss: true, exchangeDown: true, fills: true, closes: true } },
      /^The liquidations choice is required\.$/,
    ],
    ['unknown field', { sound: 'loud' }, /^Unknown field "sound"\.$/],
    ['version missing', { version: undefined }, /^Version is required\.$/],
    ['version negative', { version: -1 }, /^Version must be at least 0\.$/],
  ]
  for (const [name, over, message] of cases) {
    const body = JSON.parse(JSON.stringify(settings({ version: 1, ...over })))
    const r = await g.http('PUT', '/api/alerts', { token: u.token, body })
    t.equal(r.status, 400, `${name}: 400`)
    t.equal(r.body.error?.code, 'validation_failed', `${name}: validation_failed`)
    t.match(r.body.error?.message, message, `${name}: "${r.body.error?.message}"`)
  }
  const kept = await g.http('GET', '/api/alerts', { token: u.token })
  t.equal(kept.body.version, 1, 'no bad request changed the stored settings')
  t.equal(kept.body.liquidationPct, 7.5)
  const twenty = await g.http('PUT', '/api/alerts', { token: u.token, body: settings({ version: 1, priceLevels: many.slice(0, 20) }) })
  t.equal(twenty.status, 200, 'exactly 20 levels are accepted')
})

t.test('auth and isolation: no token → 401, each user sees and writes only their own settings', async (t) => {
  const g = await shared()
  t.equal((await g.http('GET', '/api/alerts')).status, 401, 'GET without a token')
  t.equal((await g.http('PUT', '/api/alerts', { body: settings() })).status, 401, 'PUT without a token')
  t.equal((await g.http('DELETE', '/api/alerts')).status, 401, 'DELETE without a token')
  t.equal((await g.http('GET', '/api/alerts', { token: 'not-a-token' })).status, 401, 'a bad token')

  const alice = await signedIn(g)
  const bob = await signedIn(g)
  t.equal((await g.http('PUT', '/api/alerts', { token: alice.token, body: settings() })).status, 200)
  const bobView = await g.http('GET', '/api/alerts', { token: bob.token })
  t.equal(bobView.body.version, 0, "bob does not see alice's settings")
  t.same(bobView.body.priceLevels, [])
  t.equal(
    (await g.http('PUT', '/api/alerts', { token: bob.token, body: settings({ liquidationPct: 50, priceLevels: [] }) })).status,
    200,
    'bob saves his own',
  )
  t.equal((await g.http('DELETE', '/api/alerts', { token: bob.token })).status, 200, 'bob deletes his own')
  const aliceView = await g.http('GET', '/api/alerts', { token: alice.token })
  t.equal(aliceView.body.liquidationPct, 7.5, "alice's settings untouched by bob's PUT and DELETE")
  t.equal(aliceView.body.priceLevels.length, 2)
})

t.test('PUT is rate-limited like other writes', async (t) => {
  const g = await shared()
  const u = await signedIn(g)
  const statuses: number[] = []
  for (let i = 0; i < 62; i++) statuses.push((await g.http('PUT', '/api/alerts', { token: u.token, body: settings() })).status)
  t.equal(statuses[0], 200, 'the first save goes through')
  t.ok(
    statuses.slice(1, 60).every((s) => s === 409),
    'then the same first save (version 0) again is a conflict',
  )
  t.equal(statuses.at(-1), 429, 'beyond 60 writes a minute: 429')
  const other = await signedIn(g)
  t.equal(
    (await g.http('PUT', '/api/alerts', { token: other.token, body: settings() })).status,
    200,
    'the limit is per user: another user from the same address still saves',
  )
})

t.test('settings survive a gateway restart on the same DATA_DIR, and a second login (another device) reads them', async (t) => {
  const dataDir = testTmpDir('lnm-alerts-restart-')
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  await seedPGliteDataDir(dataDir)
  const g1 = await startTestApp(t, { DATA_DIR: dataDir })
  const u = await g1.register()
  const device1 = await g1.login(u.username, u.password)
  t.equal((await g1.http('PUT', '/api/alerts', { token: device1.token, body: settings() })).status, 200)
  const device2 = await g1.login(u.username, u.password)
  const seen = await g1.http('GET', '/api/alerts', { token: device2.token })
  t.equal(seen.body.version, 1, 'another login of the same user reads the saved settings')
  t.same(
    seen.body.priceLevels.map((l: { id: string }) => l.id),
    ['lvl-1', 'lvl-2'],
  )
  await g1.close()

  const g2 = await startTestApp(t, { DATA_DIR: dataDir })
  const again = await g2.login(u.username, u.password)
  const after = await g2.http('GET', '/api/alerts', { token: again.token })
  t.equal(after.status, 200)
  t.equal(after.body.version, 1, 'after a restart: the same version')
  t.equal(after.body.liquidationPct, 7.5, 'and the same settings')
  t.same(after.body.notify, settings().notify)
  t.equal(after.body.priceLevels[0].note, 'breakout')
})

t.test('real PostgreSQL: round trip and version conflict', async (t) => {
  const url = await withMigratedPostgres(t)
  if (!url) return
  const g = await startTestApp(t, { DATABASE_URL: url })
  const u = await signedIn(g)
  const put = await g.http('PUT', '/api/alerts', { token: u.token, body: settings() })
  t.equal(put.status, 200, put.text)
  t.same((await g.http('GET', '/api/alerts', { token: u.token })).body.priceLevels[1].triggeredAt, '2026-11-30T12:00:00.000Z')
  t.equal(
    (await g.http('PUT', '/api/alerts', { token: u.token, body: settings({ version: 0 }) })).status,
    409,
    'a second first-save conflicts',
  )
  t.equal((await g.http('PUT', '/api/alerts', { token: u.token, body: settings({ version: 1, liquidationPct: 20 }) })).body.version, 2)
})
