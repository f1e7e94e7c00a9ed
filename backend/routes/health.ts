/** /health/live and /health/ready (database reachable; upstream state reported). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'

const Ready = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  database: Type.Union([Type.Literal('ok'), Type.Literal('down')]),
  databaseKind: Type.String(),
  upstream: Type.String(),
  mode: Type.String(),
})

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health/live', { config: { rateLimit: false }, schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({ status: 'ok' as const }))

  app.get('/health/ready', { config: { rateLimit: false }, schema: { response: { 200: Ready, 503: Ready } } }, async (_request, reply) => {
    const db = await app.db.ping().catch(() => false)
    const upstream = app.hasDecorator('streaming') ? app.streaming.upstreamState() : 'unknown'
    const body = { status: db ? ('ok' as const) : ('unavailable' as const), database: db ? ('ok' as const) : ('down' as const), databaseKind: app.db.kind, upstream, mode: app.config.mode }
    return reply.status(db ? 200 : 503).send(body)
  })
}

export default healthRoutes
