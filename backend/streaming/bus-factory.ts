/**
 * The bus for this process (CONTRACT §2): in-process unless REDIS_URL is set; then a RedisBus, so several
 * gateway nodes share polling (one producer per account and one ticker feed across the cluster) and fan-out.
 * A worker of a WORKERS>1 gateway without REDIS_URL uses the in-host ClusterBus (the primary relays and grants).
 *
 * REDIS_URL may carry `?prefix=<name>` (removed before connecting): the namespace of every key and channel,
 * default `lnm-gw`. Clusters (or test runs) sharing one Redis use different prefixes.
 */
import type { Config } from '../config.ts'
import { InProcessBus, type Bus } from './bus.ts'
import cluster from 'node:cluster'
import { ClusterBus } from './cluster-bus.ts'
import { RedisBus } from './redis-bus.ts'
import type { Log } from './sources.ts'

export const DEFAULT_REDIS_PREFIX = 'lnm-gw'

/** split `?prefix=` off a Redis URL */
export function parseRedisUrl(redisUrl: string): { url: string; prefix: string } {
  const u = new URL(redisUrl)
  const prefix = u.searchParams.get('prefix') || DEFAULT_REDIS_PREFIX
  u.searchParams.delete('prefix')
  return { url: u.toString(), prefix }
}

export function createBus(
  config: Pick<Config, 'REDIS_URL'> & Partial<Pick<Config, 'REDIS_LEASE_MS' | 'workers'>>,
  log: Log,
  opts: { leaseTtlMs?: number; nodeId?: string } = {},
): Bus {
  const onHandlerError = (err: unknown, topic: string) => log.error({ err, topic }, 'bus handler failed')
  if (!config.REDIS_URL && (config.workers ?? 1) > 1 && cluster.isWorker) {
    log.info({ worker: cluster.worker?.id }, 'fan-out bus: in-host (cluster primary relays events and grants one producer per account)')
    return new ClusterBus(undefined, { log, onHandlerError })
  }
  if (!config.REDIS_URL) return new InProcessBus(onHandlerError)
  const { url, prefix } = parseRedisUrl(config.REDIS_URL)
  const bus = new RedisBus({
    url,
    prefix,
    log,
    onHandlerError,
    ...(config.REDIS_LEASE_MS !== undefined && { leaseTtlMs: config.REDIS_LEASE_MS }),
    ...opts,
  })
  log.info(
    { prefix, node: bus.nodeId, leaseTtlMs: bus.leaseTtlMs },
    'fan-out bus: Redis (cluster mode: one producer per account across nodes)',
  )
  return bus
}
