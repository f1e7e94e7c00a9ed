/**
 * Builds the gateway: external plugins → app plugins (db, metrics, auth, vault, exchange, streaming) → routes.
 * One place where everything is wired in order; `server.ts` only listens and handles signals.
 */
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.ts'
import { errorBody, installErrorHandlers } from './errors.ts'
import { loggerOptions, prettyLogs } from './logger.ts'
import { closeRefusedUpgrades } from './upgrade-refusal.ts'
import { passwordHasher, type PasswordHasher } from './auth/passwords.ts'
import type { Metrics } from './metrics.ts'
import type { ExchangeClientOptions, SimulatorOptions } from './plugins/app/exchange.ts'
import external, { FRONTEND_DIST } from './plugins/external/index.ts'
import db from './plugins/app/db.ts'
import metrics from './plugins/app/metrics.ts'
import auth from './plugins/app/auth.ts'
import vault from './plugins/app/vault.ts'
import exchange, { demoBootstrap } from './plugins/app/exchange.ts'
import streaming from './plugins/app/streaming.ts'
import healthRoutes from './routes/health.ts'
import metricsRoute from './routes/metrics.ts'
import authRoutes, { meRoutes } from './routes/api/auth.ts'
import credentialsRoutes from './routes/api/credentials.ts'
import configRoute from './routes/api/config.ts'
import dashboardRoute from './routes/api/dashboard.ts'
import historyRoute from './routes/api/history.ts'
import candlesRoute from './routes/api/candles.ts'
import alertsRoutes from './routes/api/alerts.ts'
import wsRoute from './routes/ws.ts'

export interface BuildOptions {
  /** where logs go (tests capture them to check for secrets); default stdout */
  logStream?: NodeJS.WritableStream
  metrics?: Metrics
  /** demo mode only: simulator accounts and limits (tests, benchmarks) */
  simulator?: SimulatorOptions
  /** how long after start-up event-loop pressure is ignored (default 5 s); tests of the shedding shorten it */
  pressureWarmupMs?: number
  /**
   * log2 of the scrypt cost N of new password hashes; default and production floor 15 (2^15). Tests lower it so a
   * register or login costs about a millisecond instead of tens; an option of the builder, never of the
   * environment, so no operator can lower it by accident.
   */
  passwordHashCost?: number
  /**
   * the exchange client's retry backoff and client-side throttle (default: the official policy, 1 s base / 8 s cap /
   * 3 retries, 1 public call a second); tests of the gateway against a simulator this fast shorten them
   */
  exchangeClient?: ExchangeClientOptions
}

/**
 * Requests node's HTTP parser refuses (malformed, headers too large, too slow) still get the contract's error shape;
 * only the parser's error code is logged — its `rawPacket` holds the request's bytes, Authorization and Cookie included.
 */
function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'request_timeout', 'The request took too long to arrive']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', 'Request headers are too large']
        : [400, 'bad_request', 'Malformed HTTP request']
  this.log.debug({ code: err.code }, 'client error')
  if (socket.writable) {
    const body = JSON.stringify(errorBody(code, message))
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\n\r\n${body}`,
    )
  }
  socket.destroy()
}

export async function buildApp(config: Config, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(
      config.LOG_LEVEL,
      opts.logStream,
      prettyLogs({ nodeEnv: config.NODE_ENV, logPretty: config.LOG_PRETTY, isTTY: Boolean(process.stdout.isTTY) }),
    ),
    trustProxy: config.TRUST_PROXY,
    bodyLimit: 64 * 1024,
    // close idle keep-alive sockets at once on shutdown
    forceCloseConnections: 'idle',
    // fastify's own 503-on-closing body is not the contract's error shape: the onRequest hook below answers instead
    return503OnClosing: false,
    clientErrorHandler,
    // opening and migrating the embedded database can take seconds on a busy 2-core machine
    pluginTimeout: 120_000,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.decorate('config', config)
  app.decorate('passwords', passwordHasher(opts.passwordHashCost, config.NODE_ENV))
  installErrorHandlers(app)

  // an upgrade refused by any hook below (shutdown, overload, rate limit, Origin) is answered and closed at once
  closeRefusedUpgrades(app)
  // while shutting down (sockets draining, database still open) new requests get a 503 in the contract shape
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return
    return reply
      .status(503)
      .header('connection', 'close')
      .header('retry-after', '5')
      .send(errorBody('unavailable', 'The server is shutting down; retry shortly'))
  })

  await app.register(metrics, { ...(opts.metrics !== undefined && { metrics: opts.metrics }) })
  await app.register(external, { ...(opts.pressureWarmupMs !== undefined && { pressureWarmupMs: opts.pressureWarmupMs }) })
  await app.register(db)
  await app.register(auth)
  await app.register(vault)
  await app.register(exchange, {
    ...(opts.simulator !== undefined && { simulator: opts.simulator }),
    ...(opts.exchangeClient !== undefined && { client: opts.exchangeClient }),
  })
  await app.register(demoBootstrap)
  await app.register(streaming)

  await app.register(healthRoutes)
  await app.register(metricsRoute)
  await app.register(wsRoute)
  await app.register(
    async (api) => {
      await api.register(authRoutes, { prefix: '/auth' })
      await api.register(meRoutes)
      await api.register(credentialsRoutes)
      await api.register(configRoute)
      await api.register(dashboardRoute)
      await api.register(historyRoute)
      await api.register(candlesRoute)
      await api.register(alertsRoutes)
    },
    { prefix: '/api' },
  )

  // the dashboard is a single-page app: unknown GETs outside /api fall back to index.html
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!
    if (
      request.method === 'GET' &&
      !path.startsWith('/api/') &&
      !path.startsWith('/health') &&
      path !== '/ws' &&
      app.hasReplyDecorator('sendFile')
    ) {
      return reply.type('text/html').sendFile('index.html', FRONTEND_DIST)
    }
    return reply.status(404).send({ error: { code: 'not_found', message: `Route ${request.method} ${path} not found` } })
  })

  return app
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    /** hashes new passwords at this app's cost, verifies stored hashes of any cost */
    passwords: PasswordHasher
  }
}
