/**
 * Fixed-window attempt counters for the login and register limits, in memory or in Redis (shared by every node
 * with REDIS_URL). Keys are readable and say what they count:
 *
 *   <prefix>:auth:login:user-addr:<username>|<address>   login attempts for one username from one address
 *   <prefix>:auth:login:user:<username>                  login attempts for one username from anywhere (slow-down)
 *   <prefix>:auth:register:user:<username>               registrations of one username
 *
 * (@fastify/rate-limit's createRateLimit names its Redis keys `…:rate-limit:undefinedundefined-<key>`: it has no
 * route for a limiter created outside one. Its per-route IP limits stay with it.)
 * A Redis failure propagates (the route answers 5xx): without its counters a login limit is no limit.
 */
import type { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import { countBound } from '../bounded-lru.ts'

export interface Hit {
  /** attempts in the current window, this one included */
  count: number
  /** ms until the window ends */
  ttlMs: number
}

export interface AttemptCounter {
  hit(key: string, windowMs: number): Promise<Hit>
}

export class MemoryAttempts implements AttemptCounter {
  private readonly windows = new LRUCache<string, { count: number; resetAt: number }>(countBound(200_000))
  constructor(private readonly now: () => number = Date.now) {}
  async hit(key: string, windowMs: number): Promise<Hit> {
    const now = this.now()
    let w = this.windows.get(key)
    if (!w || now >= w.resetAt) {
      w = { count: 0, resetAt: now + windowMs }
      this.windows.set(key, w)
    }
    w.count++
    return { count: w.count, ttlMs: w.resetAt - now }
  }
}

const HIT_LUA = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end
return {n, ttl}
`

export class RedisAttempts implements AttemptCounter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}
  async hit(key: string, windowMs: number): Promise<Hit> {
    const [count, ttl] = (await this.redis.eval(HIT_LUA, 1, `${this.prefix}:auth:${key}`, String(windowMs))) as [number, number]
    return { count: Number(count), ttlMs: Number(ttl) }
  }
}

/** the slow-down for attempts beyond the free ones: 250 ms per excess attempt, at most 5 s */
export function slowDownMs(count: number, free: number, stepMs = 250, maxMs = 5000): number {
  return count <= free ? 0 : Math.min(maxMs, (count - free) * stepMs)
}
