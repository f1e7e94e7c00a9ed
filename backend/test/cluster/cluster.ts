/**
 * Shared set-up of the cluster tests.
 *
 * `gatewayEnv`: what every multi-node gateway of a test shares: one new (migrated) PostgreSQL database, one
 * standalone simulator (admin on, generous limits), a temp data directory and one pair of secrets (every node
 * signs and reads the same tokens and stored credentials).
 *
 * `startCluster`: a real two-node cluster on that environment: two gateway apps (buildApp, listening) sharing the
 * database and one Redis (unique prefix), in live mode against the simulator.
 *
 * `compiledServer`: the compiled gateway entry (dist/backend/server.js) for tests that spawn gateway processes but
 * are not about the TypeScript entry: plain node starts it without transpiling the backend in every process.
 *
 * Each returns undefined (the test is skipped or failed by policy) when PostgreSQL or Redis is unreachable.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { startSimulator, type SimAccountInput, type Simulator } from '../../simulator/index.ts'
import { startTestApp, type TestApp } from '../helpers/app.ts'
import type { BuildOptions } from '../../app.ts'
import { withMigratedPostgres } from '../helpers/db.ts'
import { withRedis, type TestRedis } from './redis.ts'

export interface GatewayEnv {
  sim: Simulator
  databaseUrl: string
  /** a temp directory (removed in teardown): give each node a DATA_DIR of its own under it */
  dataDir: string
  /** DATABASE_URL, LNM_API_URL, LNM_STREAM_URL, JWT_SECRET, CREDENTIALS_KEY */
  env: Record<string, string>
}

export async function gatewayEnv(t: Test, accounts: SimAccountInput[]): Promise<GatewayEnv | undefined> {
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
  const env = {
    DATABASE_URL: databaseUrl,
    LNM_API_URL: sim.url,
    LNM_STREAM_URL: sim.streamUrl,
    JWT_SECRET: randomBytes(32).toString('base64url'),
    CREDENTIALS_KEY: randomBytes(32).toString('base64'),
  }
  return { sim, databaseUrl, dataDir, env }
}

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
  opts: { redis?: TestRedis; build?: BuildOptions } = {},
): Promise<TestCluster | undefined> {
  const redis = opts.redis ?? (await withRedis(t))
  if (!redis) return undefined
  const ge = await gatewayEnv(t, accounts)
  if (!ge) return undefined
  const shared = {
    ...ge.env,
    REDIS_URL: `${redis.url}?prefix=${redis.prefix}`,
    SHUTDOWN_DRAIN_MS: '100',
    LOG_LEVEL: 'warn',
    ...env,
  }
  // one after the other: the first one checks the migrations
  const a = await startTestApp(t, { ...shared, DATA_DIR: join(ge.dataDir, 'a') }, opts.build)
  const b = await startTestApp(t, { ...shared, DATA_DIR: join(ge.dataDir, 'b') }, opts.build)
  return { a, b, sim: ge.sim, redis }
}

/** the compiled gateway entry: one helper for every test that spawns gateways (helpers/compiled.ts) */
export { compiledServer } from '../helpers/compiled.ts'
