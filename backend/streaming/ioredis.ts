/**
 * ioredis, loaded on first use. Only a gateway with REDIS_URL (the Redis bus, shared rate-limit counters)
 * needs it; loaded eagerly it cost every other one ≈ 2 MB of heap and a few hundred ms of start-up.
 * ioredis is CommonJS, so a synchronous require serves both the bus's constructor and async callers.
 */
import { createRequire } from 'node:module'
import type { Redis } from 'ioredis'

const load = createRequire(import.meta.url)

export function redisClass(): typeof Redis {
  return (load('ioredis') as typeof import('ioredis')).Redis
}
