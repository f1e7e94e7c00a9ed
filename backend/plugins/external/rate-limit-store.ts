/**
 * The Redis store of @fastify/rate-limit for scale-out (REDIS_URL): the counters all nodes share.
 *
 * Why not the plugin's own RedisStore:
 * - its key names: a limiter made with `createRateLimit` (the per-username login limit) has no route, and the
 *   plugin's store named its keys `<ns>undefinedundefined-login-user:<name>`. Here a route limit is
 *   `<prefix>:rate-limit:<METHOD>:<url>:<client key>` and a named limit `<prefix>:rate-limit:<its key>`
 *   (`…:rate-limit:login-user:alice`);
 * - its failures: while Redis does not answer, a command failed late and became a 500 `internal`. Here the
 *   client gives up after `commandTimeoutMs` (no offline queue, no retries) and the request gets a 503
 *   `rate_limit_unavailable` saying so, with `Retry-After`. The store fails closed: without its counters a
 *   login limit would be no limit.
 */
import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { Redis } from 'ioredis'
import type { AttemptCounter } from '../../auth/attempts.ts'
import { HttpError } from '../../errors.ts'

const INCR_LUA = `
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {current, ttl}
`

export const RATE_LIMIT_RETRY_AFTER_S = 5

export function rateLimitUnavailable(store = 'Redis'): HttpError {
  return new HttpError(
    503,
    'rate_limit_unavailable',
    `Temporarily unavailable: the shared rate-limit store (${store}) is not answering. Try again in ${RATE_LIMIT_RETRY_AFTER_S} s.`,
    { 'retry-after': String(RATE_LIMIT_RETRY_AFTER_S) },
  )
}

type Callback = (err: Error | null, res?: { current: number; ttl: number }) => void
type ScriptedRedis = Redis & { lnmRateLimit(key: string, windowMs: number): Promise<[number, number]> }

/** a store class for the plugin's `store` option; `namespace` is `<prefix>:rate-limit:` */
export function redisRateLimitStore(
  redis: Redis,
  namespace: string,
  onError: (err: unknown) => void = () => {},
): FastifyRateLimitStoreCtor {
  const r = redis as ScriptedRedis
  if (typeof r.lnmRateLimit !== 'function') redis.defineCommand('lnmRateLimit', { numberOfKeys: 1, lua: INCR_LUA })

  class RedisRateLimitStore {
    readonly keyPrefix: string
    /** the plugin constructs the root store with its options; children get their key prefix */
    constructor(_options?: unknown, keyPrefix?: string) {
      this.keyPrefix = keyPrefix ?? namespace
    }

    incr(key: string, cb: Callback, timeWindow: number): void {
      r.lnmRateLimit(this.keyPrefix + key, timeWindow).then(
        ([current, ttl]) => cb(null, { current, ttl }),
        (err: unknown) => {
          onError(err)
          cb(rateLimitUnavailable())
        },
      )
    }

    /** a route's limit (the plugin passes routeInfo = the route) or a named limiter's (createRateLimit: routeInfo {}) */
    child(params: unknown): RedisRateLimitStore {
      const ri = (params as { routeInfo?: { method?: string | string[]; url?: string } }).routeInfo
      const method = Array.isArray(ri?.method) ? ri.method.join(',') : ri?.method
      return new RedisRateLimitStore(undefined, method && ri?.url ? `${namespace}${method}:${ri.url}:` : namespace)
    }
  }
  return RedisRateLimitStore
}

/**
 * The same store over a shared attempt counter: the cluster primary's (WORKERS>1 without Redis, ClusterAttempts),
 * so the workers of one machine count one limit, not one each. Fails closed like the Redis store.
 */
export function counterRateLimitStore(
  counter: AttemptCounter,
  namespace: string,
  onError: (err: unknown) => void = () => {},
): FastifyRateLimitStoreCtor {
  class CounterRateLimitStore {
    readonly keyPrefix: string
    constructor(_options?: unknown, keyPrefix?: string) {
      this.keyPrefix = keyPrefix ?? namespace
    }

    incr(key: string, cb: Callback, timeWindow: number): void {
      counter.hit(this.keyPrefix + key, timeWindow).then(
        (h) => cb(null, { current: h.count, ttl: h.ttlMs }),
        (err: unknown) => {
          onError(err)
          cb(rateLimitUnavailable('the cluster primary'))
        },
      )
    }

    child(params: unknown): CounterRateLimitStore {
      const ri = (params as { routeInfo?: { method?: string | string[]; url?: string } }).routeInfo
      const method = Array.isArray(ri?.method) ? ri.method.join(',') : ri?.method
      return new CounterRateLimitStore(undefined, method && ri?.url ? `${namespace}${method}:${ri.url}:` : namespace)
    }
  }
  return CounterRateLimitStore
}
