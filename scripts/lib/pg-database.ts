/**
 * A throw-away PostgreSQL database for a run that needs one (a `WORKERS>1` gateway: the embedded database is
 * single-process): created on the local server, dropped afterwards. Shared by `npm run stress` and `npm run bench`.
 */
import pg from 'pg'

export interface RunDatabase {
  url: string
  drop: () => Promise<void>
}

/** the local server's admin database, where throw-away databases are created (STRESS_PG_ADMIN_URL overrides) */
export const defaultAdminUrl = (): string => process.env.STRESS_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** the server's admin URL with any password hidden, for messages */
export const redactAdmin = (url: string): string => url.replace(/\/\/[^@]*@/, '//…@')

/**
 * `given` (a URL passed by the operator) is used as is and never dropped; otherwise a fresh database named
 * `<prefix>_<pid>_<time>` is created through `admin`. `why` says in the error why the run needs PostgreSQL.
 */
export async function createRunDatabase(o: {
  given?: string | undefined
  /** default: defaultAdminUrl() */
  admin?: string
  prefix: string
  why: string
}): Promise<RunDatabase> {
  if (o.given) return { url: o.given, drop: async () => {} }
  const admin = o.admin ?? defaultAdminUrl()
  const name = `${o.prefix}_${process.pid}_${Date.now().toString(36)}`
  const c = new pg.Client({ connectionString: admin })
  try {
    await c.connect()
    await c.query(`CREATE DATABASE ${name}`)
  } catch (e) {
    throw new Error(
      `${o.why}: could not create a database at ${redactAdmin(admin)} (${(e as Error).message}). Pass --database-url postgres://… or set STRESS_PG_ADMIN_URL.`,
      { cause: e },
    )
  } finally {
    await c.end().catch(() => {})
  }
  const u = new URL(admin)
  u.pathname = `/${name}`
  return {
    url: u.toString(),
    drop: async () => {
      const d = new pg.Client({ connectionString: admin })
      try {
        await d.connect()
        await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } catch {
        /* best effort */
      } finally {
        await d.end().catch(() => {})
      }
    },
  }
}
