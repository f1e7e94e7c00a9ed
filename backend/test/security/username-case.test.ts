/**
 * "Usernames are unique regardless of case" holds in the database itself: concurrent registrations of case
 * variants of one name give exactly one 201 and 409 for the rest, on the embedded database and on PostgreSQL.
 * The migration that adds the folded-name index also keeps working case variants an earlier race created.
 */
import t from 'tap'
import type { Test } from 'tap'
import { startTestApp, uniqueName } from '../helpers/app.ts'
import { withMigratedPostgres } from '../helpers/db.ts'

async function race(t: Test, env: Record<string, string>) {
  const g = await startTestApp(t, { LOG_LEVEL: 'warn', ...env })
  for (let round = 0; round < 3; round++) {
    const base = uniqueName('case')
    const variants = [
      base,
      base.toUpperCase(),
      base[0]!.toUpperCase() + base.slice(1),
      base.replace(/e/g, 'E'),
      base.replace(/a/g, 'A').toUpperCase(),
    ]
    const answers = await Promise.all(
      variants.map((username) => g.http('POST', '/api/auth/register', { body: { username, password: `a long password ${round}` } })),
    )
    const statuses = answers.map((a) => a.status).sort()
    t.same(
      statuses,
      [201, 409, 409, 409, 409],
      `round ${round}: exactly one of ${variants.length} concurrent case variants is created (${statuses.join(',')})`,
    )
    t.ok(
      answers.filter((a) => a.status === 409).every((a) => a.body?.error?.code === 'username_taken'),
      'the others get username_taken',
    )
    const n = await g.app.prisma.$queryRaw<Array<{ n: bigint }>>`SELECT count(*) AS n FROM users WHERE lower(username) = lower(${base})`
    t.equal(Number(n[0]!.n), 1, 'one row in the database')
  }
  // the database refuses a case variant even when the application's check is bypassed
  const name = uniqueName('direct')
  await g.app.prisma.user.create({ data: { username: name, passwordHash: 'x' } })
  await t.rejects(
    g.app.prisma.user.create({ data: { username: name.toUpperCase(), passwordHash: 'x' } }),
    { code: 'P2002' },
    'a direct insert of a case variant violates the unique index (P2002)',
  )
}

t.test('embedded database (PGlite)', async (t) => {
  await race(t, {})
})

t.test('PostgreSQL', async (t) => {
  const url = await withMigratedPostgres(t)
  if (!url) return
  await race(t, { DATABASE_URL: url })
})
