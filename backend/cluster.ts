/**
 * `WORKERS=auto|N` (N > 1): the gateway as N processes sharing one port (node:cluster). This is the primary; each
 * worker is the ordinary gateway (server.ts → buildApp) with, unless REDIS_URL is set, the in-host bus
 * (streaming/cluster-bus.ts): the primary relays pub/sub between workers and is the lease authority (one poller per
 * account, one ticker feed, for the whole machine). With REDIS_URL the workers use the Redis bus as separate nodes
 * would, so the same processes also span machines.
 *
 * The primary: applies the migrations once (before forking), forks the workers (each told its slot), serves the
 * workers' /metrics aggregated over all of them (prom-client AggregatorRegistry), counts the HTTP rate limits and
 * login attempts for all of them when there is no Redis (ClusterAttempts), re-forks a worker that dies
 * unexpectedly (backoff 0.5 s → 30 s, reset after a minute of life), and on SIGTERM/SIGINT asks every worker to
 * drain (1001 to its sockets over SHUTDOWN_DRAIN_MS), then exits 0 once all have exited — SIGKILLing any worker
 * still alive SHUTDOWN_DRAIN_MS + 1.5 s later (exit 1 then). A second signal kills the workers at once.
 */
import cluster, { type Worker } from 'node:cluster'
import { pino } from 'pino'
import { AggregatorRegistry } from 'prom-client'
import type { Config } from './config.ts'
import { MemoryAttempts, type AttemptCounter, type Hit } from './auth/attempts.ts'
import { openDatabase } from './db/index.ts'
import { loggerOptions, prettyLogs, redactUrl } from './logger.ts'
import { ClusterRelay, LeaseAuthority, isLnmMessage, routeBusMessage, type ToPrimary, type ToWorker } from './streaming/cluster-bus.ts'

const BACKOFF_MIN_MS = 500
const BACKOFF_MAX_MS = 30_000
const STABLE_AFTER_MS = 60_000

export async function runPrimary(config: Config): Promise<void> {
  const { stream, ...opts } = loggerOptions(
    config.LOG_LEVEL,
    undefined,
    prettyLogs({ nodeEnv: config.NODE_ENV, logPretty: config.LOG_PRETTY, isTTY: Boolean(process.stdout.isTTY) }),
  )
  const log = stream ? pino(opts, stream) : pino(opts)
  const n = config.workers

  // migrations once, here, so the workers find the schema up to date and never race to apply it
  try {
    const db = await openDatabase(config, log.child({ module: 'db' }))
    await db.close()
  } catch (err) {
    process.stderr.write(`lnm-gateway: failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  }

  const workers = new Map<number, { worker: Worker; slot: number; startedAt: number }>()
  const send = (id: number, m: ToWorker) => {
    const w = workers.get(id)?.worker
    if (w?.isConnected()) w.send(m)
  }
  const useIpcBus = !config.REDIS_URL
  const relay = new ClusterRelay(send)
  const authority = new LeaseAuthority(send, Date.now, log)
  const aggregator = new AggregatorRegistry()
  // the machine's rate-limit and login-attempt counters (ClusterAttempts in the workers)
  const attempts = new MemoryAttempts()
  const failures = new Map<number, number>() // slot → consecutive unexpected exits
  let stopping = false
  let announced = false
  let listening = 0

  const onMessage = (id: number, m: ToPrimary) => {
    if (routeBusMessage(relay, authority, id, m)) return
    switch (m.lnm) {
      case 'leave':
        relay.removeWorker(id)
        if (!stopping) authority.removeWorker(id)
        return
      case 'hit':
        void attempts.hit(m.key, m.windowMs).then((h) => send(id, { lnm: 'hit', id: m.id, count: h.count, ttlMs: h.ttlMs }))
        return
      case 'metrics':
        aggregator.clusterMetrics().then(
          (body) => send(id, { lnm: 'metrics', id: m.id, body, contentType: aggregator.contentType }),
          (err: Error) => send(id, { lnm: 'metrics', id: m.id, body: '', contentType: '', error: err.message }),
        )
        return
      case 'sub': // the bus's own messages, routed above by routeBusMessage
      case 'unsub':
      case 'pub':
      case 'want':
      case 'unwant':
        return
    }
  }

  const fork = (slot: number) => {
    const worker = cluster.fork({ LNM_GATEWAY_WORKER_INDEX: String(slot) })
    workers.set(worker.id, { worker, slot, startedAt: Date.now() })
    worker.on('message', (m: unknown) => {
      if (isLnmMessage(m)) onMessage(worker.id, m as ToPrimary)
    })
    worker.once('listening', (address) => {
      if (announced || ++listening < n) return
      announced = true
      const host = config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST
      process.stdout.write(
        [
          `lnm-gateway listening on http://${host}:${address.port}`,
          `mode: ${config.mode} (${config.LNM_NETWORK === 'demo' ? 'custom' : config.LNM_NETWORK}: ${config.apiUrl})`,
          `database: postgres (${redactUrl(config.DATABASE_URL!)})`,
          `workers: ${n} processes on one port (${useIpcBus ? 'in-host bus: one poller per account for the machine' : 'Redis bus: one poller per account across nodes'})`,
        ].join('\n') + '\n',
      )
    })
    worker.once('exit', (code, signal) => {
      const w = workers.get(worker.id)
      workers.delete(worker.id)
      relay.removeWorker(worker.id)
      if (stopping) return
      // its accounts go to another worker that wants them, now; its sockets reconnect to the others
      const moved = useIpcBus ? authority.removeWorker(worker.id) : []
      if (!announced) {
        // a worker that cannot start (port taken, database down) would fail again: stop, as one process would
        process.stderr.write(`lnm-gateway: a worker exited during start (${signal || `code ${code}`})\n`)
        shutdown('start failed', 1)
        return
      }
      const lived = Date.now() - (w?.startedAt ?? 0)
      const slot = w?.slot ?? 0
      const streak = lived > STABLE_AFTER_MS ? 1 : (failures.get(slot) ?? 0) + 1
      failures.set(slot, streak)
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (streak - 1))
      log.error(
        { worker: worker.id, pid: worker.process.pid, code, signal, keysMoved: moved.length, restartInMs: delay },
        'cluster: worker exited unexpectedly, forking a new one',
      )
      setTimeout(() => {
        if (!stopping) fork(slot)
      }, delay).unref()
    })
  }

  let exitCode = 0
  let force: NodeJS.Timeout | null = null
  const shutdown = (reason: string, code = 0) => {
    if (stopping) {
      // a second signal: now
      for (const { worker } of workers.values()) worker.process.kill('SIGKILL')
      process.exit(1)
    }
    stopping = true
    exitCode = code
    log.info({ reason, workers: workers.size }, 'cluster: shutting down, workers drain their sockets')
    for (const { worker } of workers.values()) {
      if (worker.isConnected()) worker.send({ lnm: 'shutdown' } satisfies ToWorker)
      else worker.process.kill('SIGTERM')
    }
    force = setTimeout(() => {
      for (const { worker } of workers.values()) {
        log.error({ worker: worker.id, pid: worker.process.pid }, 'cluster: worker still running after the drain, killed')
        worker.process.kill('SIGKILL')
      }
      exitCode = 1
    }, config.SHUTDOWN_DRAIN_MS + 1500)
    force.unref()
    const check = setInterval(() => {
      if (workers.size > 0) return
      clearInterval(check)
      if (force) clearTimeout(force)
      process.exit(exitCode)
    }, 50)
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))

  // structured clone, not JSON: a relayed event (already a JSON string) is copied, not escaped again per worker
  cluster.setupPrimary({ serialization: 'advanced' })
  for (let slot = 0; slot < n; slot++) fork(slot)
}

// ------------------------------------------------------------------------------------------------ worker side

type Reply = Extract<ToWorker, { id: number }>
const pending = new Map<number, (r: Reply) => void>()
let requestSeq = 0
let listening = false

/** in a worker: one request to the primary, its answer (matched by id), or an error after timeoutMs */
function askPrimary<R extends Reply>(make: (id: number) => ToPrimary, timeoutMs: number): Promise<R> {
  if (!listening) {
    listening = true
    process.on('message', (m: unknown) => {
      if (!isLnmMessage(m)) return
      const id = (m as { id?: unknown }).id
      if (typeof id !== 'number') return
      const done = pending.get(id)
      pending.delete(id)
      done?.(m as Reply)
    })
  }
  const id = ++requestSeq
  return new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id)
      reject(new Error('the cluster primary did not answer'))
    }, timeoutMs)
    pending.set(id, (r) => {
      clearTimeout(timer)
      resolve(r as R)
    })
    if (!process.connected || !process.send) {
      clearTimeout(timer)
      pending.delete(id)
      reject(new Error('not connected to the cluster primary'))
      return
    }
    process.send(make(id))
  })
}

/** in a worker: the aggregated /metrics of every worker, from the primary */
export async function clusterMetrics(timeoutMs = 6000): Promise<{ body: string; contentType: string }> {
  const r = await askPrimary<Extract<ToWorker, { lnm: 'metrics' }>>((id) => ({ lnm: 'metrics', id }), timeoutMs)
  if (r.error) throw new Error(r.error)
  return { body: r.body, contentType: r.contentType }
}

/**
 * In a worker: the login/register attempt counters and the HTTP rate limits, counted once for the machine by the
 * primary (without Redis, per-worker counters would give a client WORKERS times the limit). Fails closed: no answer
 * within a second rejects, as the Redis counters do when Redis does not answer.
 */
export class ClusterAttempts implements AttemptCounter {
  async hit(key: string, windowMs: number): Promise<Hit> {
    const r = await askPrimary<Extract<ToWorker, { lnm: 'hit' }>>((id) => ({ lnm: 'hit', id, key, windowMs }), 1000)
    return { count: r.count, ttlMs: r.ttlMs }
  }
}

/** in a worker: `close` runs when the primary asks for a drain, or disappears */
export function onPrimaryShutdown(close: () => void): void {
  process.on('message', (m: unknown) => {
    if (isLnmMessage(m) && (m as ToWorker).lnm === 'shutdown') close()
  })
  process.on('disconnect', close)
}
