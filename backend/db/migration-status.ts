/**
 * Is the database's schema up to date with prisma/migrations? Answered with one plain query on the
 * connection the gateway opens anyway, so a start on an up-to-date database never loads the schema
 * engine (its WebAssembly costs hundreds of MB and about a second).
 *
 * Conservative by construction: "up to date" only when `_prisma_migrations` exists, every migration
 * directory has a finished, not rolled-back row with the checksum Prisma records (SHA-256 of
 * migration.sql), and no row is a failed attempt. Anything else (fresh database, a new migration, an
 * edited migration, a failed one) answers false and the schema engine runs, with its own checks and
 * errors, exactly as before.
 */
import { createHash } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'

export interface MigrationRow {
  migration_name: string
  checksum: string
  finished_at: unknown
  rolled_back_at: unknown
}

/** runs one SQL statement without parameters and returns its rows */
export type RowsQuery = (sql: string) => Promise<Array<Record<string, unknown>>>

/** name → SHA-256 (hex) of migration.sql, for every migration directory */
export async function localMigrations(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
  for (const e of entries) {
    if (!e.isDirectory()) continue
    const sql = await readFile(join(dir, e.name, 'migration.sql')).catch(() => undefined)
    // an unreadable migration: let the engine report it
    if (sql === undefined) return new Map([['', '']])
    out.set(e.name, createHash('sha256').update(sql).digest('hex'))
  }
  return out
}

/** pure comparison of the local migrations with the rows of `_prisma_migrations` */
export function isUpToDate(local: Map<string, string>, rows: MigrationRow[]): boolean {
  if (local.size === 0 || local.has('')) return false
  const applied = new Map<string, string>()
  for (const r of rows) {
    const failed = r.finished_at == null && r.rolled_back_at == null
    if (failed) return false
    if (r.finished_at != null && r.rolled_back_at == null) applied.set(r.migration_name, r.checksum)
  }
  for (const [name, checksum] of local) {
    if (applied.get(name) !== checksum) return false
  }
  return true
}

/** true when the schema engine has nothing to do on this database (false on any doubt or error) */
export async function schemaUpToDate(query: RowsQuery, migrationsDir: string): Promise<boolean> {
  try {
    const exists = await query(`SELECT to_regclass('_prisma_migrations') IS NOT NULL AS "exists"`)
    if (exists[0]?.exists !== true) return false
    const rows = await query('SELECT migration_name, checksum, finished_at, rolled_back_at FROM _prisma_migrations')
    return isUpToDate(await localMigrations(migrationsDir), rows as unknown as MigrationRow[])
  } catch {
    return false
  }
}
