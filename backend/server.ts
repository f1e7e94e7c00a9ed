/**
 * Entry point: load config (fail fast, one line), build the app, listen, and close gracefully:
 * SIGTERM/SIGINT stop accepting, close sockets with 1001, close the database, exit within 10 s;
 * a second signal exits at once. With WORKERS>1 this process is the cluster primary (cluster.ts) and every
 * worker runs `runGateway`; a worker drains when the primary asks (or disappears).
 */
import cluster from 'node:cluster'
import closeWithGrace from 'close-with-grace'
import { AggregatorRegistry } from 'prom-client'
import { onPrimaryShutdown, runPrimary } from './cluster.ts'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { buildApp } from './app.ts'
import { DEMO_LOGIN } from './plugins/app/exchange.ts'

let config: Config
try {
  config = loadConfig()
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`lnm-gateway: ${err.message}\n`)
    process.exit(1)
  }
  throw err
}

if (config.workers > 1 && cluster.isPrimary) await runPrimary(config)
else await runGateway(config)

async function runGateway(config: Config): Promise<void> {
  const inCluster = config.workers > 1 && cluster.isWorker
  // answer the primary's metrics requests from the start (empty until the app's registry is set), so a scrape
  // while this worker starts does not wait for the primary's timeout
  if (inCluster) new AggregatorRegistry()
  let app: Awaited<ReturnType<typeof buildApp>>
  try {
    app = await buildApp(config)
    await app.listen({ port: config.PORT, host: config.HOST })
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    process.stderr.write(`lnm-gateway: failed to start: ${message}\n`)
    process.exit(1)
  }

  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : config.PORT
  const host = config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST
  const lines = [
    `lnm-gateway listening on http://${host}:${port}`,
    `mode: ${config.mode}${config.mode === 'demo' ? ` (LN Markets simulator at ${app.exchange.simulator?.url})` : ` (${app.exchange.network}: ${config.apiUrl})`}`,
    `database: ${app.db.kind}${app.db.kind === 'pglite' ? ` in ${config.dataDir}` : ''}`,
  ]
  if (config.mode === 'demo') lines.push(`demo login: ${DEMO_LOGIN.username} / ${DEMO_LOGIN.password}`)
  // in a cluster the primary says it once for all workers
  if (!inCluster) process.stdout.write(lines.join('\n') + '\n')

  let closed: Promise<void> | null = null
  const grace = closeWithGrace(
    { delay: 10_000, logger: { error: (m: unknown) => app.log.error(m as object) } },
    async ({ signal, err }) => {
      if (err) app.log.error({ err }, 'closing after an uncaught error')
      else app.log.info({ signal }, 'shutting down')
      await (closed ??= app.close())
    },
  )
  // a worker of a cluster: the primary asks for the drain (a terminal's Ctrl-C may also have sent SIGINT: one close)
  if (inCluster) onPrimaryShutdown(() => grace.close())
}
