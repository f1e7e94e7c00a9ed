/**
 * npm run credentials:rotate — re-encrypts every stored exchange credential under CREDENTIALS_KEY.
 * Usage: set the NEW key as CREDENTIALS_KEY and list the old one in CREDENTIALS_OLD_KEYS, run this, then
 * drop the old key from CREDENTIALS_OLD_KEYS once it reports 0 rows left under old keys.
 */
import { ConfigError, loadConfig } from '../backend/config.ts'
import { openDatabase } from '../backend/db/index.ts'
import { rotateCredentials } from '../backend/vault/rotate.ts'

try {
  const config = loadConfig()
  const db = await openDatabase(config)
  try {
    const r = await rotateCredentials(db.prisma, config)
    process.stdout.write(
      `credentials: ${r.total} rows, ${r.rotated} re-encrypted under key ${config.credentialsKey.id}, ${r.alreadyCurrent} already current, ${r.failed.length} failed\n`,
    )
    for (const f of r.failed) process.stdout.write(`  user ${f.userId}: ${f.reason}\n`)
    process.exitCode = r.failed.length ? 1 : 0
  } finally {
    await db.close()
  }
} catch (err) {
  process.stderr.write(`credentials:rotate: ${err instanceof ConfigError ? err.message : (err as Error).message}\n`)
  process.exitCode = 1
}
