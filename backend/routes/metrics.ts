/** GET /metrics in Prometheus text format; behind `Authorization: Bearer <METRICS_TOKEN>` when that is set. */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyPluginAsync } from 'fastify'
import { errorBody } from '../errors.ts'

/** constant time whatever the lengths: comparing digests (not the raw strings) does not leak the token's length */
function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest()
  const y = createHash('sha256').update(b).digest()
  return timingSafeEqual(x, y)
}

const metricsRoute: FastifyPluginAsync = async (app) => {
  const token = app.config.METRICS_TOKEN
  app.get('/metrics', { config: { rateLimit: false } }, async (request, reply) => {
    if (token) {
      const m = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')
      if (!m || !sameSecret(m[1]!, token)) {
        return reply.status(401).header('www-authenticate', 'Bearer').send(errorBody('unauthorized', 'Metrics need the METRICS_TOKEN bearer token'))
      }
    }
    const body = await app.metrics.registry.metrics()
    return reply.type(app.metrics.registry.contentType).send(body)
  })
}

export default metricsRoute
