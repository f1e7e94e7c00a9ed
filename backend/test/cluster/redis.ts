/**
 * Redis for tests (127.0.0.1:6379): a unique key/channel prefix per test, whose keys are deleted in teardown.
 *
 * Policy (as for PostgreSQL, see ../helpers/db.ts): when Redis is unreachable, a test fails under CI=true and
 * is skipped (with the reason) otherwise.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { Test } from 'tap'

export const REDIS_HOST = '127.0.0.1'
export const REDIS_PORT = 6379
export const REDIS_URL = `redis://${REDIS_HOST}:${REDIS_PORT}`

let available: Promise<{ ok: boolean; reason: string }> | undefined

function probe(): Promise<{ ok: boolean; reason: string }> {
  available ??= (async () => {
    const r = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null })
    r.on('error', () => {})
    try {
      await r.connect()
      await r.ping()
      return { ok: true, reason: '' }
    } catch (err) {
      return { ok: false, reason: `Redis not reachable at ${REDIS_HOST}:${REDIS_PORT} (${(err as Error).message || (err as Error).name})` }
    } finally {
      r.disconnect()
    }
  })()
  return available
}

export interface TestRedis {
  url: string
  /** unique per test: pass it as RedisBus `prefix` (or `?prefix=` in REDIS_URL) */
  prefix: string
  /** an admin connection (closed in teardown) */
  admin: Redis
}

/**
 * A unique prefix on the local Redis (its keys are deleted in teardown). When Redis is not reachable: fails
 * the test under CI=true, otherwise skips it; either way returns undefined and the caller should return.
 */
export async function withRedis(t: Test): Promise<TestRedis | undefined> {
  const { ok, reason } = await probe()
  if (!ok) {
    if (process.env.CI === 'true') t.fail(`${reason}; CI=true requires it`)
    else t.skip(reason, async () => {})
    return undefined
  }
  const prefix = `lnm-test-${process.pid}-${randomBytes(4).toString('hex')}`
  const admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  admin.on('error', () => {})
  t.teardown(async () => {
    try {
      let cursor = '0'
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500)
        cursor = next
        if (keys.length) await admin.del(...keys)
      } while (cursor !== '0')
    } finally {
      admin.disconnect()
    }
  })
  return { url: REDIS_URL, prefix, admin }
}

/** kill this node's Redis connections server-side (ioredis reconnects): a network blip */
export async function killConnections(admin: Redis, nodeId: string): Promise<number> {
  const list = (await admin.client('LIST')) as string
  let n = 0
  for (const line of list.split('\n')) {
    const id = /(?:^| )id=(\d+)/.exec(line)?.[1]
    const name = /(?:^| )name=(\S*)/.exec(line)?.[1]
    if (id && name === `lnm-gw:${nodeId}`) {
      await admin.client('KILL', 'ID', id)
      n++
    }
  }
  return n
}

export interface OwnRedis extends TestRedis {
  port: number
  /** SIGSTOP: the server hangs (connections stay open, nothing is answered), as in a long fork or a partition */
  stall(): void
  /** SIGCONT */
  resume(): void
  /** SIGKILL, resolved once the process is gone */
  kill(): Promise<void>
}

/**
 * A redis-server of this test's own on a free loopback port (no persistence), killed in teardown: for tests
 * that stall or kill Redis. Without the redis-server binary: fails under CI=true, otherwise skips.
 */
export async function withOwnRedis(t: Test): Promise<OwnRedis | undefined> {
  const { spawnSync, spawn } = await import('node:child_process')
  const { createServer } = await import('node:net')
  const which = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  if (which.status !== 0) {
    const reason = 'redis-server binary not found (needed to start a Redis this test can stall)'
    if (process.env.CI === 'true') t.fail(`${reason}; CI=true requires it`)
    else t.skip(reason, async () => {})
    return undefined
  }
  const port = await new Promise<number>((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port
      srv.close(() => resolve(p))
    })
  })
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning'],
    { stdio: 'ignore' },
  )
  let exited = false
  proc.once('exit', () => {
    exited = true
  })
  t.teardown(() => {
    if (exited) return
    try {
      proc.kill('SIGCONT')
    } catch {
      /* gone */
    }
    proc.kill('SIGKILL')
  })
  const url = `redis://127.0.0.1:${port}`
  const admin = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: (n) => (n > 50 ? null : 100) })
  admin.on('error', () => {})
  t.teardown(() => admin.disconnect())
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      await admin.ping()
      break
    } catch (err) {
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by the child's exit handler
      if (exited || Date.now() > deadline) {
        t.fail(`redis-server on port ${port} did not answer: ${(err as Error).message}`)
        return undefined
      }
      await sleep(100)
    }
  }
  const prefix = `lnm-test-${process.pid}-${randomBytes(4).toString('hex')}`
  const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const kill = async () => {
    if (!exited) proc.kill('SIGKILL')
    await gone
  }
  return { url, prefix, admin, port, stall: () => void proc.kill('SIGSTOP'), resume: () => void proc.kill('SIGCONT'), kill }
}
