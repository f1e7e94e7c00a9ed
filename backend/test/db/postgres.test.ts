import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { loadConfig } from '../../config.ts'
import { migrate, openDatabase } from '../../db/index.ts'
import { MIGRATIONS_DIR } from '../../db/schema-engine.ts'
import { withFreshPostgres } from '../helpers/db.ts'
import { crudAllModels } from './crud.ts'

const migrationNames = readdirSync(MIGRATIONS_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort()
const tmp = mkdtempSync(join(tmpdir(), 'lnm-db-pg-'))
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

t.test('real PostgreSQL: migrate, record, CRUD, restart, no-op reapply', async (t) => {
  const url = await withFreshPostgres(t)
  if (!url) return
  const config = loadConfig({ DATA_DIR: tmp, NODE_ENV: 'test', DATABASE_URL: url })

  const started = performance.now()
  const db = await openDatabase(config)
  t.comment(`open+migrate PostgreSQL, fresh database: ${Math.round(performance.now() - started)} ms`)
  t.equal(db.kind, 'postgres', 'DATABASE_URL → PostgreSQL')
  t.same(db.appliedMigrations, migrationNames, 'every migration applied on a fresh database')
  t.equal(await db.ping(), true, 'ping answers')

  // check the bookkeeping with a plain client: exactly what `prisma migrate deploy` reads
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  t.teardown(() => c.end())
  const rows = (
    await c.query<{ migration_name: string; checksum: string; finished_at: Date | null; applied_steps_count: number }>(
      'SELECT migration_name, checksum, finished_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name',
    )
  ).rows
  t.same(
    rows.map((r) => r.migration_name),
    migrationNames,
    '_prisma_migrations lists every migration',
  )
  for (const r of rows) {
    const script = readFileSync(join(MIGRATIONS_DIR, r.migration_name, 'migration.sql'), 'utf8')
    t.equal(r.checksum, sha256(script), `${r.migration_name}: Prisma checksum (sha256 of migration.sql)`)
    t.ok(r.finished_at instanceof Date, `${r.migration_name}: finished`)
  }

  await crudAllModels(t, db.prisma, 'pg')
  await db.prisma.user.create({ data: { username: 'survivor', passwordHash: 'h' } })
  await db.close()
  t.equal(await db.ping(), false, 'ping is false once closed')

  const db2 = await openDatabase(config)
  t.teardown(() => db2.close())
  t.same(db2.appliedMigrations, [], 'reopen applies nothing')
  t.equal((await db2.prisma.user.findUnique({ where: { username: 'survivor' } }))?.username, 'survivor', 'user row kept across restart')
  const again = await migrate(config)
  t.same(again.applied, [], 'db:migrate on an up-to-date database is a no-op')
  t.equal(again.kind, 'postgres', 'db:migrate targets DATABASE_URL')
  t.equal(
    (await c.query('SELECT count(*)::int AS n FROM _prisma_migrations')).rows[0].n,
    migrationNames.length,
    'no duplicate migration rows',
  )
})

t.test('two gateways starting at once on a fresh database migrate it once', async (t) => {
  const url = await withFreshPostgres(t)
  if (!url) return
  const config = loadConfig({ DATA_DIR: tmp, NODE_ENV: 'test', DATABASE_URL: url })
  const [a, b] = await Promise.all([openDatabase(config), openDatabase(config)])
  t.teardown(async () => {
    await a.close()
    await b.close()
  })
  t.same([...a.appliedMigrations, ...b.appliedMigrations].sort(), migrationNames, 'each migration applied exactly once between them')
  t.equal(await a.prisma.user.count(), 0, 'both can query')
  t.equal(await b.prisma.user.count(), 0, 'both can query (second)')
})

t.test('an unreachable DATABASE_URL fails clearly without leaking the password', async (t) => {
  const config = loadConfig({ DATA_DIR: tmp, NODE_ENV: 'test', DATABASE_URL: 'postgres://someone:s3cretpw@127.0.0.1:1/nothing' })
  const err = await openDatabase(config).then(
    () => undefined,
    (e: Error) => e,
  )
  t.ok(err instanceof Error, 'open rejects')
  t.notMatch(err?.message ?? '', /s3cretpw/, 'the error message does not contain the password')
  t.match(err?.message ?? '', /127\.0\.0\.1:1/, 'the error message names the server')
})
