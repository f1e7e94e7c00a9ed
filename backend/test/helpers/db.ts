/**
 * PostgreSQL for tests: a fresh database per test on the local server (127.0.0.1:5432, trust auth,
 * user postgres, admin database `test`), dropped in teardown.
 *
 * Policy: when the server is unreachable, a test fails under CI=true and is skipped (with the
 * reason) otherwise.
 */
import { createHash, randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PGlite } from '@electric-sql/pglite'
import { PrismaPGlite } from 'pglite-prisma-adapter'
import pg from 'pg'
import type { Test } from 'tap'
import {
  applyPendingMigrations,
  createSchemaEngine,
  fixPGliteExecuteScript,
  MIGRATIONS_DIR,
  readMigrationsList,
} from '../../db/schema-engine.ts'
import { loadConfig } from '../../config.ts'
import { migrate } from '../../db/index.ts'

export const PG_HOST = '127.0.0.1'
export const PG_PORT = 5432
export const PG_USER = 'postgres'
export const PG_ADMIN_DB = 'test'

export function postgresUrl(database: string): string {
  return `postgres://${PG_USER}@${PG_HOST}:${PG_PORT}/${database}`
}

function adminClient(): pg.Client {
  return new pg.Client({ host: PG_HOST, port: PG_PORT, user: PG_USER, database: PG_ADMIN_DB, connectionTimeoutMillis: 2000 })
}

let available: Promise<{ ok: boolean; reason: string }> | undefined

function probe(): Promise<{ ok: boolean; reason: string }> {
  available ??= (async () => {
    const c = adminClient()
    try {
      await c.connect()
      await c.query('SELECT 1')
      return { ok: true, reason: '' }
    } catch (err) {
      return { ok: false, reason: `PostgreSQL not reachable at ${PG_HOST}:${PG_PORT} (${(err as Error).message || (err as Error).name})` }
    } finally {
      await c.end().catch(() => {})
    }
  })()
  return available
}

/** true when the local PostgreSQL answers (checked once per process) */
export async function postgresAvailable(): Promise<boolean> {
  return (await probe()).ok
}

/** fails (CI=true) or skips `t` when PostgreSQL is unreachable; true when it answers */
async function requirePostgres(t: Test): Promise<boolean> {
  const { ok, reason } = await probe()
  if (!ok) {
    if (process.env.CI === 'true') t.fail(`${reason}; CI=true requires it`)
    else t.skip(reason, async () => {})
  }
  return ok
}

/** `CREATE DATABASE name [TEMPLATE template]`, dropped in t's teardown */
async function createTestDatabase(t: Test, template?: string): Promise<string> {
  const name = `lnm_test_${randomBytes(6).toString('hex')}`
  const c = adminClient()
  await c.connect()
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await c.query(template ? `CREATE DATABASE "${name}" TEMPLATE "${template}"` : `CREATE DATABASE "${name}"`)
        break
      } catch (err) {
        // 55006: another session is copying the same template at this instant; it takes milliseconds
        if ((err as { code?: string }).code !== '55006' || attempt >= 50) throw err
        await sleep(20 + Math.random() * 80)
      }
    }
  } finally {
    await c.end()
  }
  t.teardown(async () => {
    const d = adminClient()
    await d.connect()
    try {
      await d.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    } finally {
      await d.end()
    }
  })
  return postgresUrl(name)
}

/**
 * Create an empty `lnm_test_<random>` and return its URL (dropped in teardown). When PostgreSQL is not
 * reachable: fails the test under CI=true, otherwise skips it; either way returns undefined and the
 * caller should return. For tests about migrating a fresh database; the others want withMigratedPostgres.
 */
export async function withFreshPostgres(t: Test): Promise<string | undefined> {
  if (!(await requirePostgres(t))) return undefined
  return createTestDatabase(t)
}

/**
 * Like withFreshPostgres, but the database already holds every migration: a copy (CREATE DATABASE …
 * TEMPLATE, ~50 ms) of a template migrated once per PostgreSQL server and set of migrations — migrating
 * a fresh database costs 10–15 s on a loaded 2-core machine. The template, `lnm_template_<hash>`, is kept
 * on the server (it accepts no connections); a change to prisma/migrations makes a new one.
 */
export async function withMigratedPostgres(t: Test): Promise<string | undefined> {
  if (!(await requirePostgres(t))) return undefined
  return createTestDatabase(t, await postgresTemplate())
}

let pgTemplate: Promise<string> | undefined

function postgresTemplate(): Promise<string> {
  pgTemplate ??= (async () => {
    const name = `lnm_template_${(await migrationsHash()).slice(0, 16)}`
    const c = adminClient()
    await c.connect()
    try {
      const exists = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])
      if (exists.rowCount) return name
      const building = `${name}_b${randomBytes(4).toString('hex')}`
      await c.query(`CREATE DATABASE "${building}"`)
      try {
        const dataDir = mkdtempSync(join(tmpdir(), 'lnm-pg-template-'))
        try {
          await migrate(loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, DATABASE_URL: postgresUrl(building) }))
        } finally {
          rmSync(dataDir, { recursive: true, force: true })
        }
        // the migration's pool may not have closed its connection yet: a template must have none
        await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [building])
        await c.query(`ALTER DATABASE "${building}" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`)
        await c.query(`ALTER DATABASE "${building}" RENAME TO "${name}"`)
      } catch (err) {
        await c.query(`DROP DATABASE IF EXISTS "${building}" WITH (FORCE)`).catch(() => {})
        // 42P04: another process built the same template meanwhile
        if ((err as { code?: string }).code !== '42P04') throw err
      }
      return name
    } finally {
      await c.end()
    }
  })()
  pgTemplate.catch(() => {
    pgTemplate = undefined
  })
  return pgTemplate
}

/** hex sha256 of the migrations (names and SQL), which a template database or directory is built from */
async function migrationsHash(extra = ''): Promise<string> {
  const list = await readMigrationsList(MIGRATIONS_DIR)
  const h = createHash('sha256').update(extra)
  for (const m of list.migrationDirectories) {
    h.update(m.path).update(m.migrationFile.content.tag === 'ok' ? m.migrationFile.content.value : '')
  }
  return h.digest('hex')
}

/**
 * Fresh embedded databases in ~1 s instead of ~5–10 s: the first call in a machine builds a migrated
 * PGlite data directory once (initdb + prisma/migrations) under the OS temp dir, keyed by the PGlite
 * version and the migrations' contents; every call copies it into `${dataDir}/pglite`. Call it
 * before opening/building an app on a new DATA_DIR. Does nothing when `${dataDir}/pglite` exists.
 */
export async function seedPGliteDataDir(dataDir: string): Promise<void> {
  await seedFrom(dataDir, pgliteTemplate)
}

/**
 * Like seedPGliteDataDir, but the database exactly as PGlite's initdb leaves it: no table, no
 * `_prisma_migrations`, nothing migrated. For tests about migrating a fresh embedded database that are
 * not about opening an empty DATA_DIR: initdb costs ~1.7 s of CPU, a copy of its result ~30 ms. The
 * first call in a machine runs initdb once (keyed by the PGlite version).
 */
export async function seedEmptyPGliteDataDir(dataDir: string): Promise<void> {
  await seedFrom(dataDir, pgliteEmptyTemplate)
}

async function seedFrom(dataDir: string, template: () => Promise<string>): Promise<void> {
  const target = join(dataDir, 'pglite')
  if (existsSync(target)) return
  const from = await template()
  mkdirSync(dataDir, { recursive: true })
  copyTree(from, target)
}

/**
 * A plain recursive copy of a data directory (~1,000 small files): about half the time of Node 20's
 * cpSync, which checks and stats every entry in JavaScript. Every app a test starts pays it once.
 */
function copyTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true })
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (entry.isDirectory()) copyTree(join(from, entry.name), join(to, entry.name))
    else copyFileSync(join(from, entry.name), join(to, entry.name))
  }
}

function pgliteVersion(): string {
  // the package does not export its package.json: find it from its entry point (…/pglite/dist/index.js)
  const entry = fileURLToPath(import.meta.resolve('@electric-sql/pglite'))
  return (JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string }).version
}

/**
 * A data directory under the OS temp dir named `${name}`, built once per machine by `build` (into a
 * directory of its own, renamed into place: concurrent processes may build it at the same time).
 */
function cachedDataDir(name: string, build: (dir: string) => Promise<void>): Promise<string> {
  const dir = join(tmpdir(), name)
  if (existsSync(join(dir, 'PG_VERSION'))) return Promise.resolve(dir)
  return (async () => {
    const building = `${dir}.build-${process.pid}-${randomBytes(4).toString('hex')}`
    await build(building)
    try {
      renameSync(building, dir)
    } catch {
      rmSync(building, { recursive: true, force: true }) // another process won the race
    }
    return dir
  })()
}

let templateDir: Promise<string> | undefined

function pgliteTemplate(): Promise<string> {
  templateDir ??= (async () => {
    const key = (await migrationsHash(pgliteVersion())).slice(0, 16)
    return cachedDataDir(`lnm-gateway-pglite-template-${key}`, async (building) => {
      const pgl = await PGlite.create({ dataDir: building })
      try {
        const handle = await createSchemaEngine(new PrismaPGlite(pgl), { fix: (a) => fixPGliteExecuteScript(a, pgl) })
        try {
          await applyPendingMigrations(handle.engine)
        } finally {
          await handle.close()
        }
      } finally {
        await pgl.close()
      }
    })
  })()
  templateDir.catch(() => {
    templateDir = undefined
  })
  return templateDir
}

let emptyTemplateDir: Promise<string> | undefined

function pgliteEmptyTemplate(): Promise<string> {
  emptyTemplateDir ??= cachedDataDir(
    `lnm-gateway-pglite-empty-${createHash('sha256').update(pgliteVersion()).digest('hex').slice(0, 16)}`,
    async (building) => {
      const pgl = await PGlite.create({ dataDir: building })
      await pgl.close()
    },
  )
  emptyTemplateDir.catch(() => {
    emptyTemplateDir = undefined
  })
  return emptyTemplateDir
}
