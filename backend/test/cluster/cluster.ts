/**
 * A real two-node cluster for tests: two gateway apps (buildApp, listening) sharing one new (migrated) PostgreSQL
 * database and one Redis (unique prefix), in live mode against one standalone simulator.
 * Returns undefined (the test is skipped or failed by policy) when PostgreSQL or Redis is unreachable.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { startSimulator, type SimAccountInput, type Simulator } from '../../simulator/index.ts'
import { startTestApp, type TestApp } from '../helpers/app.ts'
import { withMigratedPostgres } from '../helpers/db.ts'
import { withRedis, type TestRedis } from './redis.ts'

export interface TestCluster {
  a: TestApp
  b: TestApp
  sim: Simulator
  redis: TestRedis
}

/** `opts.redis`: a Redis of the test's own (withOwnRedis) instead of the shared one */
export async function startCluster(
  t: Test,
  accounts: SimAccountInput[],
  env: Record<string, string> = {},
  opts: { redis?: TestRedis } = {},
): Promise<TestCluster | undefined> {
  const redis = opts.redis ?? (await withRedis(t))
  if (!redis) return undefined
  const databaseUrl = await withMigratedPostgres(t)
  if (!databaseUrl) return undefined
  const sim = await startSimulator({
    port: 0,
    host: '127.0.0.1',
    accounts,
    admin: true,
    rateLimit: { publicPerSec: 1000, authPerSec: 1000 },
  })
  t.teardown(() => sim.close())
  const dataDir = mkdtempSync(join(tmpdir(), 'lnm-gw-cluster-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const shared = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: `${redis.url}?prefix=${redis.prefix}`,
    LNM_API_URL: sim.url,
    LNM_STREAM_URL: sim.streamUrl,
    SHUTDOWN_DRAIN_MS: '100',
    LOG_LEVEL: 'warn',
    // both nodes sign and read the same tokens and stored credentials
    JWT_SECRET: randomBytes(32).toString('base64url'),
    CREDENTIALS_KEY: randomBytes(32).toString('base64'),
    ...env,
  }
  // one after the other: the first one checks the migrations
  const a = await startTestApp(t, { ...shared, DATA_DIR: join(dataDir, 'a') })
  const b = await startTestApp(t, { ...shared, DATA_DIR: join(dataDir, 'b') })
  return { a, b, sim, redis }
}
