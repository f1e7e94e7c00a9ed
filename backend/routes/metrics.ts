/**
 * GET /metrics in Prometheus text format; behind `Authorization: Bearer <METRICS_TOKEN>` when that is set.
 * In a WORKERS>1 gateway every worker answers with the metrics of ALL workers, aggregated by the cluster primary
 * (prom-client AggregatorRegistry: counters and gauges summed, default process metrics by their own rule), so one
 * scrape behind the shared port sees the whole machine.
 */
import cluster from 'node:cluster'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyPluginAsync } from 'fastify'
import { AggregatorRegistry } from 'prom-client'
import { clusterMetrics } from '../cluster.ts'
import { errorBody } from '../errors.ts'

/** constant time whatever the lengths: comparing digests (not the raw strings) does not leak the token's length */
function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest()
  const y = createHash('sha256').update(b).digest()
  return timingSafeEqual(x, y)
}

const metricsRoute: FastifyPluginAsync = async (app) => {
  const token = app.config.METRICS_TOKEN
  const inCluster = cluster.isWorker && app.config.workers > 1
  if (inCluster) {
    // answer the primary's requests with this worker's registry (server.ts installed the listener)
    AggregatorRegistry.setRegistries([app.metrics.registry])
  }
  app.get('/metrics', { config: { rateLimit: false } }, async (request, reply) => {
    if (token) {
      const m = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')
      if (!m || !sameSecret(m[1]!, token)) {
        return reply
          .status(401)
          .header('www-authenticate', 'Bearer')
          .send(errorBody('unauthorized', 'Metrics need the METRICS_TOKEN bearer token'))
      }
    }
    if (inCluster) {
      try {
        const all = await clusterMetrics()
        return reply.type(all.contentType).send(all.body)
      } catch (err) {
        request.log.warn({ err }, 'cluster metrics unavailable')
        return reply.status(503).send(errorBody('unavailable', 'The metrics of the other workers did not arrive; retry shortly'))
      }
    }
    const body = await app.metrics.registry.metrics()
    return reply.type(app.metrics.registry.contentType).send(body)
  })
}

export default metricsRoute
