/** The app's own prom-client Registry (one per instance) and the metric catalogue. */
import fp from 'fastify-plugin'
import { createMetrics, type Metrics } from '../../metrics.ts'

export default fp(
  async function metrics(app, opts: { metrics?: Metrics }) {
    const m = opts.metrics ?? createMetrics()
    app.decorate('metrics', m)
    // the 5xx-rate alert reads this; one child per class, built once
    const classes = ['1xx', '2xx', '3xx', '4xx', '5xx'].map((c) => m.httpRequests.labels(c))
    app.addHook('onResponse', async (_request, reply) => {
      const i = Math.floor(reply.statusCode / 100) - 1
      if (i >= 0 && i < classes.length) classes[i]!.inc()
    })
  },
  { name: 'metrics' },
)

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}
