/**
 * The start-up check that decides whether the schema engine must run (backend/db/migration-status.ts):
 * on a real embedded database, migrated by the real engine, "up to date" only when it is.
 */
import t from 'tap'
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { loadConfig } from '../../config.ts'
import { migrate, pgliteDir } from '../../db/index.ts'
import { isUpToDate, localMigrations, schemaUpToDate, type MigrationRow } from '../../db/migration-status.ts'
import { MIGRATIONS_DIR } from '../../db/schema-engine.ts'
import { seedEmptyPGliteDataDir } from '../helpers/db.ts'
import { testTmpDir } from '../helpers/tmp.ts'

const tmp = testTmpDir('lnm-db-status-')
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

t.test('isUpToDate: every local migration applied with its checksum, no failed attempt', async (t) => {
  const local = new Map([
    ['1_a', 'aa'],
    ['2_b', 'bb'],
  ])
  const row = (name: string, checksum: string, finished = true, rolledBack = false): MigrationRow => ({
    migration_name: name,
    checksum,
    finished_at: finished ? new Date() : null,
    rolled_back_at: rolledBack ? new Date() : null,
  })
  t.equal(isUpToDate(local, [row('1_a', 'aa'), row('2_b', 'bb')]), true, 'all applied → up to date')
  t.equal(isUpToDate(local, [row('1_a', 'aa')]), false, 'a migration not applied yet → not up to date')
  t.equal(isUpToDate(local, [row('1_a', 'aa'), row('2_b', 'XX')]), false, 'an edited migration (checksum differs) → the engine decides')
  t.equal(
    isUpToDate(local, [row('1_a', 'aa'), row('2_b', 'bb'), row('3_c', 'cc', false)]),
    false,
    'a failed attempt recorded → the engine reports it',
  )
  t.equal(isUpToDate(local, [row('1_a', 'aa'), row('2_b', 'bb', true, true)]), false, 'a rolled-back migration does not count as applied')
  t.equal(
    isUpToDate(local, [row('1_a', 'aa'), row('2_b', 'bb', false, true), row('2_b', 'bb')]),
    true,
    'a rolled-back attempt followed by a success is applied',
  )
  t.equal(isUpToDate(new Map(), []), false, 'no local migrations → the engine reports it')
})

t.test('schemaUpToDate on a real embedded database', async (t) => {
  const dataDir = join(tmp, 'data')
  const migrations = join(tmp, 'migrations')
  cpSync(MIGRATIONS_DIR, migrations, { recursive: true })
  const config = loadConfig({ DATA_DIR: dataDir, NODE_ENV: 'test' })
  // a fresh database (what initdb leaves: no table, no _prisma_migrations), copied: initdb itself is ~1.7 s of CPU,
  // and opening an empty DATA_DIR is db/pglite.test.ts's subject
  await seedEmptyPGliteDataDir(dataDir)

  const check = async () => {
    const pg = await PGlite.create({ dataDir: pgliteDir(config) })
    try {
      return await schemaUpToDate(async (sql) => (await pg.query<Record<string, unknown>>(sql)).rows, migrations)
    } finally {
      await pg.close()
    }
  }
  t.equal(await check(), false, 'fresh database (no _prisma_migrations) → not up to date')
  const first = await migrate(config, undefined, { migrationsDir: migrations })
  t.ok(first.applied.length > 0, 'the engine applied the migrations')
  t.equal(await check(), true, 'after the engine ran → up to date')
  t.equal((await localMigrations(migrations)).size, first.applied.length, 'one checksum per migration directory')

  mkdirSync(join(migrations, '99999999999999_later'))
  writeFileSync(join(migrations, '99999999999999_later', 'migration.sql'), 'CREATE TABLE "Later" ("id" INTEGER PRIMARY KEY);\n')
  t.equal(await check(), false, 'a new migration directory → not up to date')
  const second = await migrate(config, undefined, { migrationsDir: migrations })
  t.same(second.applied, ['99999999999999_later'], 'the engine applies just that one')
  t.equal(await check(), true, 'up to date again')
})
