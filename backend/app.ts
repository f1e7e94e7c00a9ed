/**
 * Builds the gateway: external plugins → app plugins (db, metrics, auth, vault, exchange, streaming) → routes.
 * One place where everything is wired in order; `server.ts` only listens and handles signals.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.ts'
import { installErrorHandlers } from './errors.ts'
import { loggerOptions } from './logger.ts'
import type { Metrics } from './metrics.ts'
import type { SimulatorOptions } from './plugins/app/exchange.ts'
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
import wsRoute from './routes/ws.ts'

export interface BuildOptions {
  /** where logs go (tests capture them to check for secrets); default stdout */
  logStream?: NodeJS.WritableStream
  metrics?: Metrics
  /** demo mode only: simulator accounts and limits (tests, benchmarks) */
  simulator?: SimulatorOptions
}

export async function buildApp(config: Config, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(config.LOG_LEVEL, opts.logStream),
    trustProxy: config.TRUST_PROXY,
    bodyLimit: 64 * 1024,
    // close idle keep-alive sockets at once on shutdown
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // opening and migrating the embedded database can take seconds on a busy 2-core machine
    pluginTimeout: 120_000,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.decorate('config', config)
  installErrorHandlers(app)

  await app.register(metrics, { metrics: opts.metrics })
  await app.register(external)
  await app.register(db)
  await app.register(auth)
  await app.register(vault)
  await app.register(exchange, { simulator: opts.simulator })
  await app.register(demoBootstrap)
  await app.register(streaming)

  await app.register(healthRoutes)
  await app.register(metricsRoute)
  await app.register(wsRoute)
  await app.register(async (api) => {
    await api.register(authRoutes, { prefix: '/auth' })
    await api.register(meRoutes)
    await api.register(credentialsRoutes)
    await api.register(configRoute)
    await api.register(dashboardRoute)
  }, { prefix: '/api' })

  // the dashboard is a single-page app: unknown GETs outside /api fall back to index.html
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!
    if (request.method === 'GET' && !path.startsWith('/api/') && !path.startsWith('/health') && path !== '/ws' && app.hasReplyDecorator('sendFile')) {
      return reply.type('text/html').sendFile('index.html', FRONTEND_DIST)
    }
    return reply.status(404).send({ error: { code: 'not_found', message: `Route ${request.method} ${path} not found` } })
  })

  return app
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}
