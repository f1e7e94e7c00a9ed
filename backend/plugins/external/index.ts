/**
 * Thin wrappers that configure the Fastify ecosystem's own plugins from Config.
 * Order matters only where noted.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import fp from 'fastify-plugin'
import cookie from '@fastify/cookie'
import cors from '@fastify/cors'
import securityHeaders from './security-headers.ts'
import jwt from '@fastify/jwt'
import rateLimit, { type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import fastifyStatic from '@fastify/static'
import underPressure from '@fastify/under-pressure'
import websocket from '@fastify/websocket'
import cluster from 'node:cluster'
import type { Redis } from 'ioredis'
import { HttpError } from '../../errors.ts'
import { ROOT_DIR } from '../../paths.ts'
import { parseRedisUrl } from '../../streaming/bus-factory.ts'
import { redisClass } from '../../streaming/ioredis.ts'
import { counterRateLimitStore, redisRateLimitStore } from './rate-limit-store.ts'
import { ClusterAttempts } from '../../cluster.ts'

export const FRONTEND_DIST = join(ROOT_DIR, 'dist', 'frontend')

/**
 * Vite names every file under assets/ by its content hash: such a file never changes, so it is cached for a
 * year without revalidation. index.html (which names the current hashes) is always revalidated.
 */
export function staticCacheControl(path: string): string {
  const p = path.replace(/\\/g, '/').replace(/\.(br|gz)$/, '')
  if (/\/assets\/[^/]+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/.test(p)) return 'public, max-age=31536000, immutable'
  return 'no-cache'
}

export default fp(
  async function external(app, opts: { pressureWarmupMs?: number }) {
    const { config } = app
    // helmet's headers, built once (security-headers.ts) rather than per request
    await app.register(securityHeaders, {
      helmet: {
        contentSecurityPolicy: {
          directives: {
            defaultSrc: ["'self'"],
            connectSrc: ["'self'", 'ws:', 'wss:'],
            imgSrc: ["'self'", 'data:'],
            styleSrc: ["'self'", "'unsafe-inline'"],
            scriptSrc: ["'self'"],
            upgradeInsecureRequests: null,
          },
        },
        // the dashboard is served over plain http on loopback by default
        hsts: config.NODE_ENV === 'production',
      },
    })
    // same-origin only unless CORS_ORIGINS lists the origins allowed to call the API with credentials
    await app.register(cors, { origin: config.corsOrigins.length ? config.corsOrigins : false, credentials: true })
    await app.register(cookie)
    await app.register(jwt, { secret: config.jwtSecret, sign: { algorithm: 'HS256' }, verify: { algorithms: ['HS256'] } })
    // scale-out (REDIS_URL): the counters live in Redis, so N nodes behind a balancer do not give N× the attempts
    // Redis unreachable or hung: answers within a second, never queued, and the request gets a 503 saying so
    // (rate-limit-store.ts); keys are `<prefix>:rate-limit:<METHOD>:<url>:<ip>` and `<prefix>:rate-limit:login-user:<name>`
    let redisStore: { store: FastifyRateLimitStoreCtor; skipOnError: false } | undefined
    let attemptsRedis: { redis: Redis; prefix: string } | null = null
    if (config.REDIS_URL) {
      const { url, prefix } = parseRedisUrl(config.REDIS_URL)
      const Redis = redisClass()
      const redis = new Redis(url, {
        connectTimeout: 2000,
        commandTimeout: 1000,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        connectionName: 'lnm-gw:rate-limit',
      })
      let lastWarn = 0
      const warn = (err: Error & { code?: string }) => {
        if (Date.now() - lastWarn < 10_000) return
        lastWarn = Date.now()
        app.log.warn(
          { code: err.code, message: err.message },
          'rate-limit Redis not answering (rate-limited routes such as login answer 503 until it is back)',
        )
      }
      redis.on('error', warn)
      app.addHook('onClose', async () => {
        redis.disconnect()
      })
      // without an offline queue, the first requests would fail while the connection is being made: wait (bounded)
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer)
          redis.off('ready', done)
          resolve()
        }
        const timer = setTimeout(done, 2000)
        redis.once('ready', done)
      })
      // fail closed: without its counters a login limit is no limit
      redisStore = { store: redisRateLimitStore(redis, `${prefix}:rate-limit:`, (err) => warn(err as Error)), skipOnError: false }
      attemptsRedis = { redis, prefix }
    } else if (config.workers > 1 && cluster.isWorker) {
      // WORKERS without Redis: the cluster primary counts for every worker of the machine (ClusterAttempts)
      redisStore = {
        store: counterRateLimitStore(new ClusterAttempts(), 'rate-limit:', (err) =>
          app.log.warn({ err }, 'cluster rate-limit counter not answering'),
        ),
        skipOnError: false,
      }
    }
    // the login/register attempt counters (auth/attempts.ts) share this connection and prefix
    app.decorate('rateLimitRedis', attemptsRedis)
    await app.register(rateLimit, {
      global: false,
      ...redisStore,
      errorResponseBuilder: (_req, ctx) =>
        new HttpError(429, 'rate_limited', `Too many requests; retry in ${Math.ceil(ctx.ttl / 1000)} s`, {
          'retry-after': String(Math.ceil(ctx.ttl / 1000)),
        }),
    })
    // start-up (opening the embedded database, compiling) stalls the loop once; that is not overload
    let warmUntil = Number.POSITIVE_INFINITY
    app.addHook('onReady', async () => {
      warmUntil = Date.now() + (opts.pressureWarmupMs ?? 5000)
    })
    await app.register(underPressure, {
      maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY_MS,
      sampleInterval: 250,
      retryAfter: 5,
      exposeStatusRoute: false,
      pressureHandler: (req, reply, type, value) => {
        if (Date.now() < warmUntil) return
        // liveness and metrics still answer: an orchestrator must not restart a node for being busy, and overload
        // is exactly when the metrics are needed
        const route = req.routeOptions.url
        if (route === '/health/live' || route === '/metrics') return
        // a reply sent here ends the request before its handler runs
        reply
          .status(503)
          .header('retry-after', '5')
          .send({
            error: {
              code: 'overloaded',
              message: `Server overloaded (${type}${value ? ` ${Math.round(Number(value))}` : ''}); retry shortly`,
            },
          })
      },
    })
    await app.register(websocket, {
      options: {
        maxPayload: config.WS_MAX_MESSAGE_BYTES,
        perMessageDeflate: false,
        clientTracking: true,
      },
      // the streaming plugin drains sockets with 1001 over SHUTDOWN_DRAIN_MS in its own preClose hook
      preClose: async () => {},
    })
    if (existsSync(join(FRONTEND_DIST, 'index.html'))) {
      // brotli/gzip twins written at build time (vite.config.ts) are sent to browsers that accept them
      await app.register(fastifyStatic, {
        root: FRONTEND_DIST,
        prefix: '/',
        wildcard: false,
        index: 'index.html',
        preCompressed: true,
        cacheControl: false,
        setHeaders: (res, path) => {
          res.setHeader('cache-control', staticCacheControl(path))
          res.setHeader('vary', 'Accept-Encoding')
        },
      })
    } else {
      app.log.warn({ dir: FRONTEND_DIST }, 'dashboard build not found: run `npm run build` (the API still works)')
    }
  },
  { name: 'external', dependencies: [] },
)

declare module 'fastify' {
  interface FastifyInstance {
    /** REDIS_URL's connection for rate-limit counters and its key prefix; null without Redis */
    rateLimitRedis: { redis: Redis; prefix: string } | null
  }
}
