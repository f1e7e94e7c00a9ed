/**
 * GET /api/dashboard — the HTTP fallback: `{account, positions, ticker, meta}` from the streaming cache
 * (never one exchange call per request), ETag / If-None-Match → 304, stale snapshots marked `stale: true`.
 */
import type { FastifyPluginAsync } from 'fastify'
import { etagMatches } from '../../streaming/dashboard.ts'

const dashboardRoute: FastifyPluginAsync = async (app) => {
  app.get('/dashboard', { onRequest: app.requireUser }, async (request, reply) => {
    const { body, etag } = await app.streaming.dashboard(request.userId)
    reply.header('etag', etag).header('cache-control', 'private, no-cache').header('vary', 'authorization')
    if (etagMatches(request.headers['if-none-match'], etag)) return reply.status(304).send()
    return reply.type('application/json; charset=utf-8').send(body)
  })
}

export default dashboardRoute
