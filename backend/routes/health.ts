/**
 * /health/live and /health/ready. Ready: 503 `unavailable` without the database; otherwise 200, `ok`, or
 * `degraded` while some socket on this node has had no fresh data for longer than STALE_AFTER_MS (`streaming`
 * says how many topics and why; see streaming/freshness-watchdog.ts). The upstream state is reported as is.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'

const Freshness = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  starved: Type.Integer({ minimum: 0 }),
  reasons: Type.Object({ upstream_down: Type.Integer(), no_data: Type.Integer(), stale: Type.Integer() }),
})

const Ready = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('unavailable')]),
  database: Type.Union([Type.Literal('ok'), Type.Literal('down')]),
  databaseKind: Type.String(),
  upstream: Type.String(),
  mode: Type.String(),
  streaming: Type.Optional(Freshness),
})

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/health/live',
    { config: { rateLimit: false }, schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  )

  app.get('/health/ready', { config: { rateLimit: false }, schema: { response: { 200: Ready, 503: Ready } } }, async (_request, reply) => {
    const db = await app.db.ping().catch(() => false)
    const streaming = app.hasDecorator('streaming') ? app.streaming : null
    const upstream = streaming ? streaming.upstreamState() : 'unknown'
    const freshness = streaming?.freshness()
    const status = !db ? ('unavailable' as const) : freshness?.status === 'degraded' ? ('degraded' as const) : ('ok' as const)
    const body = {
      status,
      database: db ? ('ok' as const) : ('down' as const),
      databaseKind: app.db.kind,
      upstream,
      mode: app.config.mode,
      ...(freshness ? { streaming: freshness } : {}),
    }
    return reply.status(db ? 200 : 503).send(body)
  })
}

export default healthRoutes
