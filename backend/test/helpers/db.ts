/**
 * PostgreSQL for tests: a fresh database per test on the local server (127.0.0.1:5432, trust auth,
 * user postgres, admin database `test`), dropped in teardown.
 *
 * Policy: when the server is unreachable, a test fails under CI=true and is skipped (with the
 * reason) otherwise.
 */
import { createHash, randomBytes } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
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

/**
 * Create `lnm_test_<random>` and return its URL (dropped in teardown). When PostgreSQL is not
 * reachable: fails the test under CI=true, otherwise skips it; either way returns undefined and the
 * caller should return.
 */
export async function withFreshPostgres(t: Test): Promise<string | undefined> {
  const { ok, reason } = await probe()
  if (!ok) {
    if (process.env.CI === 'true') t.fail(`${reason}; CI=true requires it`)
    else t.skip(reason, async () => {})
    return undefined
  }
  const name = `lnm_test_${randomBytes(6).toString('hex')}`
  const c = adminClient()
  await c.connect()
  try {
    await c.query(`CREATE DATABASE "${name}"`)
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
 * Fresh embedded databases in ~1 s instead of ~5–10 s: the first call in a machine builds a migrated
 * PGlite data directory once (initdb + prisma/migrations) under the OS temp dir, keyed by the PGlite
 * version and the migrations' contents; every call copies it into `${dataDir}/pglite`. Call it
 * before opening/building an app on a new DATA_DIR. Does nothing when `${dataDir}/pglite` exists.
 */
export async function seedPGliteDataDir(dataDir: string): Promise<void> {
  const target = join(dataDir, 'pglite')
  if (existsSync(target)) return
  const template = await pgliteTemplate()
  mkdirSync(dataDir, { recursive: true })
  cpSync(template, target, { recursive: true })
}

let templateDir: Promise<string> | undefined

function pgliteTemplate(): Promise<string> {
  templateDir ??= (async () => {
    // the package does not export its package.json: find it from its entry point (…/pglite/dist/index.js)
    const entry = fileURLToPath(import.meta.resolve('@electric-sql/pglite'))
    const pgliteVersion = (JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string }).version
    const list = await readMigrationsList(MIGRATIONS_DIR)
    const h = createHash('sha256').update(pgliteVersion)
    for (const m of list.migrationDirectories) {
      h.update(m.path).update(m.migrationFile.content.tag === 'ok' ? m.migrationFile.content.value : '')
    }
    const dir = join(tmpdir(), `lnm-gateway-pglite-template-${h.digest('hex').slice(0, 16)}`)
    if (existsSync(join(dir, 'PG_VERSION'))) return dir
    const building = `${dir}.build-${process.pid}-${randomBytes(4).toString('hex')}`
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
    try {
      renameSync(building, dir)
    } catch {
      rmSync(building, { recursive: true, force: true }) // another process won the race
    }
    return dir
  })()
  templateDir.catch(() => {
    templateDir = undefined
  })
  return templateDir
}
