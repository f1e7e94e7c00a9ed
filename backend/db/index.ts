/**
 * The database: embedded PGlite under `${DATA_DIR}/pglite` unless DATABASE_URL names a PostgreSQL
 * server. Both use the same generated Prisma client and the same `prisma/migrations`, applied at
 * open by the WebAssembly schema engine (offline, no native binary), recorded in `_prisma_migrations`
 * exactly as `prisma migrate deploy` would. At open, the engine runs only when a migration is pending
 * (migration-status.ts), and then in a short-lived worker thread (migrate-in-worker.ts), so its memory
 * does not stay with the gateway.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import type { PGlite } from '@electric-sql/pglite'
import type { SqlDriverAdapter, SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils'
import type { Config } from '../config.ts'
import { silentLog, type Log } from '../logger.ts'
import { PrismaClient } from '../generated/prisma/client.ts'
import { lockDataDir, type DataDirLock } from './lock.ts'
import { applyPendingMigrations, createSchemaEngine, fixPGliteExecuteScript, MIGRATIONS_DIR } from './schema-engine.ts'
import { schemaUpToDate, type RowsQuery } from './migration-status.ts'
import { migrateInWorker } from './migrate-in-worker.ts'

export { PrismaClient, Prisma } from '../generated/prisma/client.ts'
export type { User, RefreshSession, RevokedToken, ExchangeCredential, AuthEvent } from '../generated/prisma/client.ts'
export { DataDirLockedError } from './lock.ts'

export type DbKind = 'pglite' | 'postgres'

export interface Database {
  prisma: PrismaClient
  kind: DbKind
  /** migrations applied by this open (empty when the database was up to date) */
  appliedMigrations: string[]
  /** true when a trivial query answers within 2 s */
  ping(): Promise<boolean>
  /** disconnects the client, closes PGlite and releases the DATA_DIR lock; idempotent */
  close(): Promise<void>
}

export interface OpenOptions {
  /** defaults to <repo>/prisma/migrations */
  migrationsDir?: string
}

export interface MigrateResult {
  kind: DbKind
  applied: string[]
  ms: number
}

const PING_TIMEOUT_MS = 2000

// PGlite and Prisma's query compiler are WebAssembly: V8's optimising tier (TurboFan) compiles their hot
// functions again in background threads and keeps both versions, ≈ 80 MB more resident memory for no
// gain the gateway's few, small queries would notice. Baseline compiler (Liftoff) only; this module is
// evaluated before either is compiled. JavaScript is not affected.
setFlagsFromString('--liftoff-only')

/** where the embedded database lives */
export function pgliteDir(config: Pick<Config, 'dataDir'>): string {
  return join(config.dataDir, 'pglite')
}

/** strip credentials from a URL before it reaches a log line or an error message */
function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return `${u.protocol}//${u.username ? `${u.username}${u.password ? ':***' : ''}@` : ''}${u.host}${u.pathname}`
  } catch {
    return 'postgres://<unparseable>'
  }
}

function engineLogger(log: Log) {
  return (line: string) => {
    try {
      const parsed = JSON.parse(line) as { level?: string; fields?: { message?: string } }
      const level = parsed.level ?? 'INFO'
      const msg = parsed.fields?.message ?? line
      if (level === 'ERROR' || level === 'WARN') log.warn({ engine: 'schema-engine-wasm' }, msg)
      else log.debug({ engine: 'schema-engine-wasm' }, msg)
    } catch {
      log.debug({ engine: 'schema-engine-wasm' }, line)
    }
  }
}

async function runMigrations(
  factory: SqlMigrationAwareDriverAdapterFactory,
  log: Log,
  migrationsDir: string,
  fix?: (adapter: SqlDriverAdapter) => SqlDriverAdapter,
): Promise<string[]> {
  const handle = await createSchemaEngine(factory, { ...(fix !== undefined && { fix }), logs: engineLogger(log) })
  try {
    return await applyPendingMigrations(handle.engine, migrationsDir)
  } finally {
    await handle.close()
  }
}

/**
 * The drivers are loaded when a database of their kind is opened: a gateway on PostgreSQL never loads
 * PGlite and its Prisma adapter, an embedded one never loads `pg` (each ≈ 1.5–3 MB of heap and a few
 * hundred ms of module loading at start).
 */
const pgliteDriver = () =>
  Promise.all([import('@electric-sql/pglite'), import('pglite-prisma-adapter')]).then(([{ PGlite }, { PrismaPGlite }]) => ({
    PGlite,
    PrismaPGlite,
  }))
const postgresDriver = () => import('@prisma/adapter-pg').then(({ PrismaPg }) => PrismaPg)

/**
 * PostgreSQL's shared_buffers lives in PGlite's WebAssembly memory and is resident from the start, all of it
 * (the default 128 MB: 128 MB more RSS). The gateway's tables are small (users, sessions, credentials, the
 * auth log): 8 MB is 1,024 pages, room for tens of thousands of users' rows; a page that does not fit is
 * read back from the OS page cache. Measured alone (PGlite.create on the gateway's DATA_DIR, a few
 * queries): 16 MB → +74 MiB RSS, 8 MB → +63 MiB, 4 MB → +58 MiB.
 * `PGlite.defaultStartParams` is a static PGlite has but does not declare (@electric-sql/pglite 0.4.3).
 */
function pgliteStartParams(Class: typeof PGlite): string[] {
  return [...(Class as unknown as { defaultStartParams: string[] }).defaultStartParams, '-c', 'shared_buffers=8MB']
}

function pgliteRows(pg: PGlite): RowsQuery {
  return async (sql) => (await pg.query<Record<string, unknown>>(sql)).rows
}

async function openPGlite(dataDir: string): Promise<{ pg: PGlite; lock: DataDirLock }> {
  const lock = lockDataDir(dataDir)
  try {
    const { PGlite } = await pgliteDriver()
    const pg = await PGlite.create({ dataDir: pgliteDir({ dataDir }), startParams: pgliteStartParams(PGlite) })
    return { pg, lock }
  } catch (err) {
    lock.release()
    throw err
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

/**
 * Open the configured database and bring its schema up to date.
 * Embedded: fails with DataDirLockedError when another process holds `${DATA_DIR}`.
 */
export async function openDatabase(config: Config, log: Log = silentLog, opts: OpenOptions = {}): Promise<Database> {
  const started = performance.now()
  const migrationsDir = opts.migrationsDir ?? MIGRATIONS_DIR
  let prisma: PrismaClient
  let kind: DbKind
  let applied: string[]
  let shutdown: () => Promise<void>

  if (config.DATABASE_URL === undefined) {
    kind = 'pglite'
    // a fresh DATA_DIR certainly needs the migrations: the worker creates it, then this process opens it once
    const fresh = !existsSync(pgliteDir(config))
    const early = fresh ? await migrateInWorker({ dataDir: config.dataDir, migrationsDir }, log) : undefined
    let { pg, lock } = await openPGlite(config.dataDir)
    try {
      applied = early ?? []
      if (!early && !(await schemaUpToDate(pgliteRows(pg), migrationsDir))) {
        // the worker opens the directory itself: hand it over, then take it back
        await pg.close()
        lock.release()
        applied = await migrateInWorker({ dataDir: config.dataDir, migrationsDir }, log)
        ;({ pg, lock } = await openPGlite(config.dataDir))
      }
      const { PrismaPGlite } = await pgliteDriver()
      prisma = new PrismaClient({ adapter: new PrismaPGlite(pg) })
    } catch (err) {
      if (!pg.closed) await pg.close().catch(() => {})
      lock.release()
      throw err
    }
    shutdown = async () => {
      try {
        await prisma.$disconnect()
      } finally {
        try {
          await pg.close()
        } finally {
          lock.release()
        }
      }
    }
  } else {
    kind = 'postgres'
    const url = config.DATABASE_URL
    const PrismaPg = await postgresDriver()
    prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) })
    try {
      applied = []
      if (!(await schemaUpToDate((sql) => prisma.$queryRawUnsafe(sql), migrationsDir))) {
        applied = await migrateInWorker({ dataDir: config.dataDir, databaseUrl: url, migrationsDir }, log)
      }
    } catch (err) {
      await prisma.$disconnect().catch(() => {})
      const e = err as Error
      e.message = `${e.message.split(url).join(redactUrl(url))} (database ${redactUrl(url)})`
      throw e
    }
    shutdown = () => prisma.$disconnect()
  }

  // first query loads the client's query compiler and connects: pay it here, not in the first request/ping
  try {
    await prisma.$queryRaw`SELECT 1`
  } catch (err) {
    await shutdown().catch(() => {})
    throw err
  }

  const ms = Math.round(performance.now() - started)
  if (applied.length > 0) log.info({ kind, applied, ms }, 'database migrated')
  log.info({ kind, ms, ...(kind === 'pglite' ? { dir: pgliteDir(config) } : { url: redactUrl(config.DATABASE_URL!) }) }, 'database open')

  let closing: Promise<void> | undefined
  return {
    prisma,
    kind,
    appliedMigrations: applied,
    async ping() {
      if (closing) return false
      try {
        await withTimeout(prisma.$queryRaw`SELECT 1`, PING_TIMEOUT_MS)
        return true
      } catch {
        return false
      }
    },
    close() {
      closing ??= shutdown()
      return closing
    },
  }
}

/**
 * Apply pending migrations to the configured database and close it (`npm run db:migrate`).
 * Embedded: takes the DATA_DIR lock, so it refuses to run while the gateway is running.
 */
export async function migrate(config: Config, log: Log = silentLog, opts: OpenOptions = {}): Promise<MigrateResult> {
  const started = performance.now()
  const migrationsDir = opts.migrationsDir ?? MIGRATIONS_DIR
  let applied: string[]
  let kind: DbKind
  if (config.DATABASE_URL === undefined) {
    kind = 'pglite'
    const { pg, lock } = await openPGlite(config.dataDir)
    try {
      const { PrismaPGlite } = await pgliteDriver()
      applied = await runMigrations(new PrismaPGlite(pg), log, migrationsDir, (a) => fixPGliteExecuteScript(a, pg))
    } finally {
      try {
        await pg.close()
      } finally {
        lock.release()
      }
    }
  } else {
    kind = 'postgres'
    const PrismaPg = await postgresDriver()
    applied = await runMigrations(new PrismaPg({ connectionString: config.DATABASE_URL, max: 1 }), log, migrationsDir)
  }
  return { kind, applied, ms: Math.round(performance.now() - started) }
}
