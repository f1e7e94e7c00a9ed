/**
 * `npm run db:migrate`: apply prisma/migrations to the configured database (embedded PGlite under
 * DATA_DIR, or DATABASE_URL) and print what was applied. The gateway does the same at start.
 */
import { ConfigError, loadConfig } from '../backend/config.ts'
import { DataDirLockedError, migrate, pgliteDir } from '../backend/db/index.ts'

async function main(): Promise<void> {
  const config = loadConfig()
  const target = config.DATABASE_URL === undefined ? `embedded PGlite at ${pgliteDir(config)}` : 'PostgreSQL (DATABASE_URL)'
  console.log(`db:migrate: ${target}`)
  const res = await migrate(config)
  if (res.applied.length === 0) {
    console.log(`db:migrate: already up to date (${res.ms} ms)`)
  } else {
    for (const name of res.applied) console.log(`db:migrate: applied ${name}`)
    console.log(`db:migrate: ${res.applied.length} migration(s) applied in ${res.ms} ms`)
  }
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof DataDirLockedError) console.error(`db:migrate: ${err.message}`)
  else console.error('db:migrate: failed:', err instanceof Error ? err.message : err)
  process.exitCode = 1
})
