import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import { PGlite } from '@electric-sql/pglite'
import { loadConfig } from '../../config.ts'
import { DataDirLockedError, migrate, openDatabase, pgliteDir, type Database } from '../../db/index.ts'
import { MIGRATIONS_DIR } from '../../db/schema-engine.ts'
import dbPlugin from '../../plugins/app/db.ts'
import { ROOT_DIR } from '../../paths.ts'
import { seedPGliteDataDir } from '../helpers/db.ts'
import { testTmpDir } from '../helpers/tmp.ts'
import { crudAllModels } from './crud.ts'

const migrationNames = readdirSync(MIGRATIONS_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort()
const tmp = testTmpDir('lnm-db-pglite-')
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
const dataDir = join(tmp, 'data')
const config = loadConfig({ DATA_DIR: dataDir, NODE_ENV: 'test' })

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

async function migrationRows(db: Database) {
  return db.prisma.$queryRaw<Array<{ migration_name: string; checksum: string; finished_at: Date | null; rolled_back_at: Date | null }>>`
    SELECT migration_name, checksum, finished_at, rolled_back_at FROM _prisma_migrations ORDER BY migration_name`
}

t.test('fresh DATA_DIR: migrations apply, are recorded like prisma migrate, CRUD works', async (t) => {
  t.ok(migrationNames.length >= 1, 'the repository has at least one migration')
  const started = performance.now()
  const db = await openDatabase(config)
  const freshMs = Math.round(performance.now() - started)
  t.comment(`open+migrate PGlite, fresh DATA_DIR: ${freshMs} ms`)
  t.teardown(() => db.close())
  t.equal(db.kind, 'pglite', 'no DATABASE_URL → embedded PGlite')
  t.ok(existsSync(pgliteDir(config)), 'PGlite persisted under DATA_DIR/pglite')
  t.same(db.appliedMigrations, migrationNames, 'every migration applied on first open')
  const rows = await migrationRows(db)
  t.same(
    rows.map((r) => r.migration_name),
    migrationNames,
    '_prisma_migrations lists them',
  )
  for (const r of rows) {
    const script = readFileSync(join(MIGRATIONS_DIR, r.migration_name, 'migration.sql'), 'utf8')
    t.equal(r.checksum, sha256(script), `${r.migration_name}: checksum is sha256 of migration.sql (as Prisma computes it)`)
    t.ok(r.finished_at instanceof Date && r.rolled_back_at === null, `${r.migration_name}: finished, not rolled back`)
  }
  t.equal(await db.ping(), true, 'ping answers')
  await crudAllModels(t, db.prisma, 'pglite')
  await db.prisma.user.create({ data: { username: 'survivor', passwordHash: 'h' } })
  await db.close()
  t.equal(await db.ping(), false, 'ping is false once closed')
  await db.close() // idempotent
  t.notOk(existsSync(join(dataDir, 'pglite.lock')), 'lock file removed on close')
})

t.test('restart: data survives, reapplying migrations is a no-op', async (t) => {
  const started = performance.now()
  const db = await openDatabase(config)
  t.comment(`open+migrate PGlite, warm DATA_DIR: ${Math.round(performance.now() - started)} ms`)
  t.teardown(() => db.close())
  t.same(db.appliedMigrations, [], 'nothing applied on re-open')
  t.equal((await db.prisma.user.findUnique({ where: { username: 'survivor' } }))?.username, 'survivor', 'user row kept across close/reopen')
  t.equal((await migrationRows(db)).length, migrationNames.length, 'no duplicate _prisma_migrations rows')
  await db.close()
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const timersBefore = timers()
  const again = await migrate(config)
  t.same(again.applied, [], 'db:migrate on an up-to-date database applies nothing')
  // the engine's 10 s advisory-lock timeout used to outlive the run and hold the process (or worker) open
  t.ok(timers() <= timersBefore, `db:migrate leaves no timer behind (${timersBefore} before, ${timers()} after)`)
  t.equal(again.kind, 'pglite', 'db:migrate targets the embedded database')
})

t.test('one process per DATA_DIR', async (t) => {
  const db = await openDatabase(config)
  t.teardown(() => db.close())
  await t.rejects(
    openDatabase(config),
    { name: 'DataDirLockedError', message: /already open in this lnm-gateway process/ },
    'second open in the same process fails',
  )

  const fixture = join(ROOT_DIR, 'backend/test/db/fixtures/open-db.ts')
  const child = spawnSync(process.execPath, ['--import', 'tsx', fixture, dataDir], { encoding: 'utf8', timeout: 60_000 })
  t.equal(child.status, 3, 'a second process exits with an error')
  t.match(
    child.stdout,
    new RegExp(`DATA_DIR .* is in use by another lnm-gateway process \\(pid ${process.pid}\\)`),
    'and says which pid holds DATA_DIR',
  )
  t.equal(await db.ping(), true, 'the first holder keeps working')
  await db.close()

  // a lock held by another live process (this test's parent)
  const lockFile = join(dataDir, 'pglite.lock')
  writeFileSync(lockFile, JSON.stringify({ pid: process.ppid }))
  const err = await openDatabase(config).then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err instanceof DataDirLockedError, 'a live foreign lock refuses the open')
  t.match((err as Error).message, `is in use by another lnm-gateway process (pid ${process.ppid})`, 'message names that pid')

  // a stale lock from a dead process is taken over
  const dead = spawn(process.execPath, ['-e', ''])
  const deadPid = dead.pid!
  await new Promise((r) => dead.on('exit', r))
  writeFileSync(lockFile, JSON.stringify({ pid: deadPid }))
  const db2 = await openDatabase(config)
  t.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, process.pid, `stale lock (dead pid ${deadPid}) taken over`)
  await db2.close()
})

t.test('a failing migration is not recorded as applied and releases DATA_DIR', async (t) => {
  const migrations = join(tmp, 'migrations-bad')
  cpSync(MIGRATIONS_DIR, migrations, { recursive: true })
  mkdirSync(join(migrations, '99990101000000_broken'))
  writeFileSync(join(migrations, '99990101000000_broken', 'migration.sql'), 'CREATE TABLE half_done (a int);\nSELECT no_such_function();\n')
  const badConfig = loadConfig({ DATA_DIR: join(tmp, 'bad'), NODE_ENV: 'test' })
  await seedPGliteDataDir(badConfig.dataDir) // already at the repository's migrations
  await t.rejects(
    openDatabase(badConfig, undefined, { migrationsDir: migrations }),
    { message: /no_such_function/ },
    'open fails with the SQL error',
  )
  // the failure is recorded the way Prisma records it, so the next open refuses (not the DATA_DIR lock)
  await t.rejects(openDatabase(badConfig), { message: /P3009|failed migrations/ }, 're-open refuses a database with a failed migration')
  const pg = await PGlite.create({ dataDir: pgliteDir(badConfig) })
  t.teardown(() => pg.close())
  const rows = await pg.query<{ migration_name: string; finished_at: Date | null }>(
    `SELECT migration_name, finished_at FROM _prisma_migrations WHERE migration_name = '99990101000000_broken'`,
  )
  t.equal(rows.rows.length, 1, 'the failed migration is recorded')
  t.equal(rows.rows[0]?.finished_at, null, 'as unfinished (prisma migrate resolve handles it)')
  const half = await pg.query<{ t: string | null }>(`SELECT to_regclass('half_done')::text AS t`)
  t.equal(half.rows[0]?.t, null, 'its partial changes were rolled back')
  t.notOk(existsSync(join(badConfig.dataDir, 'pglite.lock')), 'DATA_DIR lock released after the failure')
})

t.test('fastify plugin decorates app.prisma and app.db and closes on app close', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(dbPlugin, { config })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.db.kind, 'pglite', 'app.db.kind')
  t.equal(await app.db.ping(), true, 'app.db.ping()')
  t.ok((await app.prisma.user.count()) >= 1, 'app.prisma queries the database')
  await app.close()
  t.notOk(existsSync(join(dataDir, 'pglite.lock')), 'DATA_DIR released on app close')
})

t.test('test helper: seeded DATA_DIRs are migrated copies, independent of each other', async (t) => {
  const a = loadConfig({ DATA_DIR: join(tmp, 'seed-a'), NODE_ENV: 'test' })
  const b = loadConfig({ DATA_DIR: join(tmp, 'seed-b'), NODE_ENV: 'test' })
  await seedPGliteDataDir(a.dataDir)
  await seedPGliteDataDir(b.dataDir)
  const started = performance.now()
  const dbA = await openDatabase(a)
  t.comment(`open+migrate PGlite, seeded DATA_DIR: ${Math.round(performance.now() - started)} ms`)
  t.teardown(() => dbA.close())
  t.same(dbA.appliedMigrations, [], 'a seeded DATA_DIR is already migrated')
  await dbA.prisma.user.create({ data: { username: 'only-in-a', passwordHash: 'h' } })
  await dbA.close()
  const dbB = await openDatabase(b)
  t.teardown(() => dbB.close())
  t.equal(await dbB.prisma.user.count(), 0, 'writes to one copy do not show in another')
})
