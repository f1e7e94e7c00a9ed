/** The app's own prom-client Registry (one per instance) and the metric catalogue. */
import fp from 'fastify-plugin'
import { createMetrics, type Metrics } from '../../metrics.ts'

export default fp(
  async function metrics(app, opts: { metrics?: Metrics }) {
    app.decorate('metrics', opts.metrics ?? createMetrics())
  },
  { name: 'metrics' },
)

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}
