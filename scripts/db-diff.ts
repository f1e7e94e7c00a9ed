/**
 * Dev tool: create a new migration from the difference between prisma/migrations and
 * prisma/schema.prisma, offline (WebAssembly schema engine + throwaway in-memory PGlite as the
 * database and as the shadow database). Same result and layout as `prisma migrate dev --create-only`.
 *
 *   npx tsx scripts/db-diff.ts <name>        # writes prisma/migrations/<timestamp>_<name>/migration.sql
 *   npx tsx scripts/db-diff.ts --check       # exit 2 when schema.prisma has changes without a migration
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join, relative } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { PrismaPGlite } from 'pglite-prisma-adapter'
import {
  createSchemaEngine,
  fixPGliteExecuteScript,
  migrationLockContent,
  MIGRATIONS_DIR,
  NO_FILTERS,
  readMigrationsList,
  ROOT_DIR,
  SCHEMA_PATH,
} from '../backend/db/schema-engine.ts'

const EMPTY = '-- This is an empty migration.'

function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`
}

async function main(): Promise<number> {
  const args = process.argv.slice(2)
  const check = args.includes('--check')
  const name = args.find((a) => !a.startsWith('--'))
  if (!check && (!name || !/^[a-z0-9_]+$/i.test(name))) {
    console.error('usage: tsx scripts/db-diff.ts <migration_name> | --check   (name: letters, digits, _)')
    return 64
  }
  const schema = await readFile(SCHEMA_PATH, 'utf8')
  const list = await readMigrationsList(MIGRATIONS_DIR)
  // the engine needs the lock file to know the connector; a first migration has none yet
  list.lockfile.content ??= migrationLockContent('postgresql')

  const pg = await PGlite.create()
  const handle = await createSchemaEngine(new PrismaPGlite(pg), { fix: (a) => fixPGliteExecuteScript(a, pg) })
  try {
    const diff = await handle.engine.diff({
      from: { tag: 'migrations', ...list },
      to: { tag: 'schemaDatamodel', files: [{ path: SCHEMA_PATH, content: schema }] },
      script: true,
      exitCode: null,
      filters: NO_FILTERS,
    })
    const script = diff.stdout ?? ''
    const empty = script.trim() === '' || script.trim() === EMPTY
    if (check) {
      if (empty) {
        console.log('prisma/migrations matches prisma/schema.prisma')
        return 0
      }
      console.error('prisma/schema.prisma has changes that no migration covers:\n' + script)
      return 2
    }
    if (empty) {
      console.log('no changes: prisma/migrations already matches prisma/schema.prisma')
      return 0
    }
    const dirName = `${timestamp()}_${name}`
    const dir = join(MIGRATIONS_DIR, dirName)
    if (existsSync(dir)) throw new Error(`${dir} already exists`)
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'migration.sql'), script, 'utf8')
    await writeFile(join(MIGRATIONS_DIR, 'migration_lock.toml'), migrationLockContent('postgresql'), 'utf8')
    // prove it applies cleanly from scratch before anyone commits it
    const applied = await handle.engine.applyMigrations({ migrationsList: await readMigrationsList(MIGRATIONS_DIR), filters: NO_FILTERS })
    console.log(`created ${relative(ROOT_DIR, join(dir, 'migration.sql'))} (applies cleanly: ${applied.appliedMigrationNames.join(', ')})`)
    return 0
  } finally {
    await handle.close()
    await pg.close()
  }
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err)
    process.exitCode = 1
  },
)
