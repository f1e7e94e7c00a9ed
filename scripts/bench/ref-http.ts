/**
 * Reference 3 for /api/dashboard: a bare Fastify route (same Fastify as the gateway) that checks the same
 * access token the same way the gateway does (a `Authorization: Bearer` JWT, HS256, verified with
 * @fastify/jwt and the gateway's JWT_SECRET: signature, expiry and a `sub`; 401 otherwise) and answers a
 * fixed body, captured from the gateway's own /api/dashboard in this run, with its ETag, and 304 to a
 * matching If-None-Match. No database, no cache lookup, no other plugin: what a JWT-protected route
 * serving those bytes costs at least.
 * env: PORT, BODY_FILE, ETAG, JWT_SECRET. Tells its parent {ready, port}.
 */
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import jwt from '@fastify/jwt'

const body = readFileSync(process.env.BODY_FILE as string)
const etag = process.env.ETAG ?? '"ref"'
const app = Fastify({ logger: false })
await app.register(jwt, { secret: process.env.JWT_SECRET as string, verify: { algorithms: ['HS256'] } })
app.get('/api/dashboard', (req, reply) => {
  const m = /^Bearer ([^\s]+)$/i.exec(req.headers.authorization ?? '')
  let sub: unknown
  try {
    sub = m ? app.jwt.verify<{ sub?: unknown }>(m[1]!).sub : undefined
  } catch {
    sub = undefined
  }
  if (typeof sub !== 'string') return reply.code(401).send({ error: { code: 'invalid_token', message: 'Invalid access token' } })
  if (req.headers['if-none-match'] === etag) return reply.code(304).header('etag', etag).send()
  return reply.header('etag', etag).header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-cache').send(body)
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
const a = app.server.address()
process.send?.({ ready: true, port: typeof a === 'object' && a ? a.port : 0 })
