/**
 * Reference 3: the ceiling for /api/dashboard: a bare Fastify route (same Fastify as the gateway) that
 * answers a fixed body, captured from the gateway's own /api/dashboard in this run, with its ETag, and
 * 304 to a matching If-None-Match. No auth, no cache lookup: what serving those bytes costs at least.
 * env: PORT, BODY_FILE, ETAG. Tells its parent {ready, port}.
 */
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'

const body = readFileSync(process.env.BODY_FILE as string)
const etag = process.env.ETAG ?? '"ref"'
const app = Fastify({ logger: false })
app.get('/api/dashboard', (req, reply) => {
  if (req.headers['if-none-match'] === etag) return reply.code(304).header('etag', etag).send()
  return reply.header('etag', etag).header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-cache').send(body)
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
const a = app.server.address()
process.send?.({ ready: true, port: typeof a === 'object' && a ? a.port : 0 })
